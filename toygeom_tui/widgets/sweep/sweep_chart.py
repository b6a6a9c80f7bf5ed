"""SweepChart: one figure of a sweep against one grid key, a line per value of another key.

Numeric grid values go on a linear axis, or a log one when they are all positive and span
a decade or more (learning rates, sparsities); other values (strings, tables) sit at evenly spaced
positions labelled with their values. Each line keeps one Okabe–Ito colour and one marker.
"""

from __future__ import annotations

import math
from typing import Any

from textual_plotext import PlotextPlot

from engine.sweep import value_label
from toygeom_tui.series import (
    BLUISH_GREEN,
    GREY,
    ORANGE,
    REDDISH_PURPLE,
    SKY_BLUE,
    VERMILLION,
    log_axis_ticks,
    nice_ticks,
)

LINE_STYLES = (
    (ORANGE, "o"),
    (SKY_BLUE, "x"),
    (BLUISH_GREEN, "+"),
    (VERMILLION, "*"),
    (REDDISH_PURPLE, "#"),
    (GREY, "@"),
)


def _numeric(values: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


class SweepChart(PlotextPlot):
    def show(
        self,
        lines: dict[Any, list[tuple[Any, float]]],
        *,
        figure: str,
        x_key: str,
        line_key: str | None,
    ) -> None:
        """`lines` as `engine.sweep.figure_lines` makes them; labels name the figure and keys."""
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        xs_all = list(dict.fromkeys(x for points in lines.values() for x, _ in points))
        if not xs_all:
            plt.title(f"{figure}: no finished runs yet")
            self.refresh()
            return
        numeric = _numeric(xs_all)
        log = numeric and min(xs_all) > 0 and max(xs_all) / min(xs_all) >= 10
        if numeric:
            order = sorted(xs_all)
            position = {x: (math.log10(x) if log else float(x)) for x in order}
        else:
            order = xs_all
            position = {x: float(i) for i, x in enumerate(order)}
        ys = [y for points in lines.values() for _, y in points if math.isfinite(y)]
        for index, (line, points) in enumerate(lines.items()):
            colour, marker = LINE_STYLES[index % len(LINE_STYLES)]
            points = sorted(points, key=lambda p: position[p[0]])
            x = [position[p[0]] for p in points]
            y = [p[1] for p in points]
            label = None if line_key is None else f"{line_key}={value_label(line)}"
            if len(x) > 1:
                plt.plot(x, y, color=colour, marker="braille")
            plt.scatter(x, y, color=colour, marker=marker, label=label)
        low, high = min(position.values()), max(position.values())
        # 5% of the span a side; of the value itself for one x (a fixed pad would squeeze lr
        # 0.001 and 0.003 into one column).
        pad = (high - low) * 0.05 or abs(low) * 0.05 or 0.05
        plt.xlim(low - pad, high + pad)
        if log:
            ticks = log_axis_ticks(low - pad, high + pad)
            if len(ticks[0]) < 2:
                ticks = ([position[x] for x in order], [value_label(x) for x in order])
            plt.xticks(*ticks)
        elif numeric and len(order) > 6:
            plt.xticks(*nice_ticks(low, high, 5))
        else:
            plt.xticks([position[x] for x in order], [value_label(x) for x in order])
        if ys:
            bottom, top = min(ys), max(ys)
            room = max((top - bottom) * 0.3, abs(top) * 0.05, 1e-9)  # legend room at the top
            plt.ylim(bottom - room * 0.2, top + room)
            plt.yticks(*nice_ticks(bottom, top, 4))
        plt.xlabel(f"{x_key}{' (log)' if log else ''}")
        plt.title(figure + ("" if line_key is None else f", a line per {line_key}"))
        self.refresh()
