"""What the sweep tests share: a small spec, the CLI as a user runs it, and "same session"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

# 4 pentagon runs of 200 steps: a second or two each once a worker is up.
SPEC = """
preset = "pentagon"
steps = 200
device = "cpu"

[grid]
lr = [1e-3, 3e-3]
seed = [0, 1]
"""
RUN_NAMES = ["lr=0.001,seed=0", "lr=0.001,seed=1", "lr=0.003,seed=0", "lr=0.003,seed=1"]
# Fields of a session record that say when and by whom it was written, not what it holds.
VOLATILE = ("created_at", "saved_at", "writer")


def write_spec(folder: Path, text: str = SPEC) -> Path:
    path = folder / "spec.toml"
    path.write_text(text)
    return path


def cli(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toygeom_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def session_content(directory: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """A session's record without its write times and writer, and all its tensors."""
    record = json.loads((directory / "session.json").read_text())
    for key in VOLATILE:
        record.pop(key)
    return record, load_file(directory / "weights.safetensors")


def assert_same_session(a: Path, b: Path) -> None:
    """Bit for bit: every tensor (weights, optimizer moments, history) and the record."""
    record_a, tensors_a = session_content(a)
    record_b, tensors_b = session_content(b)
    assert record_a == record_b
    assert tensors_a.keys() == tensors_b.keys()
    for name in tensors_a:
        assert torch.equal(tensors_a[name], tensors_b[name]), f"{a.name}: {name} differs"


def seeds_sweep(directory: Path, seeds: int = 3, done: int = 2, steps: int = 150) -> Path:
    """What `train --seeds` makes, trained here: pentagon seeds 0 … seeds−1 of `steps` steps as
    a sweep in `directory`, the first `done` of them finished and the rest pending."""
    from engine.config import preset
    from engine.sweep import Sweep, seed_spec, train_run

    spec = seed_spec(preset("pentagon").replace(steps=steps, device="cpu"), seeds)
    sweep = Sweep.create(directory, spec)
    for run in spec.runs[:done]:
        sweep.finish(train_run(run.name, run.config.to_dict(), threads=1))
    return directory


def train_pending(directory: Path, name: str) -> None:
    """Train the pending run `name` of the sweep in `directory` and store it, as a sweep does."""
    from engine.sweep import Sweep, train_run

    sweep = Sweep.resume(directory)
    [run] = [run for run in sweep.missing() if run.name == name]
    sweep.finish(train_run(run.name, run.config.to_dict(), threads=1))


def final_losses(sweep: Path, *names: str) -> dict[int, list[float]]:
    """seed -> the final loss per instance of the saved session of each run in `names` (read
    from the sessions, not from the sweep record)."""
    from engine.session import load_session

    trainers = [load_session(sweep / name, compiled=False) for name in names]
    return {t.config.seed: [float(v) for v in t.latest_loss] for t in trainers}


def best_seeds(sweep: Path, *names: str) -> list[int]:
    """Per instance, the seed among `names` whose saved session ends with the lowest loss."""
    losses = final_losses(sweep, *names)
    return [
        min(losses, key=lambda s: losses[s][i]) for i in range(len(next(iter(losses.values()))))
    ]
