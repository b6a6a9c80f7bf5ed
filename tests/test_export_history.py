"""`export --at STEP` (geometry of a weight snapshot) and `export --jumps` (the jump list)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save
from sessions_v1 import make_format_1
from trajectories import pairs_then_pentagon, trajectory

from engine.config import RunConfig
from engine.session import RECORD_FILE, WEIGHTS_FILE, SessionError, save_session
from engine.trainer import Trainer
from toygeom_tui.export import JUMP_COLUMNS, session_geometry, session_jumps


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toygeom_tui", *args], capture_output=True, text=True, timeout=300
    )


def test_geometry_at_a_recorded_step_is_that_of_the_run_trained_to_it(tmp_path, small_config):
    trainer = Trainer(small_config, compiled=False)
    trainer.run()
    save_session(trainer, tmp_path / "full")
    step = trainer.snapshots.steps[9]
    short = Trainer(small_config, compiled=False)
    short.run(until=step)
    save_session(short, tmp_path / "short")
    at = session_geometry(tmp_path / "full", at=step + 3)  # the latest snapshot at or before
    plain = session_geometry(tmp_path / "short")
    assert at["step"] == plain["step"] == step
    assert {**at, "session": None} == {**plain, "session": None}
    assert session_geometry(tmp_path / "full", at=10**9)["step"] == small_config.steps


def test_at_before_any_snapshot_or_on_an_old_session_says_why(tmp_path, small_config):
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "s")
    make_format_1(tmp_path / "s")
    with pytest.raises(SessionError, match="format 1, which kept no weight snapshots"):
        session_geometry(tmp_path / "s", at=30)
    assert session_geometry(tmp_path / "s", at=60)["step"] == 60, "its saved step still exports"
    out = cli("export", str(tmp_path / "s"), "--at", "30")
    assert out.returncode == 2 and len(out.stderr.splitlines()) == 1
    assert "kept no weight snapshots" in out.stderr


def session_with_a_known_jump(tmp_path: Path) -> Path:
    """A saved 5-features-in-2-dims session whose D_i history is a constructed trajectory:
    two antipodal pairs and a dead feature snapping into a pentagon at step 1000."""
    config = RunConfig(name="known", n_features=5, d_hidden=2, n_inst=1, steps=2000, device="cpu")
    trainer = Trainer(config, compiled=False)
    trainer.run(until=20)
    path = save_session(trainer, tmp_path / "known")
    tensors = load_file(path / WEIGHTS_FILE)
    dims = trajectory(pairs_then_pentagon(40, at=20), noise=0.002)
    tensors["history.dims.steps"] = torch.arange(40, dtype=torch.int64) * 50
    tensors["history.dims.values"] = torch.from_numpy(dims).float()
    record = (path / RECORD_FILE).read_text()
    (path / WEIGHTS_FILE).write_bytes(save(tensors, metadata={"session": record}))
    return path


def test_jumps_export_as_json_and_csv(tmp_path) -> None:
    path = session_with_a_known_jump(tmp_path)
    doc = session_jumps(path)
    assert [(j["step"], j["feature"], j["before"], j["after"]) for j in doc["jumps"]] == [
        (1000, 0, "1/2", "2/5"), (1000, 1, "1/2", "2/5"), (1000, 2, "1/2", "2/5"),
        (1000, 3, "1/2", "2/5"), (1000, 4, "0", "2/5"),
    ]  # fmt: skip
    assert doc["criteria"]["hold_records"] >= 2
    out = cli("export", str(path), "--jumps")
    assert out.returncode == 0 and json.loads(out.stdout)["jumps"] == doc["jumps"]
    out = cli("export", str(path), "--jumps", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert tuple(rows[0]) == JUMP_COLUMNS and len(rows) == 5
    assert rows[4]["before"] == "0" and rows[4]["step"] == "1000"
