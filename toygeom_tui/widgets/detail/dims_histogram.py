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
        self._fractions = sorted(
            ((label, value) for label, value in fractions if 0 < value <= 1), key=lambda f: f[1]
        )
        self._draw()

    def on_resize(self) -> None:
        self._draw()  # the labels' rows and the headroom above the bars depend on the size

    def _draw(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        alive = self._dims[self._dims >= DEAD_BELOW]
        counts, edges = np.histogram(np.clip(alive, 0, 1), bins=BINS, range=(0.0, 1.0))
        top = max(1, int(counts.max(initial=0)))
        counts_ticks = sorted({0, top // 2, top})
        # The plot's inner columns and rows: the widget less the y ticks and the frame (columns),
        # the title, the frame and the x ticks (rows).
        columns = max(2, self.size.width - len(str(top)) - 2) if self.size.width else 60
        rows = max(2, self.size.height - 4) if self.size.height else 12
        lanes = label_lanes([value for _, value in self._fractions], columns)
        n_lanes = max(lanes, default=-1) + 1
        # Headroom so the bars stay below the labels' rows, where the plot is tall enough.
        ymax = top * 1.5
        if rows - 1 > n_lanes:
            ymax = max(ymax, top / (1 - n_lanes / (rows - 1)))
        plt.bar((edges[:-1] + edges[1:]) / 2, counts, color=BAR_COLOR, width=1.0, marker="sd")
        for (label, value), lane in zip(self._fractions, lanes, strict=True):
            plt.vertical_line(value, color=LINE_COLOR)
            # Lane k on the plot's k-th row from the top (plotext maps y = ymax·(1 − k/(rows−1))
            # onto it).
            plt.text(label, value, ymax * (1 - min(lane, rows - 1) / (rows - 1)), color=LINE_COLOR)
        plt.xlim(0.0, 1.0)
        plt.ylim(0, ymax)
        plt.xticks([0, 0.25, 0.5, 0.75, 1], ["0", "1/4", "1/2", "3/4", "1"])
        plt.yticks(counts_ticks, [str(c) for c in counts_ticks])
        dead = len(self._dims) - len(alive)
        plt.title(f"{len(alive)} features" + (f", {dead} dead not drawn" if dead else ""))
        self.refresh()


def label_lanes(values: Sequence[float], columns: int, width: int = 3) -> list[int]:
    """Each label's lane (0: the top row) for labels `width` characters wide centred on sorted
    `values` in [0, 1] across `columns` columns: the first lane whose last label ends at least
    a column before this one starts (3/8, 2/5 and 1/3 sit a column or two apart)."""
    ends: list[float] = []  # each lane's last label's centre column
    lanes = []
    for value in values:
        centre = value * (columns - 1)
        lane = next((k for k, end in enumerate(ends) if centre - end >= width + 1), len(ends))
        if lane == len(ends):
            ends.append(centre)
        else:
            ends[lane] = centre
        lanes.append(lane)
    return lanes
