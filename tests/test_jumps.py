"""Jump detection on constructed weight trajectories with known jumps, and on noise."""

from __future__ import annotations

import numpy as np
import torch
from trajectories import pairs_then_pentagon, trajectory

from engine.geometry import NAMED_FRACTIONS
from engine.jumps import BETWEEN, HOLD_RECORDS, find_jumps, history_jumps, levels
from engine.trainer import Trainer

HALF = [f.label for f in NAMED_FRACTIONS].index("1/2")


def test_pairs_snapping_into_a_pentagon_are_five_jumps_at_the_known_step() -> None:
    steps = np.arange(40) * 50
    loss_steps = np.arange(0, 2000, 10)
    loss = np.where(loss_steps < 1000, 0.3, 0.1)[:, None]
    dims = trajectory(pairs_then_pentagon(40, at=20), noise=0.002)
    jumps = find_jumps(steps, dims, loss_steps, loss)
    assert [(j.feature, j.before, j.after) for j in jumps] == [
        (0, "1/2", "2/5"), (1, "1/2", "2/5"), (2, "1/2", "2/5"), (3, "1/2", "2/5"),
        (4, "0", "2/5"),
    ]  # fmt: skip
    assert {(j.step, j.left_step, j.instance) for j in jumps} == {(1000, 950, 0)}
    assert {(j.loss_before, j.loss_after) for j in jumps} == {(0.3, 0.1)}


def test_a_jump_needs_both_levels_held() -> None:
    m = 40
    # The pentagon holds only HOLD_RECORDS - 1 records, then the pairs come back.
    frames = pairs_then_pentagon(m, at=20)
    for r in range(20 + HOLD_RECORDS - 1, m):
        frames[r] = frames[0]
    assert find_jumps(np.arange(m), trajectory(frames, noise=0.002)) == []
    # Held long enough: a jump there and one back.
    frames = pairs_then_pentagon(m, at=20)
    for r in range(20 + HOLD_RECORDS, m):
        frames[r] = frames[0]
    jumps = find_jumps(np.arange(m), trajectory(frames, noise=0.002))
    assert [(j.step, j.feature, j.before, j.after) for j in jumps if j.feature == 0] == [
        (20, 0, "1/2", "2/5"),
        (20 + HOLD_RECORDS, 0, "2/5", "1/2"),
    ]


def test_a_slow_drift_through_neighbouring_levels_is_no_jump() -> None:
    # D_i drifting steadily 0.42 -> 0.355 passes through the 2/5 and 3/8 bands.
    D = np.linspace(0.42, 0.355, 60)[:, None, None]
    assert (levels(D[:, 0, 0]) != BETWEEN).sum() > 2 * HOLD_RECORDS, "it does visit both"
    assert find_jumps(np.arange(60), D) == []
    # The same two levels, crossed in one record: a jump.
    D = np.where(np.arange(60) < 30, 0.4, 0.375)[:, None, None]
    assert [(j.before, j.after) for j in find_jumps(np.arange(60), D)] == [("2/5", "3/8")]


def test_noisy_200_feature_weights_have_no_jumps() -> None:
    # A 200-feature, 20-dim instance settled into antipodal pairs plus a jittering crowd: no
    # feature moves, so nothing may be reported, however the noise plays at the band edges.
    g = torch.Generator().manual_seed(1)
    base = torch.zeros(20, 200, dtype=torch.float64)
    for i in range(20):
        base[i, 2 * i], base[i, 2 * i + 1] = 1, -1
    base[:, 40:] = 0.022 * torch.randn(20, 160, generator=g, dtype=torch.float64)
    frames = [base[None]] * 200
    dims = trajectory(frames, noise=0.01, seed=2)
    pair_levels = levels(dims[:, 0, :40])
    assert (pair_levels == BETWEEN).mean() > 0.1 and (pair_levels == HALF).mean() > 0.1, (
        "the noise carries the pairs in and out of the 1/2 band"
    )
    assert find_jumps(np.arange(200), dims) == []


def test_jumps_of_a_trained_pentagon_run_are_real_level_changes() -> None:
    from engine.config import preset

    trainer = Trainer(preset("pentagon").replace(steps=2_000), compiled=False)
    trainer.run()
    steps, dims = trainer.history.dims_arrays()
    for jump in history_jumps(trainer.history):
        record = int(np.searchsorted(steps, jump.step))
        after = levels(dims[record : record + HOLD_RECORDS, jump.instance, jump.feature])
        assert len(set(after.tolist())) == 1 and after[0] != BETWEEN
        assert jump.left_step < jump.step and jump.loss_before is not None
