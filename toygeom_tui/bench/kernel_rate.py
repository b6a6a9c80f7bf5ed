"""The fused CPU kernel's own steps/s on each preset's shape: this tree's kernel against the kernel
of another git revision, so a change to engine/csrc is measured before and after in one run.

Reproduce (from the repository root of a git checkout):

    python -m toygeom_tui.bench.kernel_rate                    # vs HEAD~1, every wide preset
    python -m toygeom_tui.bench.kernel_rate --against main --presets feature-geometry
    python -m toygeom_tui.bench.kernel_rate --march x86-64-v3    # both built for AVX2 machines
    python -m toygeom_tui.bench.kernel_rate --threads 2 --steps 10  # as the Trainer calls it
    python -m toygeom_tui.bench.kernel_rate --data normal        # each preset's shape, other data

Both kernels are built from source with the same flags (the other revision's
engine/csrc/fused_step.cpp, taken with `git show`; it must keep `struct Job`, which the ctypes
mirror assumes) and run `fused_train` (batch, gradients and Adam; no Trainer, no Python per step)
on one thread (or --threads), in alternating rounds within one process. Each cell is the best of
many short calls: on a machine shared with other work, the best call is the one least disturbed,
so the ratio stays meaningful where mean rates swing with the load. GFLOP/s counts the step's five
dense products (2·inst·batch·hidden·feats each), whatever the kernel skips.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from engine import fused_cpu
from engine.config import (
    DATA,
    PRESETS,
    RunConfig,
    preset,
    resolve_feature_probability,
    resolve_importance,
)
from engine.model import init_params
from engine.optim import Adam
from toygeom_tui.bench.report import machine
from toygeom_tui.bench.train_rate import step_flops

# The presets the wide layout runs (the tiny ones are bound by the Trainer, not the kernel).
WIDE = [name for name, cfg in PRESETS.items() if cfg.d_hidden * cfg.n_features > 64]


def revision_kernel(revision: str, march: str = "native") -> ctypes.CDLL:
    """The kernel of engine/csrc/fused_step.cpp at a git revision, built (for `march`) and
    loaded."""
    here = fused_cpu.SOURCE.resolve()
    git = ["git", "-C", str(here.parent)]
    root = subprocess.run([*git, "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    relative = here.relative_to(Path(root).resolve()).as_posix()
    source = subprocess.run(
        [*git, "show", f"{revision}:{relative}"], capture_output=True, check=True
    ).stdout
    with tempfile.TemporaryDirectory(prefix="toygeom-kernel-") as tmp:
        path = Path(tmp) / "fused_step.cpp"
        path.write_bytes(source)
        return fused_cpu.load(path, march=march)


def best_step_seconds(
    cfg: RunConfig, library: ctypes.CDLL, calls: int, threads: int = 1, steps: int | None = None
) -> float:
    """The fastest of `calls` fused_train calls of `steps` steps each (default: ~0.2 GFLOP, short
    enough to run undisturbed) on `threads` threads, in seconds a step."""
    W, b_final = init_params(cfg.n_inst, cfg.d_hidden, cfg.n_features, cfg.seed)
    adam = Adam({"W": W, "b_final": b_final}, cfg)
    p, importance = resolve_feature_probability(cfg), resolve_importance(cfg)
    n = steps or max(1, int(2e8 / step_flops(cfg)))
    settings = (cfg.data, cfg.seed)
    best = float("inf")
    for call in range(calls + 1):  # the first warms the caches
        t0 = time.perf_counter()
        fused_cpu.fused_train(
            W, b_final, adam, p, importance, *settings, call * n, [cfg.lr] * n, cfg.batch_size,
            cfg.model, threads=threads, library=library,
        )  # fmt: skip
        if call:
            best = min(best, (time.perf_counter() - t0) / n)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="HEAD~1", help="git revision (default HEAD~1)")
    parser.add_argument("--presets", nargs="+", default=WIDE, choices=list(PRESETS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10, help="calls a cell a round")
    parser.add_argument("--march", default="native", help="CPU to build for (x86-64-v3: AVX2)")
    parser.add_argument("--threads", type=int, default=1, help="the kernel's threads (default 1)")
    parser.add_argument("--steps", type=int, help="steps a call (default: ~0.2 GFLOP a call)")
    parser.add_argument("--data", choices=DATA, help="the batches' variant (default: the preset's)")
    args = parser.parse_args()
    kernels = {
        "this tree": fused_cpu.load(march=args.march),
        args.against: revision_kernel(args.against, args.march),
    }
    torch.set_num_threads(1)
    configs = {name: preset(name) for name in args.presets}
    if args.data:
        configs = {name: cfg.replace(data=args.data) for name, cfg in configs.items()}
    data = f"data {args.data}" if args.data else "each preset's data"
    print(f"{machine()}; kernel threads {args.threads}; -march={args.march}; {data}; "
          f"{args.rounds} rounds; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    best = {(name, k): float("inf") for name in args.presets for k in kernels}
    for _ in range(args.rounds):
        for name in args.presets:
            for k, library in kernels.items():
                seconds = best_step_seconds(configs[name], library, args.calls, args.threads,
                                            args.steps)  # fmt: skip
                best[name, k] = min(best[name, k], seconds)
    mine, theirs = kernels
    print(f"{'preset':18s} {mine:>22s} {theirs:>22s} {'ratio':>6s}")
    for name in args.presets:
        gflop = step_flops(preset(name)) / 1e9
        cells = [
            f"{1 / best[name, k]:6.1f}/s {gflop / best[name, k]:5.1f} GFLOP/s" for k in kernels
        ]
        print(f"{name:18s} {cells[0]:>22s} {cells[1]:>22s} "
              f"{best[name, theirs] / best[name, mine]:5.2f}×")  # fmt: skip
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
