"""References for the step tests: autograd on `engine.model`, a relative check, and training
against the eager step."""

from __future__ import annotations

import torch

from engine.config import RunConfig
from engine.model import forward, loss_per_instance
from engine.trainer import Trainer


def autograd_grads(
    W: torch.Tensor, b_final: torch.Tensor, x: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss (inst,), dW, db) by autograd for the batch x (inst batch feats)."""
    W, b_final = W.clone().requires_grad_(), b_final.clone().requires_grad_()
    loss = loss_per_instance(x, forward(W, b_final, x, model), importance)
    loss.sum().backward()
    return loss.detach(), W.grad, b_final.grad


def assert_relative(actual: torch.Tensor, expected: torch.Tensor, tol: float) -> None:
    error = float((actual - expected).norm() / expected.norm())
    assert error <= tol, f"relative error {error:.2e} > {tol:.0e}"


def assert_trains_like_eager(cfg: RunConfig, compiled: bool | None) -> Trainer:
    """Two runs of `cfg` on the path `compiled` selects are bit-identical, and the eager path ends
    within float noise of them; returns the first of those trainers (to check its step type)."""
    trainers = [Trainer(cfg, compiled=c) for c in (compiled, compiled, False)]
    for trainer in trainers:
        trainer.run()
    fast, again, eager = trainers
    assert torch.equal(fast.W, again.W), "same seed, same process: bit-identical"
    fast_loss, eager_loss = (
        torch.from_numpy(t.history.metrics_arrays()[1][-1]) for t in (fast, eager)
    )
    torch.testing.assert_close(fast_loss, eager_loss, rtol=1e-3, atol=1e-6)
    torch.testing.assert_close(fast.W, eager.W, rtol=0, atol=1e-3)
    return fast
