"""Memory over a long run: the process's resident size must stay flat (history is decimated).

    python -m toygeom_tui.bench.memory [--steps 1000000] [--headless]

Trains the small model (the pentagon preset: 8 instances × 5 features × 2 dims) for `--steps`
steps with the app attached (Textual's headless driver: it lays out and renders every frame), and
samples the resident set size ten times. Growth is measured from the first sample (taken after
the first tenth of the run: compilation, allocator warm-up and the first history buffers are
behind us) to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import threading
from collections.abc import Callable

from engine.config import preset
from engine.trainer import DONE, Trainer

SAMPLES = 10


def rss_mb() -> float:
    """Current resident set size in MB (Linux), else the peak so far."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


def _sampler(steps: int, samples: list[tuple[int, float]]) -> Callable:
    """A "log" observer that records (step, RSS) at every tenth of the run."""
    marks = iter(range(steps // SAMPLES, steps + 1, max(1, steps // SAMPLES)))
    next_mark = [next(marks)]

    def sample(t: Trainer) -> None:
        if t.step >= next_mark[0]:
            samples.append((t.step, rss_mb()))
            next_mark[0] = next(marks, steps + 1)

    return sample


def measure(
    steps: int = 1_000_000, with_app: bool = True, size: tuple[int, int] = (160, 48)
) -> dict[str, float]:
    """Train the small model `steps` steps; RSS at the first and last sample, and the growth."""
    trainer = Trainer(preset("pentagon").replace(steps=steps))
    samples: list[tuple[int, float]] = []
    trainer.on("log", _sampler(steps, samples))
    if with_app:
        asyncio.run(_with_app(trainer, size))
    else:
        thread = threading.Thread(target=trainer.run)
        thread.start()
        thread.join()
    if trainer.state != DONE or len(samples) < 2:
        raise RuntimeError(f"the run ended {trainer.state} at step {trainer.step}")
    (_, first), (_, last) = samples[0], samples[-1]
    metrics = trainer.history.metrics_arrays()[0]
    return {
        "steps": float(trainer.step),
        "rss_first_mb": first,
        "rss_last_mb": last,
        "growth_mb": last - first,
        "history_records": float(len(metrics)),
    }


async def _with_app(trainer: Trainer, size: tuple[int, int]) -> None:
    from toygeom_tui.app import ToygeomApp  # the app only when asked for: --headless stays light

    app = ToygeomApp(trainer, autosave_seconds=0)
    async with app.run_test(size=size):
        while trainer.state != DONE:
            await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--headless", action="store_true", help="without the app attached")
    args = parser.parse_args()
    r = measure(args.steps, with_app=not args.headless)
    print(
        f"{int(r['steps']):,} steps on the pentagon model: RSS {r['rss_first_mb']:.1f} MB at "
        f"the first tenth, {r['rss_last_mb']:.1f} MB at the end ({r['growth_mb']:+.1f} MB); "
        f"history holds {int(r['history_records'])} records"
    )


if __name__ == "__main__":
    main()
