"""Base of the dashboard's charts: plotext draws the frame, ticks and title; a BrailleCanvas
(numpy) draws the data into the plot area. See toygeom_tui/braille.py for why."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual_plotext import PlotextPlot

from toygeom_tui.braille import BrailleCanvas, row_segments, row_text


@dataclass(frozen=True)
class Axes:
    title: str
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    x_ticks: tuple[list[float], list[str]]
    y_ticks: tuple[list[float], list[str]]


@dataclass
class _Frame:
    """plotext's frame at one size: every row as a Strip, the plot area inside it (None: no
    data, or too small), each plot row's segments left and right of the area, and the styles
    of the canvas layers over the area's background."""

    rows: list[Strip]
    area: tuple[int, int, int, int] | None  # first row, end row, first col, end col
    sides: dict[int, tuple[list[Segment], list[Segment]]]
    layer_styles: dict[int, Style]


class BrailleChart(PlotextPlot):
    """Subclasses give `axes()` (None while there is nothing to draw), `draw_data(canvas)` (what
    does not depend on the selection) and `draw_selection(canvas)` (drawn over it), and call
    `data_changed()` or `selection_changed()` when what they draw changes.

    The chart is rebuilt at once on a change, as ready Strips (Textual's line API), and only the
    rows whose cells changed are repainted: a new record or another selected instance moves a
    few rows, and every row handed to Textual costs a compositor pass. The data layer is kept
    between selection changes, so a key press redraws one series, not twenty.
    """

    # Layer number -> style; higher layers win a shared cell.
    LAYER_STYLES: dict[int, Style] = {}
    EMPTY_TITLE = "no steps recorded yet"

    def axes(self) -> Axes | None:
        raise NotImplementedError

    def draw_data(self, canvas: BrailleCanvas) -> None:
        raise NotImplementedError

    def draw_selection(self, canvas: BrailleCanvas) -> None:
        raise NotImplementedError

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._frame_key: object = None
        self._frame = _Frame([], None, {}, {})
        self._axes: Axes | None = None
        self._data_layer: np.ndarray | None = None  # the canvas dots after draw_data
        self._data_stale = True  # data_changed() since the data layer was drawn
        self._built_for: object = None  # (size, theme) of _rows
        self._rows: list[Strip] = []
        self._row_keys: list[bytes | None] = []  # each row's canvas cells (None: not drawn)
        self.version = 0  # bumps on every change of what the chart shows
        self.shown_version = -1  # the version of the newest rows served to the screen

    def data_changed(self) -> None:
        self._data_stale = True
        self._update()

    def selection_changed(self) -> None:
        self._update()

    def _update(self) -> None:
        self.version += 1
        if not self.is_attached or self._built_for != self._size_key():
            self.refresh()  # built by render_line once the size is known
            return
        changed = self._build()
        if changed is None:
            self.refresh()
        elif changed:
            width = self.size.width
            self.refresh(*(Region(0, y, width, 1) for y in changed))
        else:
            self.shown_version = self.version  # the screen already shows it

    def _size_key(self) -> object:
        return (self.size, self.app.theme)

    def render_line(self, y: int) -> Strip:
        if self._built_for != self._size_key():
            self._build()
        self.shown_version = self.version
        return self._rows[y] if y < len(self._rows) else Strip.blank(self.size.width)

    def render_text(self) -> Text:
        """The whole chart as Text, as the screen shows it."""
        if self._built_for != self._size_key():
            self._build()
        lines = [Text.assemble(*((s.text, s.style) for s in row), end="") for row in self._rows]
        return Text("\n", end="").join(lines)

    def _build(self) -> list[int] | None:
        """Bring `_rows` up to date; the rows that changed, or None if all may have."""
        size_key = self._size_key()
        resized = size_key != self._built_for
        if self._data_stale or resized:
            self._axes = self.axes()
        shown_frame, frame = self._frame, self._frame_for(self._axes)
        if frame is not shown_frame or resized:
            self._data_layer, self._data_stale = None, True
            self._rows, self._row_keys = list(frame.rows), [None] * len(frame.rows)
            full = True
        else:
            full = False
        self._built_for = size_key
        if self._axes is None or frame.area is None:  # nothing to draw, or too small for a frame
            self._data_stale = False
            return None if full else []
        top, bottom, left, right = frame.area
        canvas = BrailleCanvas(right - left, bottom - top, self._axes.x_range, self._axes.y_range)
        if self._data_stale or self._data_layer is None:
            self.draw_data(canvas)
            self._data_layer, self._data_stale = canvas.dots.copy(), False
        else:
            canvas.dots[...] = self._data_layer
        self.draw_selection(canvas)
        codes, layers = canvas.cells()
        changed = []
        width = self.size.width  # a property that Textual works out anew on every read
        for y, code_row, layer_row in zip(range(top, bottom), codes, layers, strict=True):
            key = code_row.tobytes() + layer_row.tobytes()
            if key == self._row_keys[y]:
                continue
            self._row_keys[y] = key
            before, after = frame.sides[y]
            plot = row_segments(row_text(code_row), code_row, layer_row, frame.layer_styles)
            self._rows[y] = Strip(before + plot + after, width)
            changed.append(y)
        return None if full else changed

    def _frame_for(self, axes: Axes | None) -> _Frame:
        """plotext's frame, ticks and title, and the plot area inside the frame.

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
        width, console, base = self.size.width, self.app.console, self.rich_style
        rows = [
            Strip(list(line.render(console)), line.cell_len)
            .extend_cell_length(width, base)
            .crop(0, width)
            for line in lines
        ]
        area = _plot_area([line.plain for line in lines]) if axes is not None else None
        styles: dict[int, Style] = {}
        sides: dict[int, tuple[list[Segment], list[Segment]]] = {}
        if area is not None:
            top, bottom, left, right = area
            background = lines[top].get_style_at_offset(console, left)
            styles = {0: background}
            styles.update({k: background + style for k, style in self.LAYER_STYLES.items()})
            for y in range(top, bottom):
                sides[y] = (list(rows[y].crop(0, left)), list(rows[y].crop(right)))
        self._frame_key, self._frame = key, _Frame(rows, area, sides, styles)
        return self._frame


def _plot_area(plain: list[str]) -> tuple[int, int, int, int] | None:
    """(first row, end row, first col, end col) inside plotext's frame, or None."""
    top = next((i for i, s in enumerate(plain) if "┌" in s), None)
    bottom = next((i for i, s in enumerate(plain) if "└" in s), None)
    if top is None or bottom is None or bottom - top < 2:
        return None
    left, right = plain[top].index("┌") + 1, plain[top].rindex("┐")
    return (top + 1, bottom, left, right) if right > left else None
