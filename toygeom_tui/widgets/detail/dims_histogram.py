"""DimsHistogram: how one instance's feature dimensionalities D_i spread, named fractions marked.

Dead features (D_i ≈ 0) are counted in the title rather than drawn: their spike at 0 would
flatten every other bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from textual_plotext import PlotextPlot

BINS = 40
DEAD_BELOW = 0.01
BAR_COLOR = (0, 114, 178)  # Okabe–Ito blue
LINE_COLOR = (230, 159, 0)  # Okabe–Ito orange


class DimsHistogram(PlotextPlot):
    """Counts of D_i in [0, 1] (BINS bins) with a vertical line at each named fraction."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._dims = np.zeros(0)
        self._fractions: list[tuple[str, float]] = []

    def show(self, dims: np.ndarray, fractions: Sequence[tuple[str, float]]) -> None:
        """dims (feats) of one instance; fractions as (label, value) pairs, e.g. ("2/5", 0.4)."""
        self._dims = np.nan_to_num(np.asarray(dims, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
        self._fractions = [(label, value) for label, value in fractions if 0 < value <= 1]
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        alive = self._dims[self._dims >= DEAD_BELOW]
        counts, edges = np.histogram(np.clip(alive, 0, 1), bins=BINS, range=(0.0, 1.0))
        top = max(1, int(counts.max(initial=0)))
        plt.bar((edges[:-1] + edges[1:]) / 2, counts, color=BAR_COLOR, width=1.0, marker="sd")
        for n, (label, value) in enumerate(sorted(self._fractions, key=lambda f: f[1])):
            plt.vertical_line(value, color=LINE_COLOR)
            # Three label heights in turn: 3/8, 2/5 and 1/3 sit a column or two apart.
            plt.text(label, value, top * (1.1 + 0.15 * (n % 3)), color=LINE_COLOR)
        plt.xlim(0.0, 1.0)
        plt.ylim(0, top * 1.5)
        plt.xticks([0, 0.25, 0.5, 0.75, 1], ["0", "1/4", "1/2", "3/4", "1"])
        counts_ticks = sorted({0, top // 2, top})
        plt.yticks(counts_ticks, [str(c) for c in counts_ticks])
        dead = len(self._dims) - len(alive)
        plt.title(f"{len(alive)} features" + (f", {dead} dead not drawn" if dead else ""))
        self.refresh()
