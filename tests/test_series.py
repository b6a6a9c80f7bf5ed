"""The charts' series helpers: decimation keeps a curve's shape and its spikes; axes show their
scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from toygeom_tui.series import decimate, nice_ticks, step_axis_end


def test_a_falling_curve_stays_falling_at_any_width() -> None:
    x = np.arange(1000, dtype=np.float64)
    y = np.exp(-x / 100)[:, None]
    for buckets in (8, 50, 333):
        xs, ys = decimate(x, y, buckets)
        assert len(xs) == 2 * buckets and np.all(np.diff(xs) >= 0)
        assert np.all(np.diff(ys[:, 0]) <= 0), buckets  # max then min in each bucket


def test_each_series_keeps_its_own_order_and_extremes() -> None:
    x = np.arange(600, dtype=np.float64)
    rising, falling = x / 600, 1 - x / 600
    spike = np.zeros(600)
    spike[301] = 5.0
    xs, ys = decimate(x, np.stack([rising, falling, spike], axis=1), 10)
    assert np.all(np.diff(ys[:, 0]) >= 0) and np.all(np.diff(ys[:, 1]) <= 0)
    assert ys[:, 2].max() == 5.0  # a one-step spike still reaches the chart
    assert ys[0, 0] == 0 and ys[-1, 0] == rising[-1]  # the ends are the curve's own


def test_nan_is_ignored_inside_a_bucket_and_an_all_nan_bucket_stays_nan() -> None:
    x = np.arange(40, dtype=np.float64)
    y = np.linspace(1, 0, 40)[:, None].copy()
    y[1:3] = np.nan
    y[20:30] = np.nan
    xs, ys = decimate(x, y, 4)
    assert ys[0, 0] == 1.0 and ys[1, 0] == y[9, 0]  # bucket 0: NaN skipped
    assert np.isnan(ys[4:6, 0]).all()  # bucket 2, rows 20–29: nothing to show


def test_short_series_pass_through() -> None:
    x, y = np.arange(10.0), np.arange(10.0)[:, None]
    assert decimate(x, y, 5)[0] is x


@pytest.mark.parametrize("high", [1, 1.05, 11, 19, 60, 1070, 3000, 7500, 10000, 30000, 2e5])
@pytest.mark.parametrize("count", [2, 3, 5])
def test_ticks_are_round_inside_the_range_and_at_least_two(high: float, count: int) -> None:
    # A 36-column chart of a 3,000-step run asks for 2 ticks; it used to get only "0".
    ticks, labels = nice_ticks(0.0, high, count)
    assert len(ticks) >= 2 and len(labels) == len(ticks)
    assert ticks[0] >= 0.0 and ticks[-1] <= high
    steps = np.diff(ticks)
    assert np.allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** math.floor(math.log10(steps[0]))
    assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9
    assert len(ticks) <= max(count, 2) + 1  # about `count`, not a crowd


@pytest.mark.parametrize(
    ("newest", "total", "end"),
    [
        (0, 10_000, 1),
        (500, 10_000, 1_000),  # the early steps fill half the width, not 5% of it
        (800, 10_000, 1_000),
        (801, 10_000, 2_000),
        (4_000, 10_000, 5_000),
        (8_000, 10_000, 10_000),  # never past the run's total
        (10_000, 10_000, 10_000),  # a finished run's axis is the run
        (69_490, 100_000_000, 100_000),  # a 100M-step run at 69k: not one column
        (12_000, 10_000, 12_000),  # records past the total (extended, say): to the newest
    ],
)
def test_the_step_axis_ends_at_a_round_step_past_the_records(newest, total, end) -> None:
    assert step_axis_end(newest, total) == end
    assert newest <= end and (end in (total, newest) or newest == 0 or newest / end >= 0.3)
