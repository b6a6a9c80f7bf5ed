"""Constructed weight trajectories with known jumps, for jump detection and its export."""

from __future__ import annotations

import numpy as np
import torch
from polytopes import polygon

from engine.geometry import dimensionality


def trajectory(frames: list[torch.Tensor], noise: float, seed: int = 0) -> np.ndarray:
    """D_i of each frame (inst hidden feats) with gaussian noise on W: -> (m inst feats)."""
    g = torch.Generator().manual_seed(seed)
    W = torch.stack(frames)
    W = W + noise * torch.randn(W.shape, generator=g, dtype=W.dtype)
    return np.stack([dimensionality(w).numpy() for w in W])


def pairs_then_pentagon(m: int, at: int) -> list[torch.Tensor]:
    """Two antipodal pairs (features 0,1 on x; 2,3 on y) and an unlearned feature 4, until
    record `at`, where all five snap into a pentagon: one instance, (1 2 5) per record."""
    before = torch.zeros(2, 5, dtype=torch.float64)
    before[0, 0], before[0, 1], before[1, 2], before[1, 3] = 1, -1, 1, -1
    after = torch.from_numpy(polygon(5))
    return [(before if r < at else after)[None] for r in range(m)]


def trainer_with_a_known_jump():
    """A trained 5-features-in-2-dims Trainer (2,000 steps, weight snapshots throughout) whose
    D_i history is replaced by `pairs_then_pentagon`: five jumps at step 1,000."""
    from engine.config import RunConfig
    from engine.trainer import Trainer

    config = RunConfig(name="known", n_features=5, d_hidden=2, n_inst=1, steps=2000, device="cpu")
    trainer = Trainer(config, compiled=False)
    trainer.run()
    arrays, state = trainer.history.to_arrays()
    arrays["history.dims.steps"] = np.arange(40, dtype=np.int64) * 50
    arrays["history.dims.values"] = trajectory(pairs_then_pentagon(40, at=20), noise=0.002)
    trainer.history.restore(arrays, state)
    return trainer
