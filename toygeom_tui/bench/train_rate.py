"""The steps/s `toygeom-tui train` reports on every preset vs the curriculum's plain loop, and the
share of this machine's fp32 matmul rate that the default run reaches.

Reproduce (from the repository root):

    python -m toygeom_tui.bench.train_rate           # ~5 min: 3 rounds of every preset
    python -m toygeom_tui.bench.train_rate --quick   # ~1 min: 1 short round

Each round, per preset, in this order: the plain loop (`engine.reference.CurriculumLoop` on the
preset's shape, warmed up, timed for a few seconds in this process), then `toygeom-tui train
--preset NAME --steps N` in a fresh process, whose own report ("done: N steps in T s (R
steps/s)") is the rate taken: the kernel's loading, the first step, logging, autosave and the
final save all count, as they do for a user. One `train` of each preset runs first, untimed,
so a machine's first build of the kernel (~4 s, once per machine) is not counted. Each round
also times a 2048³ fp32 `torch.mm` (the machine's matmul rate) and the CPU's FMA peak
(`fma_peak`: torch's BLAS does not reach it on every CPU); the default run's share of each is
its steps/s × the step's FLOPs (five batched products, 2·inst·batch·hidden·feats each) over
that rate. Cells are medians over rounds.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from engine.config import PRESETS, RunConfig, preset
from engine.reference import CurriculumLoop
from toygeom_tui.bench.fma_peak import peak_rate

# `train` steps per preset: the tiny presets as a user runs them (their own 10,000 steps), the
# larger ones enough for ~10–30 s of training.
TRAIN_STEPS = {"feature-geometry": 2000, "paper-uniform": 600, "sparsity-sweep": 3000}
QUICK_TRAIN_STEPS = {"feature-geometry": 100, "paper-uniform": 50, "sparsity-sweep": 200}
# The targets for `train` vs the plain loop (every other preset: 5×).
TARGETS = {"feature-geometry": 15.0, "pentagon": 10.0, "correlated": 10.0, "anticorrelated": 10.0}
_REPORTED = re.compile(r"^\w+: (\d+) steps in [\d.]+ s \(([\d.]+) steps/s\)", re.MULTILINE)


def step_flops(cfg: RunConfig) -> float:
    """FLOPs of one training step's five batched matrix products."""
    return 5 * 2.0 * cfg.n_inst * cfg.batch_size * cfg.d_hidden * cfg.n_features


def matmul_rate(seconds: float, n: int = 2048) -> float:
    """fp32 GFLOP/s of an n³ `torch.mm` on torch's threads (best of ~`seconds` of repeats)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.mm(a, b)  # warm-up
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def plain_rate(loop: CurriculumLoop, seconds: float) -> float:
    """Steps/s of the curriculum's loop over about `seconds` (a short probe sizes the run)."""
    t0 = time.perf_counter()
    loop.run(3)
    n = max(1, int(seconds * 3 / max(time.perf_counter() - t0, 1e-9)))
    t0 = time.perf_counter()
    loop.run(n)
    return n / (time.perf_counter() - t0)


def train_rate(name: str, steps: int) -> float:
    """The steps/s `toygeom-tui train --preset name --steps steps` reports, run as a user would."""
    with tempfile.TemporaryDirectory(prefix="toygeom-bench-") as tmp:
        command = [sys.executable, "-m", "toygeom_tui", "train", "--preset", name,
                   "--steps", str(steps), "--out", str(Path(tmp) / "run")]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    match = _REPORTED.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"train --preset {name} failed: {done.stderr.strip()[-300:]}")
    return float(match.group(2))


def measure(
    names: list[str],
    rounds: int,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict[str, float]]:
    """Per preset: median plain and train steps/s over `rounds` alternating rounds; under
    "matmul" and "peak": the median fp32 GFLOP/s of torch.mm and of the FMA peak in those
    rounds (no "peak" where its probe cannot be built)."""
    steps = QUICK_TRAIN_STEPS if quick else TRAIN_STEPS
    plain_seconds = 1.0 if quick else 4.0
    loops = {name: CurriculumLoop(preset(name)) for name in names}
    for name in names:  # untimed: builds the kernel on a fresh machine, warms the file cache
        train_rate(name, 20)
    cells: dict[str, dict[str, list[float]]] = {n: {"plain": [], "train": []} for n in names}
    cells["matmul"], cells["peak"] = {"gflops": []}, {"gflops": []}
    for r in range(rounds):
        cells["matmul"]["gflops"].append(matmul_rate(0.5 if quick else 2.0))
        if (peak := peak_rate(seconds=0.5 if quick else 1.0)) is not None:
            cells["peak"]["gflops"].append(peak)
        for name in names:
            cells[name]["plain"].append(plain_rate(loops[name], plain_seconds))
            cells[name]["train"].append(train_rate(name, steps.get(name, preset(name).steps)))
            if progress:
                p, t = cells[name]["plain"][-1], cells[name]["train"][-1]
                progress(f"round {r + 1}/{rounds} {name}: plain {p:.1f}, train {t:.1f} steps/s")
    return {
        name: {k: statistics.median(v) for k, v in cell.items() if v}
        for name, cell in cells.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 short round")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} rounds")
    r = measure(args.presets, rounds, args.quick, print)
    gflops, peak = r["matmul"]["gflops"], r["peak"].get("gflops", float("nan"))
    print(f"\nfp32 matmul (2048³ torch.mm): {gflops:.1f} GFLOP/s; FMA peak {peak:.1f} GFLOP/s")
    print(f"{'preset':18s} {'plain':>9s} {'train':>9s} {'ratio':>7s} {'of matmul':>10s}"
          f" {'of peak':>8s}")  # fmt: skip
    for name in args.presets:
        cell, cfg = r[name], preset(name)
        done = cell["train"] * step_flops(cfg) / 1e9
        ratio = cell["train"] / cell["plain"]
        print(f"{name:18s} {cell['plain']:9.1f} {cell['train']:9.1f} "
              f"{ratio:6.1f}× {done / gflops:9.0%} {done / peak:7.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
