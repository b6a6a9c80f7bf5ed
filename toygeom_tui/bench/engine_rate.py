"""Training steps per second: the curriculum's plain autograd loop vs the engine.

Reproduce (from the repository root):

    python -m toygeom_tui.bench.engine_rate          # ~3 min: default + pentagon configs
    python -m toygeom_tui.bench.engine_rate --quick  # ~1 min, fewer and shorter rounds
    python -m toygeom_tui.bench.engine_rate --cpu-time  # one thread, CPU seconds

`--cpu-time` runs everything on one thread and divides by the thread's CPU time instead of the
wall clock: a machine shared with other jobs then barely moves the numbers (wall-clock rates on
a busy 2-core box swing 5× between rounds).

Methods, timed in alternating rounds within one process so that a noisy (shared, virtualised)
machine slows them alike; each cell is the median over rounds:
    plain     the curriculum's loop: batch-major einsum forward, x = where(rand ≤ p, rand, 0)
              from two torch.rand calls, autograd, torch.optim.Adam, lr set every step;
    step      the engine's `make_step` + fused Adam, as the Trainer runs them, without the loop;
    trainer   `engine.trainer.Trainer.run` (logging, observers, dims recording included).
Compiled paths are warmed up (compiled) before any timing.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from einops import einsum, reduce

from engine.config import RunConfig, preset, resolve_feature_probability, resolve_importance
from engine.model import init_params, lr_factor
from engine.step import make_step
from engine.trainer import Trainer

CONFIGS = {
    "default": RunConfig(steps=10**9),
    "pentagon": preset("pentagon").replace(steps=10**9),  # 8 inst × 5 feats × 2 dims
}


class PlainModel(torch.nn.Module):
    """The curriculum's ToyModel (ARENA): batch-major, einsum, autograd."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        W, b_final = init_params(cfg.n_inst, cfg.d_hidden, cfg.n_features, cfg.seed)
        self.W = torch.nn.Parameter(W)
        self.b_final = torch.nn.Parameter(b_final)
        self.feature_probability = resolve_feature_probability(cfg)  # inst feats
        self.importance = resolve_importance(cfg)  # inst feats

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = einsum(features, self.W, "... inst feats, inst hidden feats -> ... inst hidden")
        out = einsum(h, self.W, "... inst hidden, inst hidden feats -> ... inst feats")
        return torch.relu(out + self.b_final)

    def generate_batch(self, batch_size: int) -> torch.Tensor:
        shape = (batch_size, *self.feature_probability.shape)  # batch inst feats
        feat_mag = torch.rand(shape)
        feat_seeds = torch.rand(shape)
        return torch.where(feat_seeds <= self.feature_probability, feat_mag, 0.0)

    def calculate_loss(self, out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        error = self.importance * (batch - out) ** 2
        return reduce(error, "batch inst feats -> inst", "mean").sum()


def plain_runner(cfg: RunConfig) -> Callable[[int], None]:
    """`run(n)` does n steps of the curriculum's `optimize` loop."""
    model = PlainModel(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step = 0

    def run(n: int) -> None:
        nonlocal step
        for _ in range(n):
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, step, cfg.steps)
            optimizer.zero_grad()
            batch = model.generate_batch(cfg.batch_size)
            loss = model.calculate_loss(model(batch), batch)
            loss.backward()
            optimizer.step()
            step += 1

    return run


def step_runner(cfg: RunConfig) -> Callable[[int], None]:
    """`run(n)` does n engine steps + fused Adam, exactly as `Trainer._train_one_step`."""
    W, b_final = init_params(cfg.n_inst, cfg.d_hidden, cfg.n_features, cfg.seed)
    optimizer = torch.optim.Adam([W, b_final], lr=cfg.lr, fused=True)
    step_fn = make_step(
        resolve_feature_probability(cfg),
        resolve_importance(cfg),
        cfg.batch_size,
        cfg.seed,
        cfg.data,
        cfg.model,
    )
    step = 0

    @torch.no_grad()
    def run(n: int) -> None:
        nonlocal step
        for _ in range(n):
            step_fn(W, b_final, step)
            optimizer.step()
            step += 1

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


def bench(
    name: str, cfg: RunConfig, rounds: int, seconds: float, clock: Callable[[], float]
) -> dict[str, float]:
    runners = {method: make(cfg) for method, make in RUNNERS.items()}
    for run in runners.values():  # warm-up: compiles, allocator, Adam state
        run(3)
    rates: dict[str, list[float]] = {m: [] for m in runners}
    first_n = 2 if cfg.n_features >= 100 else 50
    for r in range(rounds):
        for method, run in runners.items():
            rates[method].append(rate(run, seconds, first_n, clock))
        cells = "  ".join(f"{m} {rates[m][-1]:8.1f}" for m in runners)
        print(f"  {name} round {r + 1}/{rounds}: {cells}", flush=True)
    return {m: statistics.median(v) for m, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of ~1 s per method")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--cpu-time", action="store_true", help="1 thread, per CPU second")
    args = parser.parse_args()
    rounds, seconds = (2, 1.0) if args.quick else (5, 3.0)
    clock = time.perf_counter
    if args.cpu_time:
        torch.set_num_threads(1)
        clock = time.thread_time
    unit = "steps per CPU second" if args.cpu_time else "steps/s"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} rounds, {unit}")
    results = {name: bench(name, CONFIGS[name], rounds, seconds, clock) for name in args.configs}
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
