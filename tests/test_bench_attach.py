"""bench's attach section works end to end on a tiny budget (speed itself is never asserted)."""

from __future__ import annotations

import math
import statistics

from toygeom_tui.bench import attach_cost


def test_attach_cost_measures_bracketed_rounds_the_viewers_cpu_and_staleness():
    r = attach_cost.measure(seconds=1.0, rounds=2, preset_name="pentagon")
    assert r["none_steps_per_s"] > 0 and r["one_steps_per_s"] > 0
    assert len(r["ratios"]) == 2 and all(math.isfinite(x) and x > 0 for x in r["ratios"])
    assert r["ratio"] == statistics.median(r["ratios"])
    assert 0 < r["viewer_cpu"] < 2 and 0 <= r["server_cpu"] < 2  # it was attached, and measured
    assert r["messages"] > 0 and 0 <= r["staleness_p95_s"] < 60
    assert "median of 2 rounds" in attach_cost.summary(r)
