"""The training step: closed-form gradients equal autograd; the compiled step draws the very same
batch and computes the same gradients; without a compiler it falls back to eager.
(The fused C++ kernel, which make_step prefers on the CPU, is tested in test_fused_cpu.py.)

Tests that build a torch.compile graph carry `compiles` (a long timeout). They share one small
shape, so the file compiles four graphs: the batch, the relu and linear steps, and the relu step
of a pentagon-sized model (which takes the broadcast formulation).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from gradients import assert_relative, assert_trains_like_eager, autograd_grads

import engine.step as step_module
from engine.config import RunConfig, resolve_feature_probability, resolve_importance
from engine.data import PRESENCE, generate_batch
from engine.model import init_params
from engine.rng import STREAMS, seed_key, uniform_from_counter, uniforms
from engine.step import (
    CompiledStep,
    EagerStep,
    broadcast_grads,
    closed_form_grads,
    make_step,
    uniform_batch,
)

compiles = pytest.mark.timeout(300)  # the first compile is ~10–30 s cold

N_INST, D_HIDDEN, N_FEAT, BATCH = 4, 5, 20, 256  # the conftest's small_config shape


def _params(
    d_hidden: int = D_HIDDEN, n_feat: int = N_FEAT
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """W (inst hidden feats), a non-zero bias, p (inst feats) and a non-trivial importance."""
    W, _ = init_params(N_INST, d_hidden, n_feat, seed=0)
    b_final = 0.1 * torch.randn(N_INST, n_feat, generator=torch.Generator().manual_seed(1))
    p = torch.tensor([1.0, 0.5, 0.2, 0.05])[:, None].expand(N_INST, n_feat).contiguous()
    importance = (0.9 ** torch.arange(n_feat, dtype=torch.float32)).expand(N_INST, n_feat)
    return W, b_final, p, importance.contiguous()


@pytest.mark.parametrize("model", ["relu", "linear"])
def test_closed_form_gradients_equalautograd_grads(model: str) -> None:
    W, b_final, p, importance = _params()
    x = generate_batch("uniform", p, BATCH, seed=0, step=3)
    want = autograd_grads(W, b_final, x, importance, model)
    xT = x.transpose(1, 2)  # both take the batch feature-major
    for grads in (
        closed_form_grads(W, b_final, xT, importance, model),
        broadcast_grads(W, b_final, xT, importance, model),
    ):
        for got, expected in zip(grads, want, strict=True):
            assert_relative(got, expected, 1e-5)


def test_cpu_uniforms_are_the_counter_hash_bit_for_bit() -> None:
    """engine.rng hashes CPU counters in cache-sized chunks; that must not change one bit."""
    cases = (((3, 1000, 77), 5, 10**9, 2), ((1,), 1, 0, 0), ((7, 3), 2, 5, 1), ((1,), 3, 4, 1))
    for shape, seed, step, stream in cases:  # the last two start at an odd element
        n = math.prod(shape)
        base = (step * STREAMS + stream) * n
        counter = torch.arange(base, base + n, dtype=torch.int64)
        want = uniform_from_counter(counter, seed_key(seed)).view(shape)
        assert torch.equal(uniforms(seed, step, stream, shape), want)


@pytest.mark.parametrize("data", ["uniform", "normal", "correlated", "anticorrelated"])
def test_eager_step_sets_grads_for_every_variant(data: str) -> None:
    W, b_final, p, importance = _params()
    p = p.clamp(max=0.5)
    step = make_step(p, importance, BATCH, seed=2, data=data, model="relu", compiled=False)
    assert isinstance(step, EagerStep)
    loss = step(W, b_final, 5)
    x = generate_batch(data, p, BATCH, seed=2, step=5)
    want = autograd_grads(W, b_final, x, importance, "relu")
    for got, expected in zip((loss, W.grad, b_final.grad), want, strict=True):
        assert_relative(got, expected, 1e-5)


@compiles
def test_compiled_batch_is_bit_identical_to_the_eager_batch() -> None:
    _, _, p, _ = _params()
    batch = torch.compile(uniform_batch, dynamic=False, fullgraph=True)
    n = p.numel() * BATCH
    for seed, step in ((0, 0), (3, 17), (12345, 10**9)):  # counters past 2^32; products wrap
        base = torch.tensor((step * STREAMS + PRESENCE) * n)
        xT = batch(p, base, torch.tensor(seed_key(seed)), BATCH)  # feature-major
        assert torch.equal(xT, generate_batch("uniform", p, BATCH, seed, step).transpose(1, 2))


@compiles
@pytest.mark.parametrize(
    ("model", "d_hidden", "n_feat"),
    [("relu", D_HIDDEN, N_FEAT), ("linear", D_HIDDEN, N_FEAT), ("relu", 2, 5)],
)
def test_compiled_step_equals_autograd_and_the_eager_step(
    model: str, d_hidden: int, n_feat: int
) -> None:
    W, b_final, p, importance = _params(d_hidden, n_feat)
    compiled = CompiledStep(p, importance, BATCH, 4, model)
    eager = EagerStep(p, importance, BATCH, 4, "uniform", model)
    for step in (0, 9):
        got = (compiled(W, b_final, step), W.grad, b_final.grad)
        want = (eager(W, b_final, step), W.grad, b_final.grad)
        x = generate_batch("uniform", p, BATCH, seed=4, step=step)
        for a, b, c in zip(
            got, want, autograd_grads(W, b_final, x, importance, model), strict=True
        ):
            assert_relative(a, b, 2e-6)
            assert_relative(a, c, 1e-5)


@compiles
def test_compiled_training_matches_eager_and_is_deterministic(
    small_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(step_module._failed, "kernel", True)  # torch.compile, not the kernel
    fast = assert_trains_like_eager(small_config.replace(steps=300), compiled=True)
    assert isinstance(fast._step_fn, CompiledStep)


def test_a_failing_compiler_falls_back_to_eager_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(step_module, "_compiled_step_fn", lambda: broken)
    monkeypatch.setitem(step_module._failed, "compiler", False)
    monkeypatch.setitem(step_module._failed, "kernel", True)  # a machine without the kernel
    W, b_final, p, importance = _params()
    eager = EagerStep(p, importance, BATCH, 0, "uniform", "relu")
    want = (eager(W, b_final, 1), W.grad, b_final.grad)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        step = make_step(p, importance, BATCH, 0, "uniform", "relu")
        loss = step(W, b_final, 1)
    for a, b in zip((loss, W.grad, b_final.grad), want, strict=True):
        assert torch.equal(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later steps and later runs stay quiet
        step(W, b_final, 2)
        assert isinstance(make_step(p, importance, BATCH, 0, "uniform", "relu"), EagerStep)
        assert isinstance(make_step(p, importance, BATCH, 0, "uniform", "relu", True), EagerStep)


def test_resolved_configs_feed_the_step(small_config: RunConfig) -> None:
    p, importance = resolve_feature_probability(small_config), resolve_importance(small_config)
    step = make_step(p, importance, 64, 0, "uniform", "relu", compiled=False)
    W, b_final = init_params(small_config.n_inst, small_config.d_hidden, small_config.n_features, 0)
    assert step(W, b_final, 0).shape == (small_config.n_inst,)
