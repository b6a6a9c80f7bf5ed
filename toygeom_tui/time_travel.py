"""Time travel: which recorded step the geometry views show, and what they show there.

The app keeps one `view_step` (None: live); `<` and `>` move it through the run's weight
snapshots (engine.history.Snapshots) and `l` returns to live. A `Moment` is everything the
dashboard draws from the weights at that step. No textual here: the rules are tested alone
(the keys are in toygeom_tui.screens.time_keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.geometry import dimensionality, frobenius_sq


@dataclass(frozen=True)
class Moment:
    """The run at a recorded step: W (inst hidden feats), and per instance its logged loss
    (NaN without a record at that step), ‖W‖²_F and every feature's D_i (inst feats)."""

    step: int
    W: torch.Tensor
    loss: np.ndarray
    frobenius_sq: np.ndarray
    dims: np.ndarray

    def marker(self, live_step: int | None = None) -> str:
        """What every geometry view says while it shows this moment (without the live step: the
        short form, for narrow lines)."""
        if live_step is None:
            return f"at step {self.step:,}"
        return f"at step {self.step:,} (live: {live_step:,})"


def moment_at(run: Any, step: int) -> Moment:
    """The Moment of `run` (an engine Run) at snapshot `step` (KeyError if none)."""
    W = run.snapshots.at(step)
    steps, loss, _ = run.history.metrics_arrays()
    found = np.flatnonzero(steps == step)
    logged = loss[found[0]] if len(found) else np.full(W.shape[0], np.nan)
    return Moment(
        step=step,
        W=W,
        loss=logged.astype(np.float64),
        frobenius_sq=frobenius_sq(W).double().numpy(),
        dims=dimensionality(W).numpy(),
    )


def shown_moment(app: Any) -> Moment | None:
    """The moment `app` shows (its `moment()`), or None: live, also in a host app that does
    not travel (a screen mounted alone in a test or another program)."""
    moment = getattr(app, "moment", None)
    return moment() if moment is not None else None


def step_after_move(recorded: list[int], current: int | None, live: int, delta: int) -> int | None:
    """The step `delta` (±1) recorded steps away from `current` (None: live), among `recorded`
    (ascending) before the live step; None means live. Earlier than the first stays on it."""
    past = [s for s in recorded if s < live]
    if not past:
        return None
    if current is None:
        return past[-1] if delta < 0 else None
    position = next((i for i, s in enumerate(past) if s >= current), len(past))
    target = position + delta
    if target >= len(past):
        return None
    return past[max(0, target)]


def no_history_reason(run: Any) -> str:
    """Why there is nothing to travel back to (said when `<` has nowhere to go)."""
    gap = getattr(run.snapshots, "unrecorded_until", 0)  # a remote mirror records from 0
    if gap:
        return (
            f"no weight snapshots before step {gap:,}: the session was saved by an older "
            "toygeom-tui, which kept none"
        )
    return "no weight snapshots yet: the first comes with the first logged step"
