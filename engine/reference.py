"""The curriculum's training loop as written there: the yardstick for speed and for results.

ARENA's `ToyModel.optimize`: batch-major einsum forward, a batch from two `torch.rand` calls
(x = where(rand ≤ p, rand, 0)), autograd, `torch.optim.Adam`, the lr set every step. The engine
must match its per-instance loss (tests/test_trainer.py) and beat its speed (`toygeom-tui bench`).
"""

from __future__ import annotations

import torch
from einops import einsum

from engine.config import RunConfig, resolve_feature_probability, resolve_importance
from engine.model import init_params, lr_factor


class CurriculumLoop:
    """`run(n)` trains n more steps; W (inst hidden feats) and b_final start as the engine's."""

    def __init__(self, config: RunConfig) -> None:
        self.config = config
        device = config.resolve_device()
        W, b_final = init_params(
            config.n_inst, config.d_hidden, config.n_features, config.seed, device
        )
        self.W = torch.nn.Parameter(W)
        self.b_final = torch.nn.Parameter(b_final)
        self.feature_probability = resolve_feature_probability(config).to(device)  # inst feats
        self.importance = resolve_importance(config).to(device)  # inst feats
        self.optimizer = torch.optim.Adam([self.W, self.b_final], lr=config.lr)
        self.generator = torch.Generator(device).manual_seed(config.seed)
        self.step = 0

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = einsum(features, self.W, "... inst feats, inst hidden feats -> ... inst hidden")
        out = einsum(h, self.W, "... inst hidden, inst hidden feats -> ... inst feats")
        return torch.relu(out + self.b_final)

    def generate_batch(self, batch_size: int) -> torch.Tensor:
        shape = (batch_size, *self.feature_probability.shape)  # batch inst feats
        device = self.W.device
        feat_mag = torch.rand(shape, generator=self.generator, device=device)
        feat_seeds = torch.rand(shape, generator=self.generator, device=device)
        return torch.where(feat_seeds <= self.feature_probability, feat_mag, 0.0)

    def calculate_loss(self, out: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        error = self.importance * (batch - out) ** 2
        return error.mean(dim=(0, 2)).sum()  # mean over batch and feats, summed over instances

    def run(self, n: int) -> None:
        cfg = self.config
        for _ in range(n):
            for group in self.optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, self.step, cfg.steps)
            self.optimizer.zero_grad()
            batch = self.generate_batch(cfg.batch_size)
            loss = self.calculate_loss(self.forward(batch), batch)
            loss.backward()
            self.optimizer.step()
            self.step += 1
