"""What an autosave costs the training thread, and what it writes, late in the default run.

    python -m toygeom_tui.bench.save_cost [--steps 100000] [--saves 5] [--loop 15] [--dir DIR]

A Trainer of the default config (feature-geometry: 20 instances × 20 hidden × 200 features) is
brought to `--steps` without training: its weight snapshots and history are offered at every
log step as the loop would (100,000 steps keep 120 snapshots of 320 KB, and a full history), so
the session has the size a run of that length saves. Then an `engine.autosave.Autosaver`
(interval 0: it saves at every call) is called as the loop calls it, in three phases:
    first     the first save into an empty folder;
    steady    `--saves` saves with nothing new since the last (late in a run, the usual case);
    new       `--saves` saves, each after one new snapshot is kept (and, the store being full,
              one dropped).
Per save: the milliseconds the call held the caller (the training thread), the milliseconds
until its files were written (by the autosaver's own thread), and the bytes of every file it
wrote (a file counts when its inode, size or mtime changed: each write is a new file renamed
into place). Cells are medians.

Then the same run trains (the step `train` uses) for `--loop` seconds, after a warm-up, twice:
without an autosaver, and with one saving every second: its steps/s each way, and how long each
call that saved held the training thread (median and max). The folder (default: a fresh one
under the current directory, removed after; not /tmp, which may be in memory) should be on the
disk sessions use.
"""

from __future__ import annotations

import argparse
import shutil
import stat
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from engine.autosave import Autosaver
from engine.config import preset
from engine.trainer import Trainer


def trainer_at(steps: int, compiled: bool | None = False) -> Trainer:
    """A default-config Trainer whose snapshots and history are those of `steps` logged steps
    (the weights stay as initialised: sizes, not values, set a save's cost)."""
    trainer = Trainer(preset("feature-geometry"), compiled=compiled)
    trainer.total_steps = max(trainer.total_steps, 2 * steps)
    loss = np.ones(trainer.config.n_inst, np.float32)
    dims = np.ones((trainer.config.n_inst, trainer.config.n_features), np.float32)
    for step in range(trainer.log_every, steps + 1, trainer.log_every):
        advance(trainer, step, loss, dims)
    return trainer


def advance(trainer: Trainer, step: int, loss: np.ndarray, dims: np.ndarray) -> None:
    """Record step `step` as the loop does at a log step (no training)."""
    trainer.step = step
    trainer.latest_loss, trainer.latest_frobenius_sq = loss, loss
    trainer.history.record_metrics(step, loss, loss)
    if step % trainer.dims_every == 0:
        trainer.history.record_dims(step, dims)
    trainer.snapshots.offer(step, trainer.W)


def files_of(directory: Path) -> dict[str, tuple[int, int, int]]:
    """path -> (inode, size, mtime_ns) of every regular file under `directory` (snapshots/
    too), paths relative to it."""
    found = {}
    for path in directory.rglob("*"):
        st = path.lstat()
        if stat.S_ISREG(st.st_mode):
            found[str(path.relative_to(directory))] = (st.st_ino, st.st_size, st.st_mtime_ns)
    return found


def written_bytes(before: dict, after: dict) -> int:
    """Bytes of the files that are new or changed between two `files_of` listings."""
    return sum(meta[1] for name, meta in after.items() if before.get(name) != meta)


def one_save(autosaver: Autosaver, trainer: Trainer) -> tuple[float, float, int]:
    """(ms the call held the caller, ms until written, bytes written) of one autosave."""
    directory = autosaver.directory
    before = files_of(directory) if directory.exists() else {}
    t0 = time.perf_counter()
    autosaver(trainer)
    held = (time.perf_counter() - t0) * 1e3
    autosaver.wait()
    written = (time.perf_counter() - t0) * 1e3
    return held, written, written_bytes(before, files_of(directory))


def next_snapshot(trainer: Trainer, loss: np.ndarray, dims: np.ndarray) -> None:
    """Advance log step by log step until the trainer keeps a new snapshot."""
    newest = trainer.snapshots.steps[-1]
    step = trainer.step
    while trainer.snapshots.steps[-1] == newest:
        step += trainer.log_every
        advance(trainer, step, loss, dims)


def measure(
    steps: int = 100_000, saves: int = 5, directory: Path | None = None
) -> dict[str, dict[str, float]]:
    """Medians per phase: {"first"|"steady"|"new": {"held_ms", "written_ms", "bytes"}}, and the
    run's size."""
    trainer = trainer_at(steps)
    loss = np.ones(trainer.config.n_inst, np.float32)
    dims = np.ones((trainer.config.n_inst, trainer.config.n_features), np.float32)
    size = {"step": float(trainer.step), "snapshots": float(len(trainer.snapshots))}
    root = Path(tempfile.mkdtemp(prefix="save-cost-", dir=directory or Path.cwd()))
    try:
        autosaver = Autosaver(root / "session", interval=0)
        phases: dict[str, list[tuple[float, float, int]]] = {}
        phases["first"] = [one_save(autosaver, trainer)]
        phases["steady"] = [one_save(autosaver, trainer) for _ in range(saves)]
        phases["new"] = []
        for _ in range(saves):
            next_snapshot(trainer, loss, dims)
            phases["new"].append(one_save(autosaver, trainer))
        autosaver.save(trainer, running=False)
    finally:
        shutil.rmtree(root)
    result = {
        name: {
            "held_ms": statistics.median(held for held, _, _ in cells),
            "written_ms": statistics.median(written for _, written, _ in cells),
            "bytes": statistics.median(n for _, _, n in cells),
        }
        for name, cells in phases.items()
    }
    result["run"] = size  # at the first save
    return result


def loop(steps: int, seconds: float, interval: float | None, directory: Path) -> dict[str, float]:
    """Train the run at `steps` for `seconds` with an autosave every `interval` s (None: no
    autosaver): {"rate": steps/s, "saves", "held_ms", "held_max_ms"} (the last two: of the
    calls that saved)."""
    trainer = trainer_at(steps, compiled=None)
    held: list[float] = []
    if interval is not None:
        autosaver = Autosaver(directory / "loop", interval=interval)

        def timed(t: Trainer) -> None:
            last, t0 = autosaver.last, time.perf_counter()
            autosaver(t)
            if autosaver.last != last:  # this call saved
                held.append((time.perf_counter() - t0) * 1e3)

        trainer.on("log", timed)
    thread = threading.Thread(target=trainer.run)
    thread.start()
    while trainer.preparing and thread.is_alive():  # the kernel's build or load
        time.sleep(0.05)
    time.sleep(1.0)
    s0, t0 = trainer.step, time.perf_counter()
    held.clear()
    time.sleep(seconds)
    rate = (trainer.step - s0) / (time.perf_counter() - t0)
    trainer.stop()
    thread.join()
    return {
        "rate": rate,
        "saves": float(len(held)),
        "held_ms": statistics.median(held) if held else 0.0,
        "held_max_ms": max(held, default=0.0),
    }


def measure_loop(
    steps: int = 100_000, seconds: float = 15.0, directory: Path | None = None
) -> dict[str, dict[str, float]]:
    """`loop` without an autosaver ("none") and with one saving every second ("autosave")."""
    root = Path(tempfile.mkdtemp(prefix="save-cost-", dir=directory or Path.cwd()))
    try:
        return {
            "none": loop(steps, seconds, None, root),
            "autosave": loop(steps, seconds, 1.0, root),
        }
    finally:
        shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000, help="the run's length so far")
    parser.add_argument("--saves", type=int, default=5, help="saves per phase")
    parser.add_argument("--loop", type=float, default=15.0, help="seconds of training, each way")
    parser.add_argument("--dir", type=Path, help="where to save (default: under the cwd)")
    args = parser.parse_args()
    r = measure(args.steps, args.saves, args.dir)
    print(f"default run at step {r['run']['step']:,.0f}, {r['run']['snapshots']:.0f} snapshots")
    for name in ("first", "steady", "new"):
        cell = r[name]
        print(f"{name:>7}: {cell['held_ms']:7.1f} ms on the training thread, written in "
              f"{cell['written_ms']:6.1f} ms, {cell['bytes'] / 1e6:6.2f} MB")  # fmt: skip
    if args.loop > 0:
        r = measure_loop(args.steps, args.loop, args.dir)
        none, auto = r["none"], r["autosave"]
        print(f"training: {none['rate']:.1f} steps/s without autosave, {auto['rate']:.1f} with "
              f"one every 1 s ({auto['saves']:.0f} saves, each held the training thread "
              f"{auto['held_ms']:.1f} ms, at most {auto['held_max_ms']:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
