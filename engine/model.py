"""The toy model's parameters and its equations, written to read like the math.

x' = ReLU(Wᵀ W x + b)   (or the linear variant x' = Wᵀ W x + b), per instance.
loss = Σ_inst mean_{batch, feats} importance · (x − x')²
"""

from __future__ import annotations

import torch
from einops import einsum


def init_params(
    n_inst: int, d_hidden: int, n_features: int, seed: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """W (inst hidden feats) xavier-normal on the whole 3-D tensor, b_final (inst feats) zeros.

    Drawn on the CPU from the seed, then moved, so a seed gives the same start on every device.
    """
    generator = torch.Generator().manual_seed(seed)
    W = torch.empty(n_inst, d_hidden, n_features)
    torch.nn.init.xavier_normal_(W, generator=generator)
    b_final = torch.zeros(n_inst, n_features)
    return W.to(device), b_final.to(device)


def forward(
    W: torch.Tensor, b_final: torch.Tensor, x: torch.Tensor, model: str = "relu"
) -> torch.Tensor:
    """x' for a batch. W (inst hidden feats), b_final (inst feats), x (inst batch feats)."""
    h = einsum(W, x, "inst hidden feats, inst batch feats -> inst batch hidden")
    out = (
        einsum(W, h, "inst hidden feats, inst batch hidden -> inst batch feats") + b_final[:, None]
    )
    return torch.relu(out) if model == "relu" else out


def loss_per_instance(
    x: torch.Tensor, x_hat: torch.Tensor, importance: torch.Tensor
) -> torch.Tensor:
    """(inst,) mean over batch and features of importance · (x − x')². importance (inst feats)."""
    return (importance[:, None] * (x - x_hat) ** 2).mean(dim=(1, 2))


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The curriculum's schedules: constant 1, linear 1 − t/T, cosine cos(π/2 · t/(T−1))."""
    if schedule == "constant" or steps <= 1:
        return 1.0
    t = min(step, steps - 1)
    if schedule == "linear":
        return 1.0 - t / steps
    if schedule == "cosine":
        return float(torch.cos(torch.tensor(torch.pi / 2 * t / (steps - 1))))
    raise ValueError(f"lr_schedule: unknown schedule {schedule!r}")
