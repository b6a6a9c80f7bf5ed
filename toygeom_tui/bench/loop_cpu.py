"""What the app's event loop costs in CPU, read from the thread's own CPU clock: a figure that
the machine's noise moves far less than steps/s.

    python -m toygeom_tui.bench.loop_cpu [--seconds 12] [--presses 40]
    PYTHONPATH=OLD python toygeom_tui/bench/loop_cpu.py     # OLD: `git archive REV | tar -x -C OLD`

The default run is trained to step 3,000, then shown in the app (Textual's headless driver,
160×48): the event loop's share of a core while it watches the run train for `--seconds`; its
CPU per key press (j, every 0.2 s, the run paused, so nothing else moves); and the CPU of one
search for jumps over the run's D_i history (the dashboard runs it on a worker thread). Run as
a file with PYTHONPATH set, it measures another revision's app and engine (it uses only what
they have had since session format 3).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from textual import events

from engine.config import RunConfig
from engine.jumps import history_jumps
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp

SIZE = (160, 48)
STEPS = 3_000


async def app_cpu(trainer: Trainer, seconds: float, presses: int) -> tuple[float, float]:
    """(share of a core while watching, CPU seconds per key press)."""
    app = ToygeomApp(trainer, autosave_seconds=0)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(2.0)  # the first frames
        c0, t0 = time.thread_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        watching = (time.thread_time() - c0) / (time.perf_counter() - t0)
        trainer.pause()
        await pilot.pause(1.0)
        idle0, t0 = time.thread_time(), time.perf_counter()
        await asyncio.sleep(presses * 0.2)  # the loop's own cost with nothing to do
        idle = (time.thread_time() - idle0) / (time.perf_counter() - t0)
        c0 = time.thread_time()
        for _ in range(presses):
            key = "j" if app.dashboard.selected < trainer.config.n_inst - 1 else "g"
            app.post_message(events.Key(key, key))
            await asyncio.sleep(0.2)
        per_press = (time.thread_time() - c0 - idle * presses * 0.2) / presses
    trainer.stop()
    return watching, per_press


def jumps_cpu(trainer: Trainer, calls: int = 5) -> float:
    c0 = time.thread_time()
    for _ in range(calls):
        history_jumps(trainer.history)
    return (time.thread_time() - c0) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="of watching")
    parser.add_argument("--presses", type=int, default=40, help="key presses")
    args = parser.parse_args()
    trainer = Trainer(RunConfig())
    trainer.run(until=STEPS)
    records = len(trainer.history.dims_arrays()[0])
    jumps = jumps_cpu(trainer)
    watching, per_press = asyncio.run(app_cpu(trainer, args.seconds, args.presses))
    print(f"event loop: {watching:.1%} of a core while the app watches the default run; "
          f"{per_press * 1e3:.1f} ms of CPU a key press (paused run)")  # fmt: skip
    print(f"one search for jumps over {records} D_i records: {jumps * 1e3:.1f} ms of CPU")


if __name__ == "__main__":
    main()
