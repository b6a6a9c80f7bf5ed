"""Adam and AdamW over the model's parameters, their state kept as torch.optim keeps it.

Why not `torch.optim.Adam`: building one imports torch._dynamo (~1.5 s before the first step, a
long wait for a run that trains in seconds), and the fused C++ kernel steps the moments itself.
`step` calls the very kernel `torch.optim.Adam(fused=True)` calls (`torch._fused_adam_`), so
the numbers are torch's; `state` has torch's names and dtypes ("step", "exp_avg",
"exp_avg_sq"; float32), which is what a session saves.
"""

from __future__ import annotations

import torch

from engine.config import RunConfig


class Adam:
    """Adam (or AdamW, decoupled weight decay) over named parameters, updated in place."""

    beta1, beta2, eps = 0.9, 0.999, 1e-8  # torch.optim's defaults, which the curriculum uses

    def __init__(self, params: dict[str, torch.Tensor], config: RunConfig) -> None:
        self.params = params
        self.names = tuple(params)
        self.decoupled = config.optimizer == "adamw"
        self.weight_decay = config.weight_decay if self.decoupled else 0.0
        self.state = {
            name: {
                "step": torch.zeros((), dtype=torch.float32, device=p.device),
                "exp_avg": torch.zeros_like(p),
                "exp_avg_sq": torch.zeros_like(p),
            }
            for name, p in params.items()
        }

    @property
    def steps(self) -> int:
        """Updates taken so far."""
        return int(self.state[self.names[0]]["step"])

    def step(self, grads: list[torch.Tensor], lr: float) -> None:
        """One update with these gradients (in the order of `names`) and learning rate."""
        states = [self.state[name] for name in self.names]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        update = torch._fused_adamw_ if self.decoupled else torch._fused_adam_
        update(
            [self.params[name] for name in self.names],
            grads,
            [s["exp_avg"] for s in states],
            [s["exp_avg_sq"] for s in states],
            [],
            steps,
            lr=lr,
            beta1=self.beta1,
            beta2=self.beta2,
            weight_decay=self.weight_decay,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )
