"""A numpy braille canvas: lines and points rasterized at 2×4 dots per terminal cell.

plotext draws in pure Python at roughly 20–50 µs per point, so twenty instances of history
cost 100+ ms a frame and starve the training thread of the GIL. The charts therefore let plotext
draw only the frame, ticks and labels, and fill the plot area from this canvas, which costs
about a millisecond whatever the number of points.

Pixel (0, 0) is the top-left dot. Data maps like plotext's: x_low to the first dot column,
x_high to the last; y_low to the bottom dot row, y_high to the top.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style

# Bit of each dot inside a braille cell, indexed [dy, dx] (Unicode braille numbering).
_DOT_BITS = np.array([[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]], dtype=np.int32)


class BrailleCanvas:
    """`cols` × `rows` cells over the data box [x_low, x_high] × [y_low, y_high].

    Every dot holds a layer number (0 = empty); a cell takes the colour of the highest layer
    among its dots, so later, more important layers (the selected instance) win.
    """

    def __init__(
        self, cols: int, rows: int, x_range: tuple[float, float], y_range: tuple[float, float]
    ) -> None:
        self.cols, self.rows = cols, rows
        self.width, self.height = 2 * cols, 4 * rows
        self.x_range, self.y_range = x_range, y_range
        self.dots = np.zeros((self.height, self.width), dtype=np.int16)

    def _to_dots(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = (np.asarray(x, dtype=np.float64) - x0) / ((x1 - x0) or 1.0) * (self.width - 1)
        py = (y1 - np.asarray(y, dtype=np.float64)) / ((y1 - y0) or 1.0) * (self.height - 1)
        return px, py

    def _plot(self, px: np.ndarray, py: np.ndarray, layer: int) -> None:
        ix, iy = np.rint(px).astype(np.int64), np.rint(py).astype(np.int64)
        inside = (ix >= 0) & (ix < self.width) & (iy >= 0) & (iy < self.height)
        self.dots[iy[inside], ix[inside]] = layer

    def points(self, x: np.ndarray, y: np.ndarray, layer: int) -> None:
        """One dot per finite (x, y)."""
        px, py = self._to_dots(x, y)
        ok = np.isfinite(px) & np.isfinite(py)
        self._plot(px[ok], py[ok], layer)

    def line(self, x: np.ndarray, y: np.ndarray, layer: int, *, thick: bool = False) -> None:
        """A polyline through (x, y); a non-finite point breaks it. `thick` doubles it
        vertically, which marks a series without relying on colour (NO_COLOR terminals)."""
        px, py = self._to_dots(x, y)
        if len(px) == 1:
            self.points(x, y, layer)
            return
        x0, y0, x1, y1 = px[:-1], py[:-1], px[1:], py[1:]
        ok = np.isfinite(x0) & np.isfinite(y0) & np.isfinite(x1) & np.isfinite(y1)
        x0, y0, x1, y1 = x0[ok], y0[ok], x1[ok], y1[ok]
        # Samples per segment: one per dot along its longer side, capped at the canvas size
        # so a segment far outside the box can't allocate without bound.
        reach = np.minimum(np.maximum(np.abs(x1 - x0), np.abs(y1 - y0)), self.width + self.height)
        counts = np.ceil(reach).astype(np.int64) + 1
        if counts.size == 0:
            return
        seg = np.repeat(np.arange(len(counts)), counts)
        first = np.cumsum(counts) - counts
        t = (np.arange(counts.sum()) - first[seg]) / np.maximum(counts[seg] - 1, 1)
        sx = x0[seg] + (x1[seg] - x0[seg]) * t
        sy = y0[seg] + (y1[seg] - y0[seg]) * t
        self._plot(sx, sy, layer)
        if thick:
            self._plot(sx, sy + 1, layer)

    def hline(self, y: float, layer: int, *, every: int = 2) -> None:
        """A dotted horizontal line (every `every`-th dot), drawn only where the canvas is empty."""
        _, py = self._to_dots(np.zeros(1), np.array([y]))
        row = int(np.rint(py[0]))
        if 0 <= row < self.height:
            empty = self.dots[row, ::every] == 0
            self.dots[row, ::every][empty] = layer

    def vline(self, x: float, layer: int, *, every: int = 2) -> None:
        """A dotted vertical line, drawn only where the canvas is empty."""
        px, _ = self._to_dots(np.array([x]), np.zeros(1))
        col = int(np.rint(px[0]))
        if 0 <= col < self.width:
            empty = self.dots[::every, col] == 0
            self.dots[::every, col][empty] = layer

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(codes, layers), both (rows, cols): each cell's braille dot bits (0 = blank) and the
        highest layer among its dots (0 = empty)."""
        # One strided view per dot position in the cell: ~5× faster than reducing over a
        # (rows, 4, cols, 2) view, and this runs for every chart on every redraw.
        dots = [self.dots[dy::4, dx::2] for dy in range(4) for dx in range(2)]
        codes = np.zeros((self.rows, self.cols), dtype=np.int32)
        for dot, bit in zip(dots, _DOT_BITS.ravel().tolist(), strict=True):
            codes |= (dot > 0) * bit
        return codes, np.maximum.reduce(dots)


def row_text(codes: np.ndarray) -> str:
    """The characters of one row of cells (codes (cols,) from `cells`): blank cells are spaces."""
    points = np.where(codes > 0, 0x2800 + codes, 0x20).astype("<u4")
    return points.tobytes().decode("utf-32-le")


def row_segments(
    text: str, codes: np.ndarray, layers: np.ndarray, styles: dict[int, Style]
) -> list[Segment]:
    """One row of cells as Segments, one per run of equal layers (codes and layers (cols,) from
    `cells`, text from `row_text(codes)`); layer k in styles[k] (which holds the background
    too), empty cells in styles[0].

    A blank cell joins the run before it: it shows only the background, which every layer's
    style shares (they set colour, bold and dim, never reverse or underline). A dotted line
    then costs a few segments rather than one per dot, and every segment costs Textual's
    compositor a pass on each repaint.
    """
    if layers.size:
        filled = np.where(codes > 0, np.arange(layers.size), 0)
        layers = layers[np.maximum.accumulate(filled)]
    edges = (np.flatnonzero(layers[1:] != layers[:-1]) + 1).tolist()
    starts, ends = [0, *edges], [*edges, len(text)]
    run_layers = layers[starts].tolist()
    blank = styles[0]
    return [
        Segment(text[start:end], styles.get(layer, blank))
        for start, end, layer in zip(starts, ends, run_layers, strict=True)
    ]
