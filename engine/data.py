"""Batch generation: sparse features, instance-major (inst, batch, feats).

Every variant draws from counter-based uniforms (`engine.rng`), so a batch is a pure function of
(seed, step) and the same on every path and device.

Uniform magnitudes use one uniform per element: x = u/p if u < p else 0. Given u < p, u/p is
U[0, 1) and independent of presence, so this is exactly the curriculum's distribution
(present with probability p, magnitude U[0, 1)) with half the random numbers.

Normal magnitudes come from Box–Muller with this module's own log, cos and square root
(`log_one_minus`, `cos_two_pi`, `square_root`): float32 products, sums and divisions, each
correctly rounded on every CPU and GPU, so the fused kernel computes the very same numbers.
torch's own log1p, cos and sqrt are SLEEF's or MKL's on CPUs (MKL's sqrt is not correctly
rounded), other functions on other builds and devices.
"""

from __future__ import annotations

import torch

from engine.rng import uniforms

# Streams of engine.rng used by the variants.
PRESENCE, MAGNITUDE, CHOICE, NORMAL = 0, 1, 2, 3


def sparse_uniform(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """u/p where u < p, else 0: present with probability p, U[0, 1) magnitude, from one uniform."""
    return torch.where(u < p, u / p, torch.zeros((), device=u.device))


# float32 constants, written exactly (csrc/fused_step.cpp holds the same): √2, ln 2, 2/(2k+1)
# for ln m = 2 atanh s, and (−1)^k (2π)^2k / (2k)! for cos, k = 0..7.
_SQRT2, _LN2 = float.fromhex("0x1.6a09e6p+0"), float.fromhex("0x1.62e43p-1")
_ATANH = [float.fromhex(c) for c in ("0x1.c71c72p-3", "0x1.24924ap-2", "0x1.99999ap-2",
                                     "0x1.555556p-1", "0x1p+1")]  # 2/9 .. 2  # fmt: skip
_COS = [float.fromhex(c) for c in ("-0x1.b6e25p+0", "0x1.f9d38ap+2", "-0x1.a6d1f2p+4",
                                   "0x1.e1f506p+5", "-0x1.55d3c8p+6", "0x1.03c1fp+6",
                                   "-0x1.3bd3ccp+4", "0x1p+0")]  # C7 .. C0  # fmt: skip
_ROOT = [float.fromhex(c) for c in ("0x1.555556p-2", "0x1.555556p-1")]  # 1/3, 2/3: √m ≈ (m + 2)/3
_FIFTH = float.fromhex("0x1.99999ap-3")  # 0.2


def _horner(t: torch.Tensor, coefficients: list[float]) -> torch.Tensor:
    """Σ c_k t^k, highest first, a product and a sum at a time (never fused)."""
    r = torch.full_like(t, coefficients[0])
    for c in coefficients[1:]:
        r = r * t + c
    return r


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(e, m) with x = m·2^e, m in [1, 2), for float32 x > 0 and normal, from its bits."""
    bits = x.view(torch.int32)
    return (bits >> 23) - 127, ((bits & 0x7FFFFF) | 0x3F800000).view(torch.float32)


def log_one_minus(u: torch.Tensor) -> torch.Tensor:
    """ln(1 − u) for float32 u in [0, 1): 1 − u = m·2^e with m in [√½, √2], ln m = 2 atanh s,
    s = (m − 1)/(m + 1) (|s| ≤ 0.172, the series to s⁹: 2e-9 relative); within 3 ulp."""
    e, m = _split(1 - u)  # 1 − u exact: u is a multiple of 2⁻²⁴
    big = m > _SQRT2
    m = torch.where(big, m * 0.5, m)
    e = torch.where(big, e + 1, e)
    s = (m - 1) / (m + 1)
    return e.to(torch.float32) * _LN2 + s * _horner(s * s, _ATANH)


def cos_two_pi(v: torch.Tensor) -> torch.Tensor:
    """cos(2πv) for float32 v in [0, 1): a = |v or v − 1| in [0, 1/2], folded to [0, 1/4]
    (cos(2πa) = −cos(2π(1/2 − a))), then the Taylor series to a¹⁴ (7e-11); within ~1e-7."""
    a = torch.where(v >= 0.5, 1 - v, v)  # exact, and |v − 1| = 1 − v
    flip = a > 0.25
    a = torch.where(flip, 0.5 - a, a)
    c = _horner(a * a, _COS)
    return torch.where(flip, -c, c)


def square_root(x: torch.Tensor) -> torch.Tensor:
    """√x for float32 x ≥ 0 (0 or normal): x = m·4^k with m in [1, 4), √m by three Newton steps
    from a line (5.7% off at worst: then 2e-3, 2e-6, 1e-12), times 2^k; within 2 ulp."""
    e, m = _split(x)  # x = 0 gives garbage here, replaced below
    odd = (e & 1) == 1
    m = torch.where(odd, m * 2, m)  # [1, 4)
    k = torch.where(odd, e - 1, e) >> 1
    y = _ROOT[0] * m + _ROOT[1]
    for _ in range(3):
        y = 0.5 * (y + m / y)
    scale = ((k + 127) << 23).view(torch.float32)  # 2^k, exactly
    return torch.where(x == 0, x, y * scale)


def normal_magnitudes(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """clamp(0.5 + 0.2 z, 0, 1) with z = √(−2 ln(1 − u)) cos(2πv) (Box–Muller): N(1/2, 1/5²)
    clipped to [0, 1], from two uniforms."""
    z = square_root(-2 * log_one_minus(u)) * cos_two_pi(v)
    return (0.5 + _FIFTH * z).clamp(0, 1)


def generate_batch(
    data: str,
    feature_probability: torch.Tensor,
    batch_size: int,
    seed: int,
    step: int,
) -> torch.Tensor:
    """The batch of `step`: (inst, batch, feats) float32 on feature_probability's device.

    feature_probability: (inst, feats). For pair variants, pair k is features (2k, 2k+1) and uses
    the probability of its first feature.
    """
    n_inst, n_feat = feature_probability.shape
    device = feature_probability.device
    p = feature_probability[:, None, :]  # inst 1 feats

    def draw(stream: int, n: int = n_feat) -> torch.Tensor:
        return uniforms(seed, step, stream, (n_inst, batch_size, n), device)

    if data == "uniform":
        return sparse_uniform(draw(PRESENCE), p)
    if data == "normal":
        present = draw(PRESENCE) < p
        magnitude = normal_magnitudes(draw(MAGNITUDE), draw(NORMAL))
        return torch.where(present, magnitude, torch.zeros((), device=device))
    magnitude = draw(MAGNITUDE)
    p_pair = p[..., 0::2]  # inst 1 pairs
    if data == "correlated":
        pair_present = draw(PRESENCE, n_feat // 2) < p_pair
        present = pair_present.repeat_interleave(2, dim=-1)
    elif data == "anticorrelated":
        pair_active = draw(PRESENCE, n_feat // 2) < 2 * p_pair
        first = draw(CHOICE, n_feat // 2) < 0.5
        present = torch.stack([pair_active & first, pair_active & ~first], dim=-1).flatten(-2)
    else:
        raise ValueError(f"data: unknown variant {data!r}")
    return torch.where(present, magnitude, torch.zeros((), device=device))
