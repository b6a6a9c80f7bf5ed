"""The WᵀW heatmap's legend: its note on pooled cells is whole at every width, never cut off."""

from __future__ import annotations

import numpy as np
import pytest
from textual.app import App, ComposeResult

from toygeom_tui.widgets.detail.gram_heatmap import GramHeatmap

NOTES = ("1 cell: 5×5 features, max |·|", "cell 5×5, max |·|", "cell 5×5")


class Host(App):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width

    def compose(self) -> ComposeResult:
        yield GramHeatmap()

    def on_mount(self) -> None:
        heatmap = self.query_one(GramHeatmap)
        heatmap.styles.width, heatmap.styles.height = self.width, 12
        W = np.random.default_rng(0).normal(size=(20, 100)) / np.sqrt(20)
        heatmap.show(W)  # 100 features in 20 pixel rows: 5×5 features a cell


@pytest.mark.parametrize("width", [70, 60, 52, 44, 36, 30])
async def test_the_pooled_legend_fits_its_width(width: int) -> None:
    app = Host(width)
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        heatmap = app.query_one(GramHeatmap)
        assert heatmap.size.width == width
        legend = heatmap.render_line(len(heatmap._cells) + 1).text.rstrip()
        assert legend.startswith("  −1 ") and " +1" in legend
        note = legend.split(" +1", 1)[1].strip()
        assert note in ("", *NOTES) and len(legend) <= width
        if width >= 50:
            assert note == NOTES[0] if width >= 60 else note in NOTES[1:], legend
