"""Base of the dashboard's charts: plotext draws the frame, ticks and title; a BrailleCanvas
(numpy) draws the data into the plot area. See toygeom_tui/braille.py for why."""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual_plotext import PlotextPlot

from toygeom_tui.braille import BrailleCanvas


@dataclass(frozen=True)
class Axes:
    title: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: tuple[list[float], list[str]]
    y_ticks: tuple[list[float], list[str]]


class BrailleChart(PlotextPlot):
    """Subclasses give `axes()` (None while there is nothing to draw) and `draw(canvas)`, and
    call `data_changed()` when what they draw changes.

    Lines are served as ready Strips (Textual's line API): converting a chart-sized Rich Text
    through Textual's generic render path cost ~10 ms a frame, here it is ~1 ms.
    """

    # Layer number -> style; higher layers win a shared cell.
    LAYER_STYLES: dict[int, Style] = {}
    EMPTY_TITLE = "waiting for data"

    def axes(self) -> Axes | None:
        raise NotImplementedError

    def draw(self, canvas: BrailleCanvas) -> None:
        raise NotImplementedError

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._frame_key: object = None
        self._frame: tuple[list[Text], tuple[int, int, int, int] | None] = ([], None)
        self._data_version = 0
        self._strips_key: object = None
        self._strips: list[Strip] = []

    def data_changed(self) -> None:
        self._data_version += 1
        self.refresh()

    def render_line(self, y: int) -> Strip:
        key = (self._data_version, self.size, self.app.theme)
        if key != self._strips_key:
            self._strips_key, self._strips = key, self._render_strips()
        return self._strips[y] if y < len(self._strips) else Strip.blank(self.size.width)

    def _render_strips(self) -> list[Strip]:
        width, console, base = self.size.width, self.app.console, self.rich_style
        return [
            Strip(list(line.render(console)), line.cell_len)
            .extend_cell_length(width, base)
            .crop(0, width)
            for line in self.render_text().split("\n", allow_blank=True)
        ]

    def render_text(self) -> Text:
        """The whole chart: plotext's frame with the canvas laid into its plot area."""
        axes = self.axes()
        lines, area = self._frame_for(axes)
        if axes is None or area is None:  # nothing to draw, or too small for a frame
            return Text("\n", end="").join(lines)
        lines = list(lines)
        top, bottom, left, right = area
        canvas = BrailleCanvas(right - left, bottom - top, axes.x_range, axes.y_range)
        self.draw(canvas)
        background = lines[top].get_style_at_offset(self.app.console, left)
        rows = canvas.to_text(self.LAYER_STYLES, background)
        for row, overlay in zip(range(top, bottom), rows, strict=True):
            line = lines[row]
            lines[row] = Text.assemble(line[:left], overlay, line[right:], end="")
        return Text("\n", end="").join(lines)

    def _frame_for(self, axes: Axes | None) -> tuple[list[Text], tuple[int, int, int, int] | None]:
        """plotext's frame, ticks and title as lines, and the plot area inside the frame.

        plotext costs ~10 ms here even without data, so the frame is rebuilt only when the
        axes, size or theme change; subclasses keep their ranges stable (rounded) for that.
        """
        key = (axes, self.size, self.app.theme)
        if key == self._frame_key:
            return self._frame
        plt = self.plt
        plt.clear_data()
        if axes is None:
            plt.title(self.EMPTY_TITLE)
        else:
            plt.title(axes.title)
            plt.xlim(*axes.x_range)
            plt.ylim(*axes.y_range)
            plt.xticks(*axes.x_ticks)
            plt.yticks(*axes.y_ticks)
            # plotext draws ticks only for a plot with data: two corner dots, painted over later.
            plt.scatter(list(axes.x_range), list(axes.y_range), marker="braille")
        lines = super().render().split("\n", allow_blank=True)
        area = _plot_area([line.plain for line in lines]) if axes is not None else None
        self._frame_key, self._frame = key, (lines, area)
        return self._frame


def _plot_area(plain: list[str]) -> tuple[int, int, int, int] | None:
    """(first row, end row, first col, end col) inside plotext's frame, or None."""
    top = next((i for i, s in enumerate(plain) if "┌" in s), None)
    bottom = next((i for i, s in enumerate(plain) if "└" in s), None)
    if top is None or bottom is None or bottom - top < 2:
        return None
    left, right = plain[top].index("┌") + 1, plain[top].rindex("┐")
    return (top + 1, bottom, left, right) if right > left else None
