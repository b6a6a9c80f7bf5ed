"""A sweep's throughput: runs per minute for 24 pentagon runs (seeds 0–23) as one
`toygeom-tui sweep` against 24 separate `toygeom-tui train` processes, one after another.

    python -m toygeom_tui.bench.sweep_rate [--runs 24] [--steps N] [--jobs N] [--rounds 1]

Both are timed from outside, as a user waits for them, process start-up included. Rounds
alternate which goes first, so a machine that gets busier or quieter favours neither.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "toygeom_tui"]


def spec_text(runs: int, steps: int | None) -> str:
    lines = ['preset = "pentagon"', 'device = "cpu"']
    if steps is not None:
        lines.append(f"steps = {steps}")
    lines += ["[grid]", f"seed = {list(range(runs))}"]
    return "\n".join(lines) + "\n"


def sweep_seconds(folder: Path, runs: int, steps: int | None, jobs: int | None) -> float:
    spec = folder / "bench.toml"
    spec.write_text(spec_text(runs, steps))
    out = folder / f"sweep-{time.monotonic_ns()}"
    command = [*CLI, "sweep", str(spec), "--out", str(out)]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def separate_seconds(folder: Path, runs: int, steps: int | None) -> float:
    out = folder / f"train-{time.monotonic_ns()}"
    extra = ["--steps", str(steps)] if steps is not None else []
    start = time.perf_counter()
    for seed in range(runs):
        subprocess.run([*CLI, "train", "--preset", "pentagon", "--device", "cpu", "--seed",
                        str(seed), *extra, "--autosave", "0", "--out", str(out / str(seed))],
                       check=True, capture_output=True)  # fmt: skip
    return time.perf_counter() - start


def measure(
    runs: int = 24,
    steps: int | None = None,
    jobs: int | None = None,
    rounds: int = 1,
    say=lambda line: None,
) -> dict[str, float]:
    """Median runs per minute of each way: {"sweep": …, "separate": …}."""
    rates: dict[str, list[float]] = {"sweep": [], "separate": []}
    with tempfile.TemporaryDirectory(prefix="toygeom-bench-sweep-") as tmp:
        folder = Path(tmp)
        for r in range(rounds):
            order = ("sweep", "separate") if r % 2 == 0 else ("separate", "sweep")
            for way in order:
                if way == "sweep":
                    seconds = sweep_seconds(folder, runs, steps, jobs)
                else:
                    seconds = separate_seconds(folder, runs, steps)
                rates[way].append(60.0 * runs / seconds)
                say(f"round {r + 1}/{rounds}: {way} {seconds:.1f} s, {rates[way][-1]:.1f} runs/min")
    return {way: statistics.median(values) for way, values in rates.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=24, help="pentagon runs (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, help="steps per run (default: the preset's)")
    parser.add_argument("--jobs", type=int, help="the sweep's --jobs (default: one per core)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both")
    args = parser.parse_args(argv)
    from toygeom_tui.bench.report import machine

    print(f"sweep rate on {machine()}", file=sys.stderr, flush=True)
    rates = measure(args.runs, args.steps, args.jobs, args.rounds,
                    lambda line: print(line, file=sys.stderr, flush=True))  # fmt: skip
    steps = args.steps if args.steps is not None else "the preset's"
    print(
        f"{args.runs} pentagon runs ({steps} steps each): one sweep {rates['sweep']:.1f} runs/min, "
        f"separate train processes {rates['separate']:.1f} runs/min, "
        f"{rates['sweep'] / rates['separate']:.2f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
