"""Jump detection on constructed weight trajectories with known jumps, and on noise."""

from __future__ import annotations

import numpy as np
import torch
from trajectories import pairs_then_pentagon, trajectory

from engine.geometry import NAMED_FRACTIONS
from engine.history import History
from engine.jumps import (
    BETWEEN,
    HOLD_RECORDS,
    Jump,
    find_jumps,
    history_jumps,
    levels,
    merge_jumps,
)
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


def fed_history(capacity: int = 16, records: int = 400, at: int = 8) -> History:
    """A one-instance History fed pairs_then_pentagon (the jump at record `at`, step 50·at) one
    D_i record every 50 steps, with a loss record at each: it halves its D_i records 5 times."""
    history = History(1, 5, capacity=4096, dims_capacity=capacity)
    dims = trajectory(pairs_then_pentagon(records, at=at), noise=0.002)
    for r in range(records):
        history.record_metrics(50 * r, np.array([0.3 if r < at else 0.1]), np.array([2.0]))
        history.record_dims(50 * r, dims[r])
    return history


def test_an_early_jump_outlives_the_records_that_showed_it() -> None:
    # A 200,000-step pentagon run kept one D_i record every 800 steps and listed none of the
    # jumps it had shown early on: the history halves its records when full, which left too
    # few around them. It now keeps the jumps of its records just before each halving.
    history = fed_history()
    steps, dims = history.dims_arrays()
    assert steps[1] - steps[0] == 50 * 32 and find_jumps(steps, dims) == []  # the records now
    jumps = history_jumps(history)
    assert [(j.feature, j.before, j.after) for j in jumps] == [
        (0, "1/2", "2/5"),
        (1, "1/2", "2/5"),
        (2, "1/2", "2/5"),
        (3, "1/2", "2/5"),
        (4, "0", "2/5"),
    ]  # fmt: skip, each once though found again at every halving until it thinned away
    f32 = lambda v: float(np.float32(v))  # noqa: E731 (the history keeps float32)
    assert {(j.step, j.left_step, j.loss_before, j.loss_after) for j in jumps} == {
        (400, 350, f32(0.3), f32(0.1))
    }
    assert history_jumps(history, 0) == jumps and history.kept_jumps() == jumps


def test_a_jump_found_again_in_thinner_records_is_merged_a_later_one_is_not() -> None:
    fine = Jump(400, 350, 0, 3, "1/2", "2/5", 0.3, 0.1)
    again = Jump(500, 300, 0, 3, "1/2", "2/5", 0.3, 0.1)  # the same move, seen coarser
    back = Jump(900, 850, 0, 3, "2/5", "1/2", 0.1, 0.3)
    later = Jump(1400, 1350, 0, 3, "1/2", "2/5", 0.3, 0.1)  # the same levels, another time
    other = Jump(400, 350, 0, 2, "1/2", "2/5", 0.3, 0.1)
    assert merge_jumps([fine], [again, back, later, other]) == [other, fine, back, later]
    assert merge_jumps([], [later, fine]) == [fine, later]
