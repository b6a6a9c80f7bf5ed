"""Batch generation: sparse features, instance-major (inst, batch, feats).

Every variant draws from counter-based uniforms (`engine.rng`), so a batch is a pure function of
(seed, step) and the same on every path and device.

Uniform magnitudes use one uniform per element: x = u/p if u < p else 0. Given u < p, u/p is
U[0, 1) and independent of presence, so this is exactly the curriculum's distribution
(present with probability p, magnitude U[0, 1)) with half the random numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from engine.rng import uniforms

# Streams of engine.rng used by the variants.
PRESENCE, MAGNITUDE, CHOICE, NORMAL = 0, 1, 2, 3


def sparse_uniform(u: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """u/p where u < p, else 0: present with probability p, U[0, 1) magnitude, from one uniform."""
    return torch.where(u < p, u / p, torch.zeros((), device=u.device))


def generate_batch(
    data: str,
    feature_probability: torch.Tensor,
    batch_size: int,
    seed: int,
    step: int,
    draw_uniforms: Callable[..., torch.Tensor] = uniforms,
) -> torch.Tensor:
    """The batch of `step`: (inst, batch, feats) float32 on feature_probability's device.

    feature_probability: (inst, feats). For pair variants, pair k is features (2k, 2k+1) and uses
    the probability of its first feature. draw_uniforms: `engine.rng.uniforms` or a faster
    function with its signature and results (the fused kernel's, `fused_cpu.uniforms`).
    """
    n_inst, n_feat = feature_probability.shape
    device = feature_probability.device
    p = feature_probability[:, None, :]  # inst 1 feats

    def draw(stream: int, n: int = n_feat) -> torch.Tensor:
        return draw_uniforms(seed, step, stream, (n_inst, batch_size, n), device)

    if data == "uniform":
        return sparse_uniform(draw(PRESENCE), p)
    if data == "normal":
        present = draw(PRESENCE) < p
        # Box–Muller on two uniforms; 1 − u keeps log's argument in (0, 1].
        z = torch.sqrt(-2 * torch.log1p(-draw(MAGNITUDE))) * torch.cos(2 * math.pi * draw(NORMAL))
        return torch.where(present, (0.5 + 0.2 * z).clamp(0, 1), torch.zeros((), device=device))
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
