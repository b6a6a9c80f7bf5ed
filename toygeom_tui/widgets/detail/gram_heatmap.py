"""GramHeatmap: one instance's WᵀW as half-block cells in a diverging colourblind-safe map.

Each character cell holds two matrix entries ("▀": top one as foreground, bottom as background),
which makes the pixels roughly square. A matrix larger than the widget is pooled in k×k blocks,
keeping each block's entry of largest magnitude (with its sign), so interference is not averaged
away; a small one is scaled up. Values are clipped to [−1, 1]; NaN/inf show as grey.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

# ColorBrewer RdBu reversed: −1 blue, 0 white, +1 red (safe for red–green colour blindness).
RDBU = ("#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
        "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f")  # fmt: skip
LEVELS = 21  # quantised so the cell styles can be cached, and 256-colour terminals agree
NAN_COLOR = Color.parse("#808080")
GUTTER = 2  # the row marker column and a space


def diverging_palette(levels: int = LEVELS) -> list[Color]:
    """`levels` colours from −1 to +1, interpolated linearly between the RdBu stops."""
    stops = np.array([Color.parse(c).get_truecolor() for c in RDBU], dtype=float)
    where = np.linspace(0, len(RDBU) - 1, levels)
    rgb = np.stack([np.interp(where, np.arange(len(RDBU)), stops[:, ch]) for ch in range(3)], -1)
    return [Color.from_rgb(*(int(round(v)) for v in row)) for row in rgb]


def pool_signed_max(matrix: np.ndarray, k: int) -> np.ndarray:
    """(n, n) → (⌈n/k⌉, ⌈n/k⌉): per k×k block the entry of largest |value|; NaN if any is NaN."""
    if k == 1:
        return matrix
    n = matrix.shape[0]
    side = -(-n // k)
    padded = np.pad(matrix, ((0, side * k - n), (0, side * k - n)))
    blocks = padded.reshape(side, k, side, k).transpose(0, 2, 1, 3).reshape(side, side, k * k)
    has_nan = np.isnan(blocks).any(-1)
    finite = np.nan_to_num(blocks)
    picked = np.take_along_axis(finite, np.abs(finite).argmax(-1)[..., None], -1)[..., 0]
    picked[has_nan] = np.nan
    return picked


class GramHeatmap(Widget):
    """WᵀW of one instance, features in `order`; the selected feature's row and column marked."""

    DEFAULT_CSS = "GramHeatmap { width: 1fr; height: 1fr; }"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._gram: np.ndarray | None = None  # (feats, feats), NaN where non-finite
        self._order: list[int] = []
        self._selected: int | None = None
        self._palette = diverging_palette()
        self._styles: dict[tuple[int, int], Style] = {}
        # The cell rows are costly and change with the matrix or size; the markers are cheap.
        self._cells: list[Strip] = []
        self._cells_for: tuple | None = None
        self._scale = (1, 1)  # (k, u) of the cached cells, see _layout

    def show(
        self, W: np.ndarray, order: Sequence[int] | None = None, selected: int | None = None
    ) -> None:
        """W (hidden feats) of one instance; `order` lists feature indices top to bottom."""
        W = np.asarray(W, dtype=np.float64)
        with np.errstate(all="ignore"):
            gram = W.T @ W
        gram[~np.isfinite(gram)] = np.nan
        self._gram = np.clip(gram, -1.0, 1.0)
        self._order = list(order) if order is not None else list(range(W.shape[1]))
        self._selected = selected
        self._cells_for = None
        self.refresh()

    def select(self, feature: int | None) -> None:
        if feature != self._selected:
            self._selected = feature
            self.refresh()

    def render_line(self, y: int) -> Strip:
        if self._cells_for != (self.size, id(self._gram)):
            self._cells = self._build_cells()
            self._cells_for = (self.size, id(self._gram))
        if not self._cells:
            return Strip.blank(self.size.width)
        k, u = self._scale
        marked = None
        if self._selected in self._order:
            marked = self._order.index(self._selected) // k * u + u // 2
        if y == 0:
            side = self._cells[0].cell_length
            header = "".join("▼" if marked == x else " " for x in range(side))
            line = Strip([Segment(" " * GUTTER + header)])
        elif y <= len(self._cells):
            gutter = "▶ " if marked in (2 * (y - 1), 2 * (y - 1) + 1) else "  "
            line = Strip.join([Strip([Segment(gutter)]), self._cells[y - 1]])
        elif y == len(self._cells) + 1:
            line = self._legend(k)
        else:
            return Strip.blank(self.size.width)
        return line.crop_extend(0, self.size.width, None)

    def _cell_style(self, top: int, bottom: int) -> Style:
        style = self._styles.get((top, bottom))
        if style is None:
            colors = [*self._palette, NAN_COLOR]
            style = Style(color=colors[top], bgcolor=colors[bottom] if bottom >= 0 else None)
            self._styles[(top, bottom)] = style
        return style

    def _layout(self, n: int) -> tuple[int, int]:
        """(k, u): pool k×k features into one pixel, or repeat each feature u×u pixels."""
        room = max(1, min(self.size.width - GUTTER, 2 * (self.size.height - 2)))
        if n <= room:
            return 1, room // n
        return -(-n // room), 1

    def _build_cells(self) -> list[Strip]:
        """One strip per two pixel rows, each pixel a "▀" half: top as fg, bottom as bg."""
        if self._gram is None or not self._order or self.size.width <= GUTTER:
            return []
        k, u = self._scale = self._layout(len(self._order))
        pooled = pool_signed_max(self._gram[np.ix_(self._order, self._order)], k)
        pixels = np.repeat(np.repeat(pooled, u, 0), u, 1)
        level = np.full(pixels.shape, LEVELS, dtype=int)  # LEVELS indexes the NaN colour
        finite = ~np.isnan(pixels)
        level[finite] = np.rint((pixels[finite] + 1) / 2 * (LEVELS - 1)).astype(int)
        side = pixels.shape[0]
        cells = []
        for row in range(0, side, 2):
            bottom = level[row + 1] if row + 1 < side else np.full(side, -1)
            segments = [
                Segment("▀", self._cell_style(t, b))
                for t, b in zip(level[row].tolist(), bottom.tolist(), strict=True)
            ]
            cells.append(Strip(segments).simplify())
        return cells

    def _legend(self, k: int) -> Strip:
        """The colour bar, and for a pooled matrix how many features a cell holds: in the
        longest wording that fits (at 52 columns the long one lost its end)."""
        legend = [Segment(" " * GUTTER + "−1 ")]
        legend += [Segment("█", Style(color=c)) for c in self._palette]
        room = self.size.width - GUTTER - 3 - len(self._palette) - len(" +1  ")
        pooled = (f"1 cell: {k}×{k} features, max |·|", f"cell {k}×{k}, max |·|", f"cell {k}×{k}")
        note = next((text for text in pooled if len(text) <= room), "") if k > 1 else ""
        legend.append(Segment(f" +1  {note}"))
        return Strip(legend)
