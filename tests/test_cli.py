"""The command line as a user runs it: real processes, real files, real signals."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.session import load_session, session_info
from engine.trainer import Trainer


def cli(*args: str, cwd: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toygeom_tui", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        **kwargs,
    )


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "toygeom_tui", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_engine_imports_without_textual() -> None:
    code = (
        "import sys, engine.trainer, engine.session, engine.geometry, engine.run, "
        "engine.remote.client, engine.remote.background; "
        "print('textual' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_app_refuses_an_unknown_preset_before_it_loads_torch() -> None:
    """A typo in --preset is told at once, not after the seconds torch takes to load."""
    code = (
        "import sys\nfrom toygeom_tui import cli\n"
        "print(cli.main(['--preset', 'nope']), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2", "False"]
    assert out.stderr.startswith("toygeom-tui: preset: 'nope' is not known; choose one of ")
    assert "feature-geometry" in out.stderr and "pentagon" in out.stderr


def test_help_does_not_import_torch() -> None:
    code = "import sys; from toygeom_tui.cli import build_parser; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_presets_lists_every_preset() -> None:
    out = cli("presets")
    assert out.returncode == 0
    for name in ("feature-geometry", "pentagon", "paper-uniform", "sparsity-sweep", "correlated"):
        assert name in out.stdout


def test_train_then_export(tmp_path: Path, config_file: Path) -> None:
    out = cli(
        "train",
        "--config",
        str(config_file),
        "--steps",
        "300",
        "--eager",
        "--out",
        str(tmp_path / "run"),
    )
    assert out.returncode == 0, out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("done: 300 steps in") and "steps/s" in last
    assert "300/300" in out.stderr, "the progress line reached the end"
    assert load_session(tmp_path / "run", compiled=False).step == 300

    doc = json.loads(cli("export", str(tmp_path / "run")).stdout)
    assert len(doc["instances"]) == 3
    inst = doc["instances"][0]
    assert {
        "index",
        "feature_probability",
        "loss",
        "frobenius_sq",
        "dims_per_feature",
        "features",
    } <= inst.keys()
    feature = inst["features"][0]
    assert {
        "index",
        "norm",
        "dimensionality",
        "nearest_fraction",
        "configuration",
        "component",
        "partners",
    } <= feature.keys()
    # Partners rank by |Ŵ_i·W_j| (D_i's denominator), as in the app, and carry it.
    projections = [abs(p["projection"]) for p in feature["partners"]]
    assert projections == sorted(projections, reverse=True) and len(projections) == 5
    total = sum(f["dimensionality"] for f in inst["features"])
    assert total <= 4 + 1e-6, "Σ D_i ≤ d_hidden"

    csv_path = tmp_path / "geometry.csv"
    out = cli("export", str(tmp_path / "run"), "--format", "csv", "-o", str(csv_path))
    assert out.returncode == 0 and csv_path.exists()
    assert len(csv_path.read_text().splitlines()) == 1 + 3 * 12

    history = cli("export", str(tmp_path / "run"), "--history").stdout.splitlines()
    assert history[0] == "step,instance,loss,frobenius_sq"
    assert history[-1].startswith("300,2,")

    # A reader that leaves early (`export … | head`) ends export quietly, without a traceback.
    proc = start("export", str(tmp_path / "run"))
    proc.stdout.close()
    assert proc.wait(timeout=300) == 141
    assert proc.stderr.read() == ""


def test_train_takes_an_out_folder_a_first_save_left_half_written(
    tmp_path: Path, config_file: Path
) -> None:
    # A crash in the first save can leave snapshot files and nothing else: no session to keep.
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "snapshots" / f"{10:012d}-{'0' * 16}.safetensors").write_bytes(b"cut short")
    out = cli("train", "--config", str(config_file), "--steps", "20", "--eager", "--out", str(run))
    assert out.returncode == 0, out.stderr
    assert load_session(run, compiled=False).step == 20
    assert not (run / "snapshots" / f"{10:012d}-{'0' * 16}.safetensors").exists(), "not listed"
    (tmp_path / "other" / "snapshots").mkdir(parents=True)
    (tmp_path / "other" / "snapshots" / "notes.txt").write_text("someone's")
    refused = cli("train", "--config", str(config_file), "--out", str(tmp_path / "other"))
    assert refused.returncode == 2 and "not a session" in refused.stderr


def test_resume_continues(tmp_path: Path, config_file: Path) -> None:
    run = tmp_path / "run"
    assert (
        cli(
            "train", "--config", str(config_file), "--steps", "100", "--eager", "--out", str(run)
        ).returncode
        == 0
    )
    out = cli("train", "--resume", str(run), "--steps", "250", "--eager")
    assert out.returncode == 0, out.stderr
    again = cli("train", "--config", str(config_file), "--eager", "--out", str(run))
    assert again.returncode == 2 and "already holds a session" in again.stderr
    assert load_session(run, compiled=False).step == 250, "a new run never overwrites a session"
    assert "150 steps in" in out.stdout
    assert load_session(run, compiled=False).step == 250


def test_nothing_to_train_saves_the_session_without_a_progress_line(
    tmp_path: Path, config_file: Path
) -> None:
    run = tmp_path / "run"
    fresh = cli("train", "--config", str(config_file), "--steps", "0", "--eager", "--out", str(run))
    assert fresh.returncode == 0, fresh.stderr
    assert (
        fresh.stdout.strip()
        == f"done: nothing to train at step 0/0; saved {run} (the model as initialized)"
    )
    assert "preparing" not in fresh.stderr and "0/1" not in fresh.stderr
    assert load_session(run, compiled=False).step == 0, "the initial model is a session to resume"
    trained = cli("train", "--resume", str(run), "--steps", "20", "--eager")
    assert "done: 20 steps in" in trained.stdout, trained.stderr
    again = cli("train", "--resume", str(run), "--eager")  # at its total already
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"done: nothing to train at step 20/20; saved {run} (unchanged)"
    assert load_session(run, compiled=False).step == 20


def test_resuming_a_session_whose_engine_drew_other_batches_says_so_once(
    tmp_path: Path, config_file: Path
) -> None:
    run = tmp_path / "run"
    trained = cli(
        "train", "--config", str(config_file), "--steps", "40", "--eager", "--out", str(run)
    )
    assert trained.returncode == 0 and "other batches" not in trained.stderr
    record = json.loads((run / "session.json").read_text())
    record.update(engine_version="0.1.0", saved_at=1e12)  # newer than the weights' own copy
    (run / "session.json").write_text(json.dumps(record))
    out = cli("train", "--resume", str(run), "--steps", "60", "--eager")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("trained by engine 0.1.0, which drew other batches") == 1
    again = cli("train", "--resume", str(run), "--steps", "80", "--eager")
    assert again.returncode == 0 and "other batches" not in again.stderr, "saved by this engine"
    assert load_session(run, compiled=False).step == 80


@pytest.mark.parametrize("before", [["--config", "CFG"], ["--steps", "40", "--seed", "3"]])
def test_run_options_before_train_are_the_ones_it_trains(
    tmp_path: Path, config_file: Path, before: list[str]
) -> None:
    # `toygeom-tui --config F train` trained the default config: train's own defaults overwrote
    # the options given before it.
    after = [a for a in ("--config", "CFG", "--steps", "40", "--seed", "3") if a not in before]
    run = tmp_path / "run"
    args = [str(config_file) if a == "CFG" else a for a in (*before, "train", *after)]
    out = cli(*args, "--eager", "--out", str(run))
    assert out.returncode == 0, out.stderr
    trainer = load_session(run, compiled=False)
    assert (trainer.config.name, trainer.step, trainer.config.seed) == ("tiny", 40, 3)


def test_options_before_a_command_reach_it() -> None:
    from toygeom_tui.cli import build_parser

    parse = build_parser().parse_args
    assert parse(["--no-mouse", "attach"]).no_mouse is True
    assert parse(["--no-mouse", "open", "DIR"]).no_mouse is True
    assert parse(["open", "DIR", "--no-mouse"]).no_mouse is True
    assert parse(["--device", "cpu", "open", "DIR"]).device == "cpu"
    assert parse(["open", "DIR"]).device is None and parse(["attach"]).no_mouse is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["train", "--bogus"], ["unrecognized arguments"]),
        (["train", "--preset", "nope"], ["preset: 'nope' is not known"]),
        (["train", "--steps", "-5", "--preset", "pentagon"], ["steps: -5"]),
        (["train", "--config", "/no/such.toml"], ["no such config file"]),
        (["export", "/no/such/session"], ["no such session directory"]),
        (["open", "/no/such/session"], ["no such session directory"]),
        (["--device", "tpu"], ["device: 'tpu'"]),
        (["--steps", "5", "export", "DIR"], ["--steps: not an option of export"]),
        (["--no-mouse", "--seed", "1", "ps"], ["--seed, --no-mouse: not an option of ps"]),
        (["--seed", "0", "presets"], ["--seed: not an option of presets"]),
        (["--preset", "pentagon", "train", "--config", "x.toml"], ["--preset and --config"]),
        (["train", "--resume", "DIR", "--seed", "2"], ["drop --preset/--config/--seed"]),
    ],
)
def test_errors_are_one_line_and_exit_2(args: list[str], words: list[str]) -> None:
    out = cli(*args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for word in words:
        assert word in lines[0]


def test_invalid_config_file_names_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("n_features = -3\n")
    out = cli("train", "--config", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "n_features: -3" in out.stderr


def test_ctrl_c_saves_and_reports(tmp_path: Path, config_file: Path) -> None:
    run = tmp_path / "run"
    proc = start(
        "train", "--config", str(config_file), "--steps", "100000000", "--eager", "--out", str(run)
    )
    _wait_for_progress(proc)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert stdout.strip().splitlines()[-1].startswith("stopped: ")
    trainer = load_session(run, compiled=False)
    assert 0 < trainer.step < 100000000


def test_kill_9_loses_at_most_one_autosave_interval(tmp_path: Path, live_train) -> None:
    run = tmp_path / "run"
    proc = live_train(run, 1.0)
    time.sleep(2.5)
    assert session_info(run).running, "a live trainer's session says it is running"
    proc.kill()
    killed_at = time.time()
    proc.communicate(timeout=30)
    info = session_info(run)
    assert not info.running, "a dead writer is not reported as running"
    assert killed_at - info.saved_at <= 1.0 + 1.0, "at most one interval (plus one step) lost"
    assert load_session(run, compiled=False).step == info.step > 0
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def _wait_for_progress(proc: subprocess.Popen, timeout: float = 120) -> None:
    os.set_blocking(proc.stderr.fileno(), False)
    deadline = time.monotonic() + timeout
    seen = ""
    while "steps/s" not in seen:
        assert time.monotonic() < deadline and proc.poll() is None, seen
        with contextlib.suppress(BlockingIOError):
            seen += os.read(proc.stderr.fileno(), 65536).decode()
        time.sleep(0.1)


def test_progress_says_preparing_until_the_step_is_ready_then_rates_from_there(
    small_config: RunConfig,
) -> None:
    from toygeom_tui.cli import ProgressLine

    trainer = Trainer(small_config.replace(steps=300))
    stream = io.StringIO()  # not a terminal: a line per 10 s, the first rate, and the end
    progress = ProgressLine(trainer, stream)
    progress.begin(trainer)
    trainer.on("log", progress)
    trainer.run()
    first, *rated = stream.getvalue().splitlines()
    assert "0/300" in first and "preparing the step" in first
    assert "steps/s" not in first and "ETA" not in first, "no rate before the step is ready"
    assert rated and all("steps/s" in line and "ETA" in line for line in rated)
    assert "300/300" in rated[-1]
