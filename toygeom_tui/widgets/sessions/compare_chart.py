"""Charts that overlay two sessions: their D* curves and their D_i distributions.

Each session keeps one Okabe–Ito colour and one marker in both charts (and in the compare
table), so they stay apart without colour too. The data are a few dozen points, so plain
plotext draws them; the log axis is made by hand (plotext's own log scale breaks on redraw).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from textual_plotext import PlotextPlot

from toygeom_tui.series import ORANGE, SKY_BLUE, log_axis_ticks, nice_ticks, safe_log10

# (colour, marker) of the first and the second session.
SERIES_STYLES = ((ORANGE, "o"), (SKY_BLUE, "x"))
Y_TOP = 1.1  # trained D* ≤ 1; early in training it can be far larger
Y_CAP = 10.0  # a D* above this is pinned to the top edge
LEGEND_ROOM = 1.3  # headroom over the data for plotext's legend, drawn top left
BINS = 20
FRACTION_TICKS = ([0.0, 0.25, 0.5, 0.75, 1.0], ["0", "1/4", "1/2", "3/4", "1"])


@dataclass(frozen=True)
class DimsStarSeries:
    """One session's D* curve: inverse_p (inst,) = 1/p, dims_star (inst,) = D*."""

    label: str
    inverse_p: np.ndarray
    dims_star: np.ndarray


@dataclass(frozen=True)
class DimsSpreadSeries:
    """One session's D_i of its represented features, all instances pooled: (n,)."""

    label: str
    dims: np.ndarray


class DimsStarCompareChart(PlotextPlot):
    """D* per instance against 1/p on a log10 axis, one line and marker per session."""

    def show(self, series: Sequence[DimsStarSeries | None]) -> None:
        """`series` in session order; None for a session that could not be loaded."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs, top = [], Y_TOP
        for one, (colour, marker) in zip(series, SERIES_STYLES, strict=False):
            if one is None:
                continue
            x = safe_log10(np.asarray(one.inverse_p, dtype=float))
            y = np.minimum(np.asarray(one.dims_star, dtype=float), Y_CAP)
            keep = np.isfinite(x) & np.isfinite(y)
            order = np.argsort(x[keep])
            x, y = x[keep][order], y[keep][order]
            if x.size == 0:
                continue
            xs.append(x)
            top = max(top, float(y.max()))
            if x.size > 1:
                plt.plot(x.tolist(), y.tolist(), color=colour, marker="braille")
            plt.scatter(x.tolist(), y.tolist(), color=colour, marker=marker, label=one.label)
        if not xs:
            plt.title("D*: nothing to draw")
            self.refresh()
            return
        low, high = float(min(x.min() for x in xs)), float(max(x.max() for x in xs))
        pad = max((high - low) * 0.05, 0.05)
        low, high = low - pad, high + pad
        ticks = log_axis_ticks(low, high)
        if len(ticks[0]) < 2:
            ticks = ([low, high], [f"{10**low:.3g}", f"{10**high:.3g}"])
        plt.xlim(low, high)
        plt.xticks(*ticks)
        if top <= Y_TOP:
            plt.ylim(0.0, Y_TOP * LEGEND_ROOM)
            plt.yticks(*FRACTION_TICKS)
        else:
            plt.ylim(0.0, top * LEGEND_ROOM)
            plt.yticks(*nice_ticks(0.0, top, 5))
        plt.xlabel("1/p (log)")
        plt.title("D* = d_hidden/‖W‖²_F per instance")
        self.refresh()


class DimsSpreadCompareChart(PlotextPlot):
    """Share of represented features per D_i bin (BINS bins over [0, 1]), one line per session.

    Shares, not counts, so sessions with different numbers of features compare fairly.
    """

    def show(self, series: Sequence[DimsSpreadSeries | None]) -> None:
        """`series` in session order; None for a session that could not be loaded."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        edges = np.linspace(0.0, 1.0, BINS + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        top = 0.0
        for one, (colour, marker) in zip(series, SERIES_STYLES, strict=False):
            if one is None:
                continue
            dims = np.asarray(one.dims, dtype=float)
            dims = np.clip(dims[np.isfinite(dims)], 0.0, 1.0)
            label = f"{one.label} n={dims.size}"
            if dims.size == 0:
                continue
            counts, _ = np.histogram(dims, bins=edges)
            share = counts / dims.size
            top = max(top, float(share.max()))
            plt.plot(centres.tolist(), share.tolist(), color=colour, marker="braille")
            plt.scatter(centres.tolist(), share.tolist(), color=colour, marker=marker, label=label)
        if top == 0.0:
            plt.title("D_i: no represented features")
            self.refresh()
            return
        plt.xlim(0.0, 1.0)
        plt.ylim(0.0, top * LEGEND_ROOM)
        plt.xticks(*FRACTION_TICKS)
        ticks, _ = nice_ticks(0.0, top, 4)
        plt.yticks(ticks, [f"{t:.0%}" for t in ticks])
        plt.xlabel("D_i")
        plt.title("share of represented features")
        self.refresh()
