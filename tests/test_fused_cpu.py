"""The fused C++ kernel: the same batch and the same gradients as the torch paths, deterministic,
and a failed build falls back to the compiled step with one warning.

Skipped where the kernel is not meant to build (no g++, not x86-64 Linux); where it is meant
to, a failing build fails these tests.
"""

from __future__ import annotations

import platform
import shutil
import sys
import warnings
from pathlib import Path

import pytest
import torch
from gradients import assert_relative, assert_trains_like_eager, autograd_grads

import engine.step as step_module
from engine import fused_cpu
from engine.config import RunConfig
from engine.data import PRESENCE, generate_batch
from engine.model import init_params
from engine.rng import counter_base, seed_key
from engine.step import CompiledStep, EagerStep, FusedStep, closed_form_grads, make_step
from engine.trainer import Trainer

if shutil.which(fused_cpu.COMPILER) is None:
    pytest.skip(f"no C++ compiler ({fused_cpu.COMPILER})", allow_module_level=True)
if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
    pytest.skip("the kernel is built on x86-64 Linux only", allow_module_level=True)

compiles = pytest.mark.timeout(300)  # the first torch.compile is ~10–30 s cold


def _setup(
    n_inst: int, d_hidden: int, n_feat: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """W (inst hidden feats), a non-zero bias, p (inst feats) and a non-trivial importance."""
    W, _ = init_params(n_inst, d_hidden, n_feat, seed=0)
    generator = torch.Generator().manual_seed(1)
    b_final = 0.1 * torch.randn(n_inst, n_feat, generator=generator)
    p = torch.rand(n_inst, n_feat, generator=generator) * 0.6 + 0.02
    importance = 0.9 ** torch.arange(n_feat, dtype=torch.float32) * torch.ones(n_inst, 1)
    return W, b_final, p, importance


# Shapes off the kernel's blocks (4 rows, 4 hidden, 16-feature vectors, 32-row tiles), to leave
# every remainder: 5 or 37 features, batches 7, 101, 102, hidden 1, 3, 6; and the default model.
SHAPES = [(3, 3, 37, 101), (3, 6, 37, 102), (3, 20, 37, 100), (2, 1, 5, 7), (2, 20, 200, 1024)]


@pytest.mark.parametrize("model", ["relu", "linear"])
@pytest.mark.parametrize(("n_inst", "d_hidden", "n_feat", "batch"), SHAPES)
def test_fused_gradients_equal_autograd_and_the_closed_form(
    model: str, n_inst: int, d_hidden: int, n_feat: int, batch: int
) -> None:
    W, b_final, p, importance = _setup(n_inst, d_hidden, n_feat)
    x = generate_batch("uniform", p, batch, seed=3, step=11)
    got = fused_cpu.fused_grads(W, b_final, x.transpose(1, 2), importance, model)
    reference = closed_form_grads(W, b_final, x.transpose(1, 2), importance, model)
    autograd = autograd_grads(W, b_final, x, importance, model)
    for a, b, c in zip(got, reference, autograd, strict=True):
        assert_relative(a, b, 2e-6)
        assert_relative(a, c, 1e-5)


@pytest.mark.parametrize(("n_inst", "d_hidden", "n_feat", "batch"), SHAPES)
def test_the_kernels_batch_is_generate_batch_bit_for_bit(
    n_inst: int, d_hidden: int, n_feat: int, batch: int
) -> None:
    """Drawn inside the kernel or passed in, the same batch gives bit-identical results."""
    W, b_final, p, importance = _setup(n_inst, d_hidden, n_feat)
    for seed, step in ((0, 0), (12345, 10**9)):  # counters past 2^32; products wrap
        x = generate_batch("uniform", p, batch, seed, step)
        base = counter_base(step, PRESENCE, x.numel())
        drawn = fused_cpu.fused_uniform_grads(
            W, b_final, p, importance, base, seed_key(seed), batch, "relu"
        )
        passed = fused_cpu.fused_grads(W, b_final, x.transpose(1, 2), importance, "relu")
        for a, b in zip(drawn, passed, strict=True):
            assert torch.equal(a, b)


def test_fused_results_are_deterministic_whatever_the_threads() -> None:
    W, b_final, p, importance = _setup(5, 20, 200)
    args = (W, b_final, p, importance, 777, seed_key(2), 300, "relu")
    first = fused_cpu.fused_uniform_grads(*args)
    threads = torch.get_num_threads()
    try:
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            for a, b in zip(fused_cpu.fused_uniform_grads(*args), first, strict=True):
                assert torch.equal(a, b)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("model", ["relu", "linear"])
def test_make_step_takes_the_kernel_on_the_cpu(model: str) -> None:
    W, b_final, p, importance = _setup(4, 5, 20)
    fused = make_step(p, importance, 256, seed=4, data="uniform", model=model)
    assert isinstance(fused, FusedStep)
    eager = EagerStep(p, importance, 256, 4, "uniform", model)
    for step in (0, 9):
        got = (fused(W, b_final, step), W.grad, b_final.grad)
        want = (eager(W, b_final, step), W.grad, b_final.grad)
        x = generate_batch("uniform", p, 256, seed=4, step=step)
        for a, b, c in zip(
            got, want, autograd_grads(W, b_final, x, importance, model), strict=True
        ):
            assert_relative(a, b, 2e-6)
            assert_relative(a, c, 1e-5)


def test_fused_training_matches_eager_and_is_deterministic(small_config: RunConfig) -> None:
    fast = assert_trains_like_eager(small_config.replace(steps=300), compiled=None)
    assert isinstance(fast._step_fn, FusedStep)


def test_a_build_into_an_empty_cache_leaves_just_the_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_error", None)
    assert fused_cpu.kernel_error() is None
    built = list((tmp_path / "toygeom-tui").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so", built  # no temporary file left over


@compiles
def test_a_failing_build_falls_back_to_the_compiled_step_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_config: RunConfig
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no library cached: it must build
    monkeypatch.setattr(fused_cpu, "COMPILER", str(tmp_path / "no-such-g++"))
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_error", None)
    monkeypatch.setitem(step_module._failed, "kernel", False)
    cfg = small_config.replace(steps=50)
    trainer = Trainer(cfg)
    with pytest.warns(RuntimeWarning, match="fused CPU kernel is unavailable"):
        trainer.run()
    eager = Trainer(cfg, compiled=False)
    eager.run()
    torch.testing.assert_close(trainer.W, eager.W, rtol=0, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later runs stay quiet
        W, b_final, p, importance = _setup(4, 5, 20)
        step = make_step(p, importance, 256, 0, "uniform", "relu")
        assert isinstance(step, CompiledStep)
        step(W, b_final, 0)
