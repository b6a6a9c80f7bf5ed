"""Batches: the curriculum's distribution, from counter-based uniforms (pure in seed and step)."""

from __future__ import annotations

import math

import pytest
import torch

from engine.data import cos_two_pi, generate_batch, log_one_minus, square_root
from engine.rng import uniforms

P = torch.tensor([1.0, 0.5, 0.2, 0.05])[:, None].expand(4, 64).contiguous()


def test_uniforms_are_uniform_and_never_repeat_across_steps_and_streams() -> None:
    u = uniforms(0, 0, 0, (200_000,))
    assert u.dtype == torch.float32 and float(u.min()) >= 0 and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.005
    assert abs(float(u.var()) - 1 / 12) < 0.002
    # Neighbouring counters must not be correlated.
    assert abs(float(torch.corrcoef(torch.stack([u[:-1], u[1:]]))[0, 1])) < 0.01
    others = [
        uniforms(0, 1, 0, (200_000,)),
        uniforms(0, 0, 1, (200_000,)),
        uniforms(1, 0, 0, (200_000,)),
    ]
    for v in others:
        assert float((u == v).float().mean()) < 1e-3


def test_a_batch_is_a_pure_function_of_seed_and_step() -> None:
    a = generate_batch("uniform", P, 128, seed=3, step=17)
    assert torch.equal(a, generate_batch("uniform", P, 128, seed=3, step=17))
    assert not torch.equal(a, generate_batch("uniform", P, 128, seed=3, step=18))
    assert not torch.equal(a, generate_batch("uniform", P, 128, seed=4, step=17))


@pytest.mark.parametrize("data", ["uniform", "correlated", "anticorrelated"])
def test_density_is_p_and_magnitudes_are_uniform(data: str) -> None:
    p = P.clamp(max=0.5) if data == "anticorrelated" else P
    x = generate_batch(data, p, 4096, seed=0, step=0)
    assert x.shape == (4, 4096, 64)
    density = (x > 0).float().mean(dim=(1, 2))
    torch.testing.assert_close(density, p[:, 0], atol=0.01, rtol=0.02)
    active = x[x > 0]
    assert abs(float(active.mean()) - 0.5) < 0.01
    assert abs(float(active.var()) - 1 / 12) < 0.003


def test_normal_magnitudes_are_clipped_gaussian() -> None:
    x = generate_batch("normal", P, 4096, seed=0, step=0)
    torch.testing.assert_close((x > 0).float().mean(dim=(1, 2)), P[:, 0], atol=0.01, rtol=0.02)
    active = x[0][x[0] > 0]  # p = 1: every entry present
    assert float(active.min()) >= 0 and float(active.max()) <= 1
    assert abs(float(active.mean()) - 0.5) < 0.01
    assert abs(float(active.std()) - 0.2) < 0.01


def _ulps(got: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|got − exact| in units of float32's spacing at exact."""
    spacing = torch.finfo(torch.float32).eps * 2.0 ** torch.floor(torch.log2(exact.abs()))
    return (got.double() - exact).abs() / spacing


def test_the_normal_variants_own_log_cos_and_root_are_accurate_on_every_input() -> None:
    """engine.data's log, cos and square root (its own, so the kernel matches them bit for bit)
    against float64, over every uniform they take: ln(1 − u) within 3 ulp, cos(2πv) within
    2e-7, √x within 2 ulp and exactly 0 at 0."""
    u = torch.arange(2**24, dtype=torch.float32) * 2.0**-24
    assert float(log_one_minus(u)[0]) == 0.0
    assert float(_ulps(log_one_minus(u)[1:], torch.log1p(-u[1:].double())).max()) <= 3
    cos = cos_two_pi(u).double() - torch.cos(2 * math.pi * u.double())
    assert float(cos.abs().max()) <= 2e-7
    x = u[1:] * 34
    assert float(_ulps(square_root(x), x.double().sqrt()).max()) <= 2
    assert float(square_root(torch.zeros(3)).abs().max()) == 0.0


def test_normal_magnitudes_follow_a_gaussian() -> None:
    """Before the clip, 0.5 + 0.2 z with z standard normal: the batch's deciles (p = 1, far from
    the clip at 2.5 sigma) are the Gaussian's within 0.005."""
    p = torch.ones(1, 100)
    x = generate_batch("normal", p, 10_000, seed=2, step=3).flatten()
    deciles = torch.quantile(x, torch.linspace(0.1, 0.9, 9))
    z = torch.tensor([-1.2816, -0.8416, -0.5244, -0.2533, 0.0, 0.2533, 0.5244, 0.8416, 1.2816])
    assert float((deciles - (0.5 + 0.2 * z)).abs().max()) < 0.005
    assert abs(float((x == 0).float().mean()) - 0.00621) < 0.001  # P(z < −2.5), clipped to 0


def test_correlated_pairs_always_co_occur() -> None:
    x = generate_batch("correlated", P, 2048, seed=1, step=5)
    first, second = x[..., 0::2] > 0, x[..., 1::2] > 0
    assert torch.equal(first, second)
    assert bool(first.any()), "pairs do occur"
    assert not torch.equal(x[..., 0::2], x[..., 1::2]), "magnitudes are independent"


def test_anticorrelated_pairs_never_co_occur() -> None:
    p = P.clamp(max=0.5)
    x = generate_batch("anticorrelated", p, 2048, seed=1, step=5)
    first, second = x[..., 0::2] > 0, x[..., 1::2] > 0
    assert not bool((first & second).any())
    assert bool(first.any()) and bool(second.any())
