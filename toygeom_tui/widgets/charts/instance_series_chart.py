"""A chart of one quantity per instance against step: the selected instance thick and coloured,
the rest faint. Subclasses say what the quantity is (`TITLE`) and how to put it on the y axis
(`transform`, `y_ticks`)."""

from __future__ import annotations

import numpy as np
from rich.style import Style

from toygeom_tui.braille import BrailleCanvas
from toygeom_tui.series import GREY, SELECTED, decimate, ema, nice_ticks, rgb, rounded_range
from toygeom_tui.widgets.charts.braille_chart import Axes, BrailleChart

FAINT, CHOSEN = 1, 2


class InstanceSeriesChart(BrailleChart):
    TITLE = ""
    LAYER_STYLES = {FAINT: Style(color=rgb(GREY)), CHOSEN: Style(color=rgb(SELECTED), bold=True)}
    SMOOTHING_SPAN = 0.02  # EMA span as a fraction of the records shown

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._all_steps, self._all_values = np.zeros(0), np.zeros((0, 0))  # as shown
        self._steps, self._values = self._all_steps, self._all_values  # decimated for the width
        self._last_step = 1
        self.selected = 0
        self.smooth = False
        self.marked_step: int | None = None  # a dotted line at this step (time travel)

    def show_history(
        self,
        steps: np.ndarray,
        values: np.ndarray,
        last_step: int,
        smooth: bool,
        marked_step: int | None = None,
    ) -> None:
        """steps (n,), values (n, inst) in the quantity's own units; the x axis runs to
        `last_step` (series.step_axis_end); `marked_step` gets a dotted vertical line."""
        self.marked_step = marked_step
        y = self.transform(values)
        smooth = smooth and len(steps) > 4
        if smooth:
            y = ema(y, max(2, int(len(steps) * self.SMOOTHING_SPAN)))
        self._all_steps, self._all_values = steps.astype(np.float64), y
        self._last_step = max(last_step, int(steps[-1]) if len(steps) else 1, 1)
        self.smooth = smooth
        self.data_changed()

    def select(self, selected: int) -> None:
        """Draw instance `selected` thick and coloured."""
        if selected != self.selected:
            self.selected = selected
            self.selection_changed()

    def transform(self, values: np.ndarray) -> np.ndarray:
        return values.astype(np.float64)

    def y_ticks(self, low: float, high: float) -> tuple[list[float], list[str]]:
        return nice_ticks(low, high, max(2, self.size.height // 4))

    def axes(self) -> Axes | None:
        # Called on new data and on every resize, with the width known: two points per column,
        # as much detail as braille dots can show.
        self._steps, self._values = decimate(
            self._all_steps, self._all_values, max(8, self.size.width)
        )
        finite = self._values[np.isfinite(self._values)]
        if len(self._steps) == 0 or finite.size == 0:
            return None
        x_range = (0.0, float(self._last_step))
        y_range = rounded_range(float(finite.min()), float(finite.max()))
        return Axes(
            title=f"{self.TITLE} · EMA" if self.smooth else self.TITLE,
            x_range=x_range,
            y_range=y_range,
            x_ticks=nice_ticks(*x_range, max(2, self.size.width // 14)),
            y_ticks=self.y_ticks(*y_range),
        )

    def draw_data(self, canvas: BrailleCanvas) -> None:
        # Every series faint, in one call: columns stacked, a NaN row between them breaks the
        # line. The selected one's dots are all painted over by its thick line.
        n_inst = self._values.shape[1]
        gap = np.full((1, n_inst), np.nan)
        y = np.vstack([self._values, gap]).ravel(order="F")
        x = np.tile(np.append(self._steps, np.nan), n_inst)
        canvas.line(x, y, FAINT)

    def draw_selection(self, canvas: BrailleCanvas) -> None:
        selected = min(self.selected, self._values.shape[1] - 1)
        canvas.line(self._steps, self._values[:, selected], CHOSEN, thick=True)
        if self.marked_step is not None:
            canvas.vline(float(self.marked_step), CHOSEN, every=2)
