"""Loss per instance against step on a log10 axis computed here (plotext's own log scale
crashes on the second draw)."""

from __future__ import annotations

import numpy as np

from toygeom_tui.series import decade_ticks, nice_ticks, safe_log10
from toygeom_tui.widgets.charts.instance_series_chart import InstanceSeriesChart


class LossChart(InstanceSeriesChart):
    TITLE = "loss (log)"

    def transform(self, values: np.ndarray) -> np.ndarray:
        return safe_log10(values)

    def y_ticks(self, low: float, high: float) -> tuple[list[float], list[str]]:
        ticks, labels = decade_ticks(low, high)
        if len(ticks) >= 2:
            return ticks, labels
        # Less than a factor 2 in view: plain round numbers, still on the log axis.
        ticks = nice_ticks(low, high, max(2, self.size.height // 4))[0]
        return ticks, [f"{10**t:.2g}" for t in ticks]
