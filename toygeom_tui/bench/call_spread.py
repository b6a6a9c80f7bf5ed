"""How evenly a training run's calls go: the time of every call the Trainer makes, per step.

Reproduce (from the repository root):

    python -m toygeom_tui.bench.call_spread                  # the default, 2,000 steps
    python -m toygeom_tui.bench.call_spread --preset paper-uniform --steps 600

`kernel_rate` takes each shape's best call; `train` reports the mean over all of them. This
prints the spread between: each call's seconds a step (the time between two log records, one
call of up to a log interval each, with the record's own work), their best, median, p90 and
worst, the rate each implies, and the share of the run's time spent beyond the median in the
slowest calls. On a shared box the slow calls come in bursts (a host neighbour, not this
process): `--series` prints every call's ms a step in order, to see them.
"""

from __future__ import annotations

import argparse
import statistics
import time

from engine.config import PRESETS, RunConfig
from engine.trainer import Trainer
from toygeom_tui.bench.report import machine


def call_seconds(cfg: RunConfig) -> list[tuple[float, int]]:
    """(seconds, steps) of every call of a Trainer run of `cfg`, as the log records time them."""
    trainer = Trainer(cfg)
    calls: list[tuple[float, int]] = []

    def record(t: Trainer) -> None:
        now = time.perf_counter()
        calls.append((now - last[0], t.step - last[1]))
        last[:] = [now, t.step]

    trainer.on("log", record)
    last = [time.perf_counter(), trainer.step]  # from here: the model is built
    trainer.run()
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default=RunConfig.name)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--series", action="store_true", help="print every call's ms a step")
    args = parser.parse_args()
    cfg = PRESETS[args.preset].replace(steps=args.steps)
    calls = call_seconds(cfg)
    per_step = sorted(seconds / n for seconds, n in calls if n)
    median = statistics.median(per_step)
    total = sum(seconds for seconds, _ in calls)
    beyond = sum(seconds - median * n for seconds, n in calls if n and seconds / n > median)
    print(machine())
    print(f"{args.preset}, {args.steps} steps in {len(calls)} calls: {total:.2f} s "
          f"({args.steps / total:.1f} steps/s)")  # fmt: skip
    best, p90, worst = per_step[0], per_step[int(0.9 * (len(per_step) - 1))], per_step[-1]
    for name, s in (("best", best), ("median", median), ("p90", p90), ("worst", worst)):
        print(f"  {name:<7}{s * 1e3:7.2f} ms a step  {1 / s:8.1f} steps/s")
    print(f"  time beyond the median in the calls slower than it: {beyond / total:.1%} of the run")
    if args.series:
        print(" ".join(f"{seconds / n * 1e3:.1f}" for seconds, n in calls if n))


if __name__ == "__main__":
    main()
