"""Numpy helpers that turn a run's history into what a terminal chart can draw cheaply.

plotext's build time grows with the number of points, and it crashes on `inf`, so every series
goes through `finite_points` and `decimate` before it reaches a chart.
"""

from __future__ import annotations

import math

import numpy as np

# Okabe & Ito's colourblind-safe palette, as (r, g, b) for plotext.
ORANGE = (230, 159, 0)
SKY_BLUE = (86, 180, 233)
BLUISH_GREEN = (0, 158, 115)
VERMILLION = (213, 94, 0)
REDDISH_PURPLE = (204, 121, 167)
GREY = (110, 110, 110)
SELECTED = ORANGE


def decimate(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max per bucket: x (n,), y (n, series) -> at most 2·buckets rows, spikes kept.

    Each bucket becomes two rows, at its first and its last x, holding its two extremes in the
    order they came, per series: a falling curve reads max then min, so the line keeps its
    direction at any width, and a one-step loss spike still reaches the chart. NaN is ignored
    inside a bucket.
    """
    n = len(x)
    if n <= 2 * buckets or buckets < 1:
        return x, y
    starts = np.linspace(0, n, buckets + 1).astype(np.int64)[:-1]
    ends = np.append(starts[1:], n) - 1
    with np.errstate(invalid="ignore"):
        low = np.fmin.reduceat(y, starts, axis=0)
        high = np.fmax.reduceat(y, starts, axis=0)
    bucket = np.repeat(np.arange(buckets), np.diff(np.append(starts, n)))
    row = np.arange(n).reshape(-1, *([1] * (y.ndim - 1)))
    first_low = np.minimum.reduceat(np.where(y == low[bucket], row, n), starts, axis=0)
    first_high = np.minimum.reduceat(np.where(y == high[bucket], row, n), starts, axis=0)
    low_first = first_low <= first_high
    xs = np.empty(2 * buckets, dtype=x.dtype)
    xs[0::2], xs[1::2] = x[starts], x[ends]
    ys = np.empty((2 * buckets, *y.shape[1:]), dtype=y.dtype)
    ys[0::2], ys[1::2] = np.where(low_first, low, high), np.where(low_first, high, low)
    return xs, ys


def finite_points(x: np.ndarray, y: np.ndarray) -> tuple[list[float], list[float]]:
    """The (x, y) pairs of one series where y is finite, as lists for plotext."""
    keep = np.isfinite(y)
    return x[keep].tolist(), y[keep].tolist()


def ema(y: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average down the rows of y (n, series); alpha = 2 / (span + 1), span ≥ 2.

    A non-finite value repeats the last finite one, so one bad record doesn't poison the rest;
    rows before a series' first finite value stay NaN. Vectorised in chunks: within a chunk
    y_k = d^k·(carry + a·Σ_{j≤k} x_j·d^-j) with d = 1 − a, each chunk short enough that d^-j
    stays far from overflow.
    """
    alpha = 2.0 / (max(span, 2) + 1.0)  # span 1 would be no smoothing at all
    decay = 1.0 - alpha
    x, leading = _forward_fill(y.astype(np.float64))
    out = np.empty_like(x)
    chunk = max(1, int(30 / alpha))
    carry = x[0].copy()
    for start in range(0, len(x), chunk):
        block = x[start : start + chunk]
        k = np.arange(1, len(block) + 1, dtype=np.float64)[:, None]
        out[start : start + len(block)] = decay**k * (
            carry + alpha * np.cumsum(block * decay**-k, axis=0)
        )
        carry = out[start + len(block) - 1]
    out[leading] = np.nan
    return out


def _forward_fill(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(filled, leading): every non-finite entry replaced by the last finite one above it; the
    entries before a column's first finite value get that first value and are marked in
    `leading` (all of a column with no finite value: 0.0, all marked)."""
    finite = np.isfinite(y)
    index = np.where(finite, np.arange(len(y))[:, None], -1)
    np.maximum.accumulate(index, axis=0, out=index)
    leading = index < 0
    first = np.argmax(finite, axis=0)  # 0 for a column with no finite value
    index = np.where(leading, first[None, :], index)
    filled = np.take_along_axis(y, index, axis=0)
    return np.where(np.isfinite(filled), filled, 0.0), leading


def safe_log10(y: np.ndarray) -> np.ndarray:
    """log10 where y > 0 and finite, NaN elsewhere (never -inf/inf)."""
    out = np.full(y.shape, np.nan)
    ok = np.isfinite(y) & (y > 0)
    out[ok] = np.log10(y[ok])
    return out


def decade_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Tick positions in log10 units and labels like "1e-3" covering [low, high].

    When the data spans less than two decades, 2× and 5× ticks are added so the axis keeps
    several labels.
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return [], []
    first, last = math.floor(low), math.ceil(high)
    ticks: list[float] = []
    labels: list[str] = []
    steps = (1, 2, 5) if last - first <= 2 else (1,)
    for decade in range(first, last + 1):
        for mantissa in steps:
            t = decade + math.log10(mantissa)
            if low - 1e-9 <= t <= high + 1e-9:
                ticks.append(t)
                labels.append(f"{mantissa}e{decade}")
    return ticks, labels


def log_axis_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks in log10 units at 1, 2, 5, 10, 20, 50, ... labelled with the plain number."""
    ticks: list[float] = []
    labels: list[str] = []
    for decade in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            t = decade + math.log10(mantissa)
            if low - 1e-9 <= t <= high + 1e-9:
                ticks.append(t)
                labels.append(f"{mantissa * 10.0**decade:g}")
    return ticks, labels


def nice_ticks(low: float, high: float, count: int = 5) -> tuple[list[float], list[str]]:
    """About `count` round ticks (1, 2, 5 × 10^k apart) inside [low, high], labelled compactly;
    at least two for a count of two or more, so an axis always shows its scale (the step chosen
    for [0, 3000] in two ticks, 5000, left only the 0)."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return [low], [compact_number(low)]
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    steps = [m * power for m in (10, 5, 2, 1)] + [m * power / 10 for m in (5, 2)]
    fitting = [step for step in steps if step >= raw]
    for step in [min(fitting), *(s for s in steps if s < raw)]:  # the roundest that fits first
        first = math.ceil(low / step - 1e-9) * step
        ticks = [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]
        if len(ticks) >= min(count, 2):
            break
    return ticks, [compact_number(t) for t in ticks]


def step_axis_end(newest: int, total: int) -> int:
    """Where a chart's step axis ends: at the first 1, 2 or 5 × 10^k at or past 1.25× the newest
    record, at most the run's total. So the records fill 30–80% of the width while the run trains
    (at step 500 of 10,000 the axis ends at 1,000: the early steps, where features jump, are not
    a sliver at its left edge, nor is a 100M-step run one column), the axis is rescaled a few
    times a decade, not on every draw, and a finished run's ends at its total."""
    target = max(1.25 * newest, 1.0)
    power = 10.0 ** math.floor(math.log10(target))
    end = next(m * power for m in (1, 2, 5, 10) if m * power >= target * (1 - 1e-12))
    return max(newest, min(int(math.ceil(end)), total))


def compact_number(value: float) -> str:
    """12000 -> "12k", 2500 -> "2.5k", 0.25 -> "0.25": short labels for narrow axes."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def rounded_range(low: float, high: float) -> tuple[float, float]:
    """[low, high] widened outward to multiples of half its order of magnitude.

    Charts use it so their axes stay put while the data drifts inside them (a chart's frame is
    only rebuilt when its axes change).
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        return 0.0, 1.0
    span = high - low if high > low else abs(high) or 1.0
    grain = 10.0 ** math.floor(math.log10(span)) / 2
    lo, hi = math.floor(low / grain) * grain, math.ceil(high / grain) * grain
    return (lo, hi) if hi > lo else (lo - grain, hi + grain)


def rgb(colour: tuple[int, int, int]) -> str:
    """An (r, g, b) tuple as a Rich colour string."""
    return "rgb({},{},{})".format(*colour)
