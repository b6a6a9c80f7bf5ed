"""bench's attach section works end to end on a tiny budget (speed itself is never asserted)."""

from __future__ import annotations

import math

from toygeom_tui.bench import attach_cost


def test_attach_cost_measures_both_phases_and_the_viewers_staleness():
    r = attach_cost.measure(seconds=1.0, rounds=1, preset_name="pentagon")
    assert r["none_steps_per_s"] > 0 and r["one_steps_per_s"] > 0
    assert r["ratio"] == r["one_steps_per_s"] / r["none_steps_per_s"]
    assert r["messages"] > 0 and 0 <= r["staleness_p95_s"] < 60 and math.isfinite(r["ratio"])
