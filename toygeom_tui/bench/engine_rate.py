"""Training steps per second: the curriculum's plain autograd loop vs the engine.

Reproduce (from the repository root):

    python -m toygeom_tui.bench.engine_rate          # ~3 min: default + pentagon configs
    python -m toygeom_tui.bench.engine_rate --configs correlated anticorrelated  # any presets
    python -m toygeom_tui.bench.engine_rate --quick  # ~1 min, fewer and shorter rounds
    python -m toygeom_tui.bench.engine_rate --cpu-time  # one thread, CPU seconds

`--cpu-time` runs everything on one thread and divides by the thread's CPU time instead of the
wall clock: a machine shared with other jobs then barely moves the numbers (wall-clock rates on
a busy 2-core box swing 5× between rounds).

Methods, timed in alternating rounds within one process so that a noisy (shared, virtualised)
machine slows them alike; each cell is the median over rounds:
    plain     the curriculum's loop: batch-major einsum forward, x = where(rand ≤ p, rand, 0)
              from two torch.rand calls, autograd, torch.optim.Adam, lr set every step;
    step      the engine's `make_step` with Adam, as the Trainer runs it, without the loop;
    trainer   `engine.trainer.Trainer.run` (logging, observers, dims recording included).
Compiled paths are warmed up (compiled) before any timing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from engine.config import PRESETS, RunConfig, resolve_feature_probability, resolve_importance
from engine.model import init_params
from engine.optim import Adam
from engine.reference import CurriculumLoop
from engine.step import make_step, torch_threads_for
from engine.trainer import Trainer

CONFIGS = {
    "default": RunConfig(steps=10**9),
    **{name: cfg.replace(steps=10**9) for name, cfg in PRESETS.items() if name != RunConfig.name},
}


def plain_runner(cfg: RunConfig) -> Callable[[int], None]:
    """`run(n)` does n steps of the curriculum's `optimize` loop."""
    return CurriculumLoop(cfg).run


def step_runner(cfg: RunConfig) -> Callable[[int], None]:
    """`run(n)` does n engine steps with Adam, 10 a call, as `Trainer._train_steps` does."""
    device = cfg.resolve_device()
    W, b_final = init_params(cfg.n_inst, cfg.d_hidden, cfg.n_features, cfg.seed, device)
    adam = Adam({"W": W, "b_final": b_final}, cfg)
    step_fn = make_step(
        resolve_feature_probability(cfg).to(device),
        resolve_importance(cfg).to(device),
        cfg.batch_size,
        cfg.seed,
        cfg.data,
        cfg.model,
    )
    step = 0

    @torch.no_grad()
    def run(n: int) -> None:
        nonlocal step
        with torch_threads_for(step_fn):
            for start in range(0, n, 10):
                m = min(10, n - start)
                step_fn.train(W, b_final, adam, step, [cfg.lr] * m)
                step += m

    return run


def trainer_runner(cfg: RunConfig) -> Callable[[int], None]:
    trainer = Trainer(cfg)

    def run(n: int) -> None:
        trainer.run(until=trainer.step + n)

    return run


RUNNERS = {"plain": plain_runner, "step": step_runner, "trainer": trainer_runner}


def rate(
    run: Callable[[int], None], seconds: float, first_n: int, clock: Callable[[], float]
) -> float:
    """Steps per `clock` second of `run` over about `seconds` (a short probe sizes the chunk)."""
    t0 = clock()
    run(first_n)
    probe = clock() - t0
    n = max(1, int(seconds * first_n / max(probe, 1e-9)))
    t0 = clock()
    run(n)
    return n / (clock() - t0)


def synced(run: Callable[[int], None], device: torch.device) -> Callable[[int], None]:
    """`run` that returns only when the device has finished its work (CUDA runs ahead)."""
    if device.type != "cuda":
        return run

    def run_synced(n: int) -> None:
        run(n)
        torch.cuda.synchronize(device)

    return run_synced


def measure(
    cfg: RunConfig,
    rounds: int,
    seconds: float,
    clock: Callable[[], float] = time.perf_counter,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, float]:
    """Median steps/s of each method in RUNNERS on `cfg`, timed in alternating rounds.

    progress(round, rates of that round) is called after each round.
    """
    device = cfg.resolve_device()
    runners = {method: synced(make(cfg), device) for method, make in RUNNERS.items()}
    for run in runners.values():  # warm-up: compiles, allocator, Adam state
        run(3)
    rates: dict[str, list[float]] = {m: [] for m in runners}
    first_n = 2 if cfg.n_features >= 100 else 50
    for r in range(rounds):
        for method, run in runners.items():
            rates[method].append(rate(run, seconds, first_n, clock))
        if progress:
            progress(r, {m: v[-1] for m, v in rates.items()})
    return {m: statistics.median(v) for m, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of ~1 s per method")
    parser.add_argument(
        "--configs", nargs="+", default=["default", "pentagon"], choices=list(CONFIGS)
    )
    parser.add_argument("--cpu-time", action="store_true", help="1 thread, per CPU second")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, … (default cpu)")
    args = parser.parse_args()
    rounds, seconds = (2, 1.0) if args.quick else (5, 3.0)
    clock = time.perf_counter
    if args.cpu_time:
        torch.set_num_threads(1)
        clock = time.thread_time
    unit = "steps per CPU second" if args.cpu_time else "steps/s"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} rounds, {unit}")
    results = {}
    for name in args.configs:

        def show(r: int, rates: dict[str, float], name: str = name) -> None:
            cells = "  ".join(f"{m} {v:8.1f}" for m, v in rates.items())
            print(f"  {name} round {r + 1}/{rounds}: {cells}", flush=True)

        cfg = CONFIGS[name].replace(device=args.device)
        results[name] = measure(cfg, rounds, seconds, clock, show)
    print(
        f"\n{'config':10s} {'plain':>9s} {'step':>9s} {'trainer':>9s}  {'step/plain':>10s}"
        f" {'trainer/plain':>13s}   ({unit}, medians)"
    )
    for name, r in results.items():
        print(
            f"{name:10s} {r['plain']:9.1f} {r['step']:9.1f} {r['trainer']:9.1f}"
            f"  {r['step'] / r['plain']:9.2f}× {r['trainer'] / r['plain']:12.2f}×"
        )


if __name__ == "__main__":
    main()
