"""The training step: closed-form gradients, instance-major batched matrix products.

With pre = hᵀ-free notation per instance: h = x Wᵀ (batch hidden), pre = h W + b (batch feats),
D = act(pre) − x, G = D · act'(pre) · importance, c = 2 / (batch · feats):
    loss = mean(importance · D²),  db = c Σ_batch G,  dW = c (hᵀ G + (G Wᵀ)ᵀ x).
This equals autograd on `engine.model` (tested) with five bmm's and no graph.
"""

from __future__ import annotations

import torch

from engine.data import generate_batch


def closed_form_grads(
    W: torch.Tensor, b_final: torch.Tensor, x: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss (inst,), dW (inst hidden feats), db (inst feats)) for batch x (inst batch feats)."""
    n_batch, n_feat = x.shape[1], x.shape[2]
    h = torch.bmm(x, W.transpose(1, 2))  # inst batch hidden
    pre = torch.baddbmm(b_final[:, None], h, W)  # inst batch feats
    imp = importance[:, None]
    if model == "relu":
        D = torch.relu(pre) - x
        G = D * (pre > 0) * imp
    else:
        D = pre - x
        G = D * imp
    loss = (D * D * imp).mean(dim=(1, 2))
    c = 2.0 / (n_batch * n_feat)
    db = G.sum(dim=1) * c
    dW = torch.bmm(h.transpose(1, 2), G)
    dW.baddbmm_(torch.bmm(G, W.transpose(1, 2)).transpose(1, 2), x)
    dW *= c
    return loss, dW, db


class EagerStep:
    """One step's batch and gradients in plain torch ops: runs on any device, no compiler."""

    def __init__(
        self,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
        batch_size: int,
        seed: int,
        data: str,
        model: str,
    ) -> None:
        self.feature_probability = feature_probability
        self.importance = importance
        self.batch_size = batch_size
        self.seed = seed
        self.data = data
        self.model = model

    def __call__(self, W: torch.Tensor, b_final: torch.Tensor, step: int) -> torch.Tensor:
        """Set W.grad and b_final.grad for the batch of `step`; return the (inst,) loss."""
        x = generate_batch(self.data, self.feature_probability, self.batch_size, self.seed, step)
        loss, dW, db = closed_form_grads(W, b_final, x, self.importance, self.model)
        W.grad, b_final.grad = dW, db
        return loss


def make_step(
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    batch_size: int,
    seed: int,
    data: str,
    model: str,
    compiled: bool | None = None,
) -> EagerStep:
    """The fastest available step for these settings (compiled where possible)."""
    return EagerStep(feature_probability, importance, batch_size, seed, data, model)
