"""Jumps: a feature's D_i leaving one named fraction for another, quickly, and staying there.

Elhage et al. (2022) saw features move between dimensionality levels (0 → 1/2 → 2/5 …) in
sudden steps, each with a drop in the loss. Here that is made precise over a run's D_i history
(engine.history: `dims_arrays()`, records evenly spaced over the run):

  - a record is AT a level when D_i is within LEVEL_TOL of that named fraction and at least
    LEVEL_MARGIN nearer to it than to any other, else BETWEEN levels;
  - a feature is SETTLED at a level over a run of at least HOLD_RECORDS consecutive records at it;
  - a JUMP is a feature settled at level A whose next settled run is at another level B, at most
    MAX_TRANSITION_RECORDS records later, reached SUDDENNESS times faster (D_i per record) than
    D_i wobbles from record to record while settled at A or at B (the median change).

Its step is the first record at B. Holding on both sides keeps noise out: a D_i that wobbles
across a band's edge, or visits a level for a record or two, is never settled there, and the
margin leaves a dead zone between neighbouring levels (2/5 and 3/8 are only 0.025 apart), so
noise cannot hop between them. A slow drift through several bands moves as fast inside them as
between them, so it is no jump. A jump is confirmed HOLD_RECORDS records after it happens, and
features that never sit at a named fraction (most of a 200-feature run's learned ones) have none.

A long run's history halves its D_i records each time it fills (engine.history), which leaves
too few records around an early jump to show it: a 200,000-step pentagon run kept one record
every 800 steps and lost every jump it had shown. So the history looks for jumps in its records
just before each halving and keeps what it found (`History.kept_jumps`, saved with the session);
`history_jumps` is those merged with the jumps in the records it holds now (`merge_jumps`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from engine.geometry import NAMED_FRACTIONS

# How near a named fraction D_i must be to be at it: settled trained features sit within ~0.02
# of their line (the README's table counts features within 0.02).
LEVEL_TOL = 0.02
# How much nearer it must be to that fraction than to any other: with 2/5 and 3/8 0.025 apart,
# D_i in 0.3825–0.3925 is at neither, and noise of ±0.005 cannot carry a record across.
LEVEL_MARGIN = 0.01
# Records a level must hold, before and after: with the history's ≤256 evenly spaced records
# (200 for a 10,000-step run), 5 records are ≥2% of the run.
HOLD_RECORDS = 5
# Records a jump may take between the two levels (4% of a 200-record run): in the pentagon
# preset a pair of antipodal features becomes part of a pentagon within 3–8 records.
MAX_TRANSITION_RECORDS = 8
# How much faster than its settled wobble D_i must move between the levels: a steady drift
# moves at the same rate everywhere (ratio 1).
SUDDENNESS = 2.0

BETWEEN = -1  # the level of a record near no named fraction

_VALUES = np.array([f.value for f in NAMED_FRACTIONS])
_ASCENDING = np.argsort(_VALUES)


@dataclass(frozen=True, slots=True)
class Jump:
    """Feature `feature` of instance `instance` went from level `before` to `after` (labels of
    NAMED_FRACTIONS, e.g. "1/2" → "2/5"): last at `before` at `left_step`, at `after` from `step`.
    The losses are the instance's logged loss at those two steps (None without a loss history)."""

    step: int
    left_step: int
    instance: int
    feature: int
    before: str
    after: str
    loss_before: float | None
    loss_after: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def levels(dims: np.ndarray) -> np.ndarray:
    """The level of each D_i: dims (...) -> (...) int64, an index into NAMED_FRACTIONS, or
    BETWEEN when none is within LEVEL_TOL and LEVEL_MARGIN nearer than the next nearest."""
    # One search among every band's two edges: an odd count of edges at or below D is inside a
    # band (the top edges are nudged up by one ulp, so D equal to one counts as inside).
    return _LEVEL_OF_COUNT[np.searchsorted(_EDGES, np.asarray(dims, dtype=np.float64), "right")]


def _bands() -> tuple[np.ndarray, np.ndarray]:
    """Each fraction's band [low, high], in ascending order of fraction: within LEVEL_TOL, and
    LEVEL_MARGIN nearer than either neighbour (|D − f| + M ≤ |D − g| ⇔ D on f's side of
    (f + g ∓ M) / 2). Disjoint, so one sorted search finds a record's band."""
    ordered = _VALUES[_ASCENDING]
    low = np.maximum(
        ordered - LEVEL_TOL, np.append(-np.inf, (ordered[:-1] + ordered[1:] + LEVEL_MARGIN) / 2)
    )
    high = np.minimum(
        ordered + LEVEL_TOL, np.append((ordered[:-1] + ordered[1:] - LEVEL_MARGIN) / 2, np.inf)
    )
    return low, high


_BAND_LOW, _BAND_HIGH = _bands()
_EDGES = np.column_stack([_BAND_LOW, np.nextafter(_BAND_HIGH, np.inf)]).ravel()
_LEVEL_OF_COUNT = np.full(len(_EDGES) + 1, BETWEEN, dtype=np.int64)
_LEVEL_OF_COUNT[1::2] = _ASCENDING


def find_jumps(
    dims_steps: np.ndarray,
    dims: np.ndarray,
    loss_steps: np.ndarray | None = None,
    loss: np.ndarray | None = None,
) -> list[Jump]:
    """Every jump in a D_i history: dims_steps (m,), dims (m inst feats); with the loss history
    loss_steps (n,), loss (n inst) for each jump's loss before and after. Sorted by step, then
    instance, then feature."""
    m = len(dims_steps)
    if m == 0 or dims.size == 0:
        return []
    n_feats = dims.shape[2]
    # One row per (instance, feature), a BETWEEN column after each so no run spans two rows.
    series = dims.reshape(m, -1).T.astype(np.float64)  # (inst·feats, m)
    rows = levels(series)
    flat = np.hstack([rows, np.full((len(rows), 1), BETWEEN)]).ravel()
    starts = np.flatnonzero(np.diff(flat, prepend=BETWEEN - 1))
    lengths = np.diff(np.append(starts, len(flat)))
    values = flat[starts]
    settled = (values != BETWEEN) & (lengths >= HOLD_RECORDS)
    starts, lengths, values = starts[settled], lengths[settled], values[settled]
    row, first = np.divmod(starts, m + 1)
    last = first + lengths - 1
    # Consecutive settled runs of one feature at different levels, close enough: jumps.
    jump = (
        (row[1:] == row[:-1])
        & (values[1:] != values[:-1])
        & (first[1:] - last[:-1] - 1 <= MAX_TRANSITION_RECORDS)
    )
    pairs = np.flatnonzero(jump)  # run k, then run k + 1
    sudden = _sudden(series, row[pairs], first[pairs], last[pairs], first[pairs + 1],
                     last[pairs + 1])  # fmt: skip
    found = []
    for k in pairs[sudden].tolist():
        instance, feature = divmod(int(row[k]), n_feats)
        left, arrived = int(dims_steps[last[k]]), int(dims_steps[first[k + 1]])
        found.append(
            Jump(
                step=arrived,
                left_step=left,
                instance=instance,
                feature=feature,
                before=NAMED_FRACTIONS[values[k]].label,
                after=NAMED_FRACTIONS[values[k + 1]].label,
                loss_before=_loss_at(loss_steps, loss, left, instance, after=False),
                loss_after=_loss_at(loss_steps, loss, arrived, instance, after=True),
            )
        )
    found.sort(key=jump_order)
    return found


def _sudden(
    series: np.ndarray,
    row: np.ndarray,
    a0: np.ndarray,
    a1: np.ndarray,
    b0: np.ndarray,
    b1: np.ndarray,
) -> np.ndarray:
    """For each candidate c: feature row[c] of series (rows, m), settled over records
    a0[c]..a1[c], then b0[c]..b1[c]. Does it cross between them SUDDENNESS times faster than its
    median record-to-record change within either? (candidates,) bool.

    All candidates at once (a long run has hundreds, and the dashboard looks for jumps at every
    new D_i record): each window's changes sorted into a NaN-padded row, the median picked by
    count, exactly np.median's value.
    """
    if row.size == 0:
        return np.zeros(0, dtype=bool)
    D = series[row]  # (candidates, m)
    changes = np.abs(np.diff(D, axis=1))
    wobble = np.maximum(_window_median(changes, a0, a1), _window_median(changes, b0, b1))
    index = np.arange(len(row))
    move = np.abs(D[index, b0] - D[index, a1]) / (b0 - a1)
    return move >= SUDDENNESS * wobble


def _window_median(changes: np.ndarray, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Per row c, the median of changes[c, first[c]:last[c]] (≥ HOLD_RECORDS − 1 values)."""
    count = last - first
    offsets = np.arange(int(count.max()))
    columns = np.minimum(first[:, None] + offsets, changes.shape[1] - 1)
    window = np.take_along_axis(changes, columns, axis=1)
    window = np.sort(np.where(offsets < count[:, None], window, np.inf), axis=1)
    index = np.arange(len(count))
    upper, lower = window[index, count // 2], window[index, (count - 1) // 2]
    return (lower + upper) / 2  # the middle value, or the mean of the two middle ones


def _loss_at(
    steps: np.ndarray | None, loss: np.ndarray | None, step: int, instance: int, *, after: bool
) -> float | None:
    """The instance's logged loss at `step`: the record at or before it (`after`: at or after)."""
    if steps is None or loss is None or len(steps) == 0:
        return None
    if after:
        index = int(np.searchsorted(steps, step, side="left"))
    else:
        index = int(np.searchsorted(steps, step, side="right")) - 1
    if not 0 <= index < len(steps):
        return None
    value = float(loss[index, instance])
    return value if np.isfinite(value) else None


def history_jumps(history: Any, instance: int | None = None) -> list[Jump]:
    """The jumps of an engine History: those it kept from records it has since thinned, and
    those in its D_i and loss records now; of one `instance` only when given (200× less work
    than all of a 200-feature, 20-instance run)."""
    dims_steps, dims = history.dims_arrays()
    loss_steps, loss, _ = history.metrics_arrays()
    kept = history.kept_jumps(instance)
    if instance is None:
        return merge_jumps(kept, find_jumps(dims_steps, dims, loss_steps, loss))
    one = find_jumps(dims_steps, dims[:, instance : instance + 1], loss_steps, loss[:, [instance]])
    return merge_jumps(kept, [replace(jump, instance=instance) for jump in one])


def merge_jumps(kept: Sequence[Jump], found: Sequence[Jump]) -> list[Jump]:
    """`kept` and each jump of `found` that is not one of them again, in `jump_order`.

    A jump found again in thinner records is the same feature moving between the same levels
    over a span that overlaps the kept one's (left_step..step: thinning keeps a subset of the
    records, so the thinner span holds the finer); the kept one, measured finer, stays."""
    merged = list(kept)
    spans: dict[tuple, list[tuple[int, int]]] = {}
    for jump in kept:
        spans.setdefault(_key(jump), []).append((jump.left_step, jump.step))
    for jump in found:
        if not any(a <= jump.step and jump.left_step <= b for a, b in spans.get(_key(jump), ())):
            merged.append(jump)
    merged.sort(key=jump_order)
    return merged


def jump_order(jump: Jump) -> tuple[int, int, int]:
    """The order of every jump list: by step, then instance, then feature."""
    return jump.step, jump.instance, jump.feature


def _key(jump: Jump) -> tuple[int, int, str, str]:
    return jump.instance, jump.feature, jump.before, jump.after


_LABELS = frozenset(f.label for f in NAMED_FRACTIONS)


def jump_from_dict(d: Any, n_inst: int, n_features: int) -> Jump:
    """A Jump from its `as_dict` (a session's record, a served run's history message), checked:
    ValueError naming what does not fit."""
    fields = Jump.__slots__
    if not isinstance(d, dict) or set(d) != set(fields):
        raise ValueError(f"a jump has the fields {', '.join(fields)}")
    ints = [d[k] for k in ("step", "left_step", "instance", "feature")]
    if not all(type(v) is int for v in ints):
        raise ValueError("a jump's steps, instance and feature are integers")
    if not (0 <= d["left_step"] < d["step"] and 0 <= d["instance"] < n_inst
            and 0 <= d["feature"] < n_features):  # fmt: skip
        raise ValueError(f"a jump at step {d['step']} does not fit this run")
    if d["before"] not in _LABELS or d["after"] not in _LABELS or d["before"] == d["after"]:
        raise ValueError("a jump's levels are two different named fractions")
    for k in ("loss_before", "loss_after"):
        if d[k] is not None and (type(d[k]) not in (int, float) or not math.isfinite(d[k])):
            raise ValueError(f"a jump's {k} is a finite number or null")
    return Jump(**{k: d[k] for k in fields})
