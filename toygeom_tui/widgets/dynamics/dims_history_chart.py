"""D_i of every learned feature of one instance against step: a line a feature, the selected one
thick and coloured, dotted reference lines at the named fractions, a mark where each jump
landed (engine.jumps) and a dotted line at the step time travel shows."""

from __future__ import annotations

import numpy as np
from rich.style import Style

from engine.geometry import NAMED_FRACTIONS
from toygeom_tui.braille import BrailleCanvas
from toygeom_tui.series import GREY, SELECTED, SKY_BLUE, VERMILLION, nice_ticks, rgb
from toygeom_tui.widgets.charts.braille_chart import Axes, BrailleChart
from toygeom_tui.widgets.dashboard.geometry_chart import Y_TOP, fraction_ticks

REFERENCE, FEATURES, JUMP, CHOSEN = 1, 2, 3, 4
LINE_FRACTIONS = [f for f in NAMED_FRACTIONS if f.value > 0]
LABEL_WIDTH = 5  # y labels of this chart and the loss chart under it, so their x axes line up


class DimsHistoryChart(BrailleChart):
    LAYER_STYLES = {
        REFERENCE: Style(color=rgb(GREY), dim=True),
        FEATURES: Style(color=rgb(SKY_BLUE)),
        JUMP: Style(color=rgb(VERMILLION), bold=True),
        CHOSEN: Style(color=rgb(SELECTED), bold=True),
    }
    EMPTY_TITLE = "D_i history: no measurement yet"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._steps = np.zeros(0)
        self._dims = np.zeros((0, 0))
        self._features: list[int] = []
        self._jumps: list[tuple[int, float]] = []
        self._last_step = 1
        self.selected: int | None = None
        self.marked_step: int | None = None

    def show_history(
        self,
        steps: np.ndarray,
        dims: np.ndarray,
        features: list[int],
        jumps: list[tuple[int, float]],
        last_step: int,
    ) -> None:
        """steps (m,), dims (m, feats) of one instance; `features` the ones drawn; `jumps`
        (step, D_i after) of each jump; the x axis runs to `last_step` (series.step_axis_end)."""
        self._steps, self._dims = steps.astype(np.float64), dims.astype(np.float64)
        self._features, self._jumps = features, jumps
        self._last_step = max(last_step, int(steps[-1]) if len(steps) else 1, 1)
        self.data_changed()

    def select(self, feature: int | None, marked_step: int | None) -> None:
        """Draw `feature` thick and coloured, and a dotted line at `marked_step`."""
        if (feature, marked_step) != (self.selected, self.marked_step):
            self.selected, self.marked_step = feature, marked_step
            self.selection_changed()

    def axes(self) -> Axes | None:
        if len(self._steps) == 0:
            return None
        x_range = (0.0, float(self._last_step))
        return Axes(
            title=f"D_i of {len(self._features)} learned features vs step",
            x_range=x_range,
            y_range=(0.0, Y_TOP),
            x_ticks=nice_ticks(*x_range, max(2, self.size.width // 14)),
            y_ticks=fraction_ticks(self.size.height, LINE_FRACTIONS, LABEL_WIDTH),
        )

    def draw_data(self, canvas: BrailleCanvas) -> None:
        if self._features:
            # Every feature in one call: columns stacked, a NaN row between them breaks the line.
            chosen = self._dims[:, self._features]
            gap = np.full((1, chosen.shape[1]), np.nan)
            y = np.vstack([chosen, gap]).ravel(order="F")
            x = np.tile(np.append(self._steps, np.nan), chosen.shape[1])
            canvas.line(x, y, FEATURES)
        for fraction in LINE_FRACTIONS:
            canvas.hline(fraction.value, REFERENCE, every=3)
        if self._jumps:
            steps, values = np.array(self._jumps, dtype=np.float64).T
            canvas.points(steps, values, JUMP)
            canvas.points(steps, values + 0.02, JUMP)

    def draw_selection(self, canvas: BrailleCanvas) -> None:
        if self.selected is not None and len(self._steps):
            canvas.line(self._steps, self._dims[:, self.selected], CHOSEN, thick=True)
        if self.marked_step is not None:
            canvas.vline(float(self.marked_step), CHOSEN, every=2)
