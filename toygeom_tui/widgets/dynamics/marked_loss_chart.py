"""One instance's loss against step (log), with a dotted line at each jump (engine.jumps) and at
the step time travel shows: the dynamics screen's lower chart, on the D_i chart's step axis."""

from __future__ import annotations

from rich.style import Style

from toygeom_tui.braille import BrailleCanvas
from toygeom_tui.series import VERMILLION, rgb
from toygeom_tui.widgets.charts.instance_series_chart import InstanceSeriesChart
from toygeom_tui.widgets.dashboard.loss_chart import LossChart
from toygeom_tui.widgets.dynamics.dims_history_chart import LABEL_WIDTH

JUMP = 3


class MarkedLossChart(LossChart):
    TITLE = "loss (log) · jumps dotted"
    LAYER_STYLES = {**InstanceSeriesChart.LAYER_STYLES, JUMP: Style(color=rgb(VERMILLION))}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.jump_steps: list[int] = []

    def y_ticks(self, low: float, high: float) -> tuple[list[float], list[str]]:
        ticks, labels = super().y_ticks(low, high)
        return ticks, [label.rjust(LABEL_WIDTH) for label in labels]

    def draw_data(self, canvas: BrailleCanvas) -> None:
        for step in self.jump_steps:
            canvas.vline(float(step), JUMP, every=2)
        super().draw_data(canvas)
