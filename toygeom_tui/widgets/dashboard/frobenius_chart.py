"""‖W‖²_F per instance against step: roughly how many features each instance represents."""

from __future__ import annotations

from toygeom_tui.widgets.charts.instance_series_chart import InstanceSeriesChart


class FrobeniusChart(InstanceSeriesChart):
    TITLE = "‖W‖²_F"
