"""The feature-geometry chart: dimensions per feature D* of each instance against 1/(1−S) = 1/p
on a log axis, every feature's D_i as a dot near its instance's x, and dotted reference lines at
the named fractions (1, 3/4, 2/3, 1/2, 2/5, 3/8) where trained features settle."""

from __future__ import annotations

import math

import numpy as np
from rich.style import Style

from engine.geometry import NAMED_FRACTIONS, NamedFraction
from toygeom_tui.braille import BrailleCanvas
from toygeom_tui.series import BLUISH_GREEN, GREY, SELECTED, SKY_BLUE, log_axis_ticks, rgb
from toygeom_tui.widgets.charts.braille_chart import Axes, BrailleChart

REFERENCE, FEATURES, DIMS_STAR, CHOSEN = 1, 2, 3, 4
REFERENCE_FRACTIONS = [
    f for f in NAMED_FRACTIONS if f.label in ("1", "3/4", "2/3", "1/2", "2/5", "3/8")
]
Y_TOP = 1.1  # D_i ≤ 1; D* above the top (early training, tiny ‖W‖²_F) is pinned to the edge


# Which label a text row shows when several fractions fall on it: the levels trained models
# sit at most (dedicated, antipodal, triangle, pentagon, tetrahedron), then the rarer ones. In
# value order a short chart labelled 1/3 where its features sat at 2/5 and 1/2.
LABEL_PRIORITY = ("1", "1/2", "2/3", "2/5", "3/4", "3/8", "1/3", "2/7")


def fraction_ticks(
    height: int, fractions: list[NamedFraction], width: int = 0
) -> tuple[list[float], list[str]]:
    """Ticks on a 0..Y_TOP axis at the named fractions that fit a chart `height` rows tall:
    each label needs its own text row, the most common level taking a shared one (see
    LABEL_PRIORITY). Labels are right-aligned to `width` characters."""
    rows = max(height - 4, 2)  # title, frame, x labels
    # The row plotext draws a value on (its get_matrix_data, rounding included: 3/8 sits at
    # exactly 7.5 rows on a 23-row plot, and a float a hair below took a row of its own).
    row_of = lambda value: math.floor(round(0.5 + (rows - 1) * value / Y_TOP, 8))  # noqa: E731
    rank = {label: i for i, label in enumerate(LABEL_PRIORITY)}
    taken: dict[int, tuple[float, str]] = {0: (0.0, "0")}
    for fraction in sorted(fractions, key=lambda f: rank.get(f.label, len(rank))):
        taken.setdefault(row_of(fraction.value), (fraction.value, fraction.label))
    kept = sorted(taken.values())
    return [v for v, _ in kept], [label.rjust(width) for _, label in kept]


class GeometryChart(BrailleChart):
    LAYER_STYLES = {
        REFERENCE: Style(color=rgb(GREY), dim=True),
        FEATURES: Style(color=rgb(SKY_BLUE)),
        DIMS_STAR: Style(color=rgb(BLUISH_GREEN), bold=True),
        CHOSEN: Style(color=rgb(SELECTED), bold=True),
    }
    EMPTY_TITLE = "feature geometry: no measurement yet"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._x = np.zeros(0)  # log10(1/p) per instance
        self._dims_star = np.zeros(0)
        self._dims: np.ndarray | None = None
        self._features_x: np.ndarray | None = None
        self.selected = 0

    def show_geometry(
        self, inverse_p: np.ndarray, dims_star: np.ndarray, dims: np.ndarray | None
    ) -> None:
        """inverse_p (inst,) = 1/p, dims_star (inst,) = D*, dims (inst, feats) = D_i or None."""
        self._x = np.log10(np.clip(inverse_p, 1e-12, None))
        self._dims_star = np.where(np.isfinite(dims_star), np.minimum(dims_star, Y_TOP), np.nan)
        self._dims = dims
        self._features_x = None
        self.data_changed()

    def select(self, selected: int) -> None:
        """Mark instance `selected`: its x, its features and its D*."""
        if selected != self.selected:
            self.selected = selected
            self.selection_changed()

    def axes(self) -> Axes | None:
        if self._x.size == 0:
            return None
        low, high = float(self._x.min()), float(self._x.max())
        pad = max((high - low) * 0.04, 0.05)
        x_range = (low - pad, high + pad)
        ticks = log_axis_ticks(*x_range)
        if len(ticks[0]) < 2:
            ticks = ([low, high], [f"{10**low:.3g}", f"{10**high:.3g}"])
        return Axes(
            title="D* (line) and D_i (dots) vs 1/(1−S)",
            x_range=x_range,
            y_range=(0.0, Y_TOP),
            x_ticks=ticks,
            y_ticks=self._fraction_ticks(),
        )

    def _fraction_ticks(self) -> tuple[list[float], list[str]]:
        return fraction_ticks(self.size.height, REFERENCE_FRACTIONS)

    def draw_data(self, canvas: BrailleCanvas) -> None:
        for fraction in REFERENCE_FRACTIONS:
            canvas.hline(fraction.value, REFERENCE, every=3)
        if self._dims is not None:
            canvas.points(self._feature_x().ravel(), self._dims.ravel(), FEATURES)
        order = np.argsort(self._x)
        canvas.line(self._x[order], self._dims_star[order], DIMS_STAR)

    def draw_selection(self, canvas: BrailleCanvas) -> None:
        # Over the data layer, in the order that keeps the selected features under the D* line
        # and the selection's x line only where nothing else is.
        selected = min(self.selected, self._x.size - 1)
        canvas.vline(float(self._x[selected]), REFERENCE, every=3)
        if self._dims is not None:
            canvas.points(self._feature_x()[selected], self._dims[selected], CHOSEN)
            order = np.argsort(self._x)
            canvas.line(self._x[order], self._dims_star[order], DIMS_STAR)
        canvas.points(
            self._x[selected : selected + 1], self._dims_star[selected : selected + 1], CHOSEN
        )

    def _feature_x(self) -> np.ndarray:
        """(inst, feats) x of every feature's dot: each instance's features spread over ±30% of
        the gap to its neighbour, the same offset for the same feature every frame (no flicker)."""
        if self._features_x is None:
            n_inst, n_feats = self._dims.shape
            gap = float(np.min(np.diff(np.sort(self._x)))) if n_inst > 1 else 0.2
            gap = gap if gap > 0 else 0.2
            jitter = (np.arange(n_feats) / max(n_feats - 1, 1) - 0.5) * 0.6 * gap
            self._features_x = self._x[:, None] + jitter[None, :]
        return self._features_x
