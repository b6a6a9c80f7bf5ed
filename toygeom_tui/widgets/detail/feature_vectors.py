"""FeatureVectors: for d_hidden = 2, every feature's column W_i drawn as an arrow from the origin.

This is the curriculum's first picture (a pentagon for 5 features in 2 dims). Colour encodes
importance on the bright part of viridis (readable on dark backgrounds, colourblind safe).
"""

from __future__ import annotations

import numpy as np
from textual_plotext import PlotextPlot

# viridis from teal to yellow: its dark end would vanish on a dark terminal.
VIRIDIS_BRIGHT = ((33, 145, 140), (53, 183, 121), (109, 205, 89), (180, 222, 44), (253, 231, 37))


def importance_colors(importance: np.ndarray) -> list[tuple[int, int, int]]:
    """One (r, g, b) per feature; equal importances all get the brightest colour."""
    importance = np.nan_to_num(np.asarray(importance, dtype=float))
    low, high = importance.min(initial=0.0), importance.max(initial=0.0)
    share = (importance - low) / (high - low) if high > low else np.ones_like(importance)
    where = share * (len(VIRIDIS_BRIGHT) - 1)
    stops = np.array(VIRIDIS_BRIGHT, dtype=float)
    channels = [np.interp(where, np.arange(len(stops)), stops[:, ch]) for ch in range(3)]
    return [tuple(int(round(c)) for c in rgb) for rgb in zip(*channels, strict=True)]


class FeatureVectors(PlotextPlot):
    """Arrows W_i in the plane, labelled by feature index; the selected one in brackets."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._W = np.zeros((2, 0))
        self._importance = np.zeros(0)
        self._selected: int | None = None

    def show(self, W: np.ndarray, importance: np.ndarray, selected: int | None = None) -> None:
        """W (2 feats) of one instance, importance (feats)."""
        self._W = np.nan_to_num(np.asarray(W, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        self._importance = np.asarray(importance, dtype=float)
        self._selected = selected
        self._draw()

    def select(self, feature: int | None) -> None:
        if feature != self._selected:
            self._selected = feature
            self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        reach = float(np.abs(self._W).max(initial=0.0)) * 1.2 or 1.0
        for i, ((x, y), color) in enumerate(
            zip(self._W.T, importance_colors(self._importance), strict=True)
        ):
            plt.plot([0.0, x], [0.0, y], color=color, marker="braille")
            label = f"[{i}]" if i == self._selected else str(i)
            plt.text(label, x * 1.08, y * 1.08, color=color, alignment="center")
        # Braille dots are square, so equal reach per dot keeps the polygon regular.
        dots_x, dots_y = max(1, self.size.width - 8) * 2, max(1, self.size.height - 4) * 4
        plt.xlim(-reach * max(1.0, dots_x / dots_y), reach * max(1.0, dots_x / dots_y))
        plt.ylim(-reach * max(1.0, dots_y / dots_x), reach * max(1.0, dots_y / dots_x))
        plt.title("colour: importance, teal low → yellow high")
        self.refresh()
