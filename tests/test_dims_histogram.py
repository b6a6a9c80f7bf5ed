"""The D_i histogram as drawn: every named fraction's label readable at the sizes it is shown."""

from __future__ import annotations

import re

import numpy as np
import pytest
from textual.app import App, ComposeResult

from engine.geometry import NAMED_FRACTIONS
from toygeom_tui.widgets.detail.dims_histogram import DimsHistogram, label_lanes

FRACTIONS = [(f.label, f.value) for f in NAMED_FRACTIONS]
CROWDED = [f.label for f in NAMED_FRACTIONS if "/" in f.label]  # 1/2 … 2/7: 3/8, 2/5, 1/3 crowd


class Host(App):
    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.width, self.height = width, height

    def compose(self) -> ComposeResult:
        yield DimsHistogram()

    def on_mount(self) -> None:
        self.query_one(DimsHistogram).styles.width = self.width
        self.query_one(DimsHistogram).styles.height = self.height


def drawn_lines(histogram: DimsHistogram) -> list[str]:
    return histogram.render().plain.splitlines()


@pytest.mark.parametrize("size", [(52, 9), (52, 14), (40, 10), (90, 16)])
@pytest.mark.parametrize("dims", [[1.0, 1.0, 0.0, 0.0, 0.0], [0.4] * 5 + [0.5] * 30 + [1.0] * 3])
async def test_every_named_fractions_label_is_drawn_whole(size, dims) -> None:
    app = Host(*size)
    async with app.run_test(size=(120, 40)) as pilot:
        histogram = app.query_one(DimsHistogram)
        histogram.show(np.array(dims), FRACTIONS)
        await pilot.pause()
        assert histogram.size == size
        text = "\n".join(drawn_lines(histogram))
        for label in CROWDED:
            assert re.search(rf"(?<![\d/]){re.escape(label)}(?![\d/])", text), (label, text)


async def test_the_bars_stay_below_the_labels_where_the_plot_is_tall_enough() -> None:
    app = Host(52, 14)
    async with app.run_test(size=(120, 40)) as pilot:
        histogram = app.query_one(DimsHistogram)
        histogram.show(np.array([0.4] * 7 + [1.0]), FRACTIONS)
        await pilot.pause()
        lines = drawn_lines(histogram)
        lines = lines[: next(i for i, line in enumerate(lines) if "└" in line)]  # not the x ticks
        label_rows = [i for i, line in enumerate(lines) if any(lab in line for lab in CROWDED)]
        bar_rows = [i for i, line in enumerate(lines) if "█" in line]
        assert label_rows and bar_rows
        assert max(label_rows) < min(bar_rows)


def test_labels_a_column_or_two_apart_take_different_lanes() -> None:
    values = sorted(value for _, value in FRACTIONS if value > 0)
    lanes = label_lanes(values, columns=49)
    by_label = dict(zip(sorted(CROWDED + ["1"], key=dict(FRACTIONS).get), lanes, strict=True))
    assert len({by_label["2/7"], by_label["1/3"], by_label["2/5"]}) == 3
    assert by_label["1/2"] == by_label["3/4"] == 0  # far from every other: the top lane
    assert label_lanes(values, columns=1000) == [0] * len(values)  # wide enough for one lane
