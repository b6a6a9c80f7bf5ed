"""Reference gradients for the step tests: autograd on `engine.model`, and a relative check."""

from __future__ import annotations

import torch

from engine.model import forward, loss_per_instance


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
