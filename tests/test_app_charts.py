"""The dashboard's charts redraw only what changed: a selection change keeps the data layer
(every series faint) and draws the selection over it, and only repainted rows reach the screen.
These tests pin down that the shortcut draws exactly what a full redraw draws."""

from __future__ import annotations

import numpy as np
import pytest
from rich.style import Style

from engine.config import RunConfig
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.braille import BrailleCanvas, row_segments, row_text
from toygeom_tui.widgets.charts.instance_series_chart import FAINT
from toygeom_tui.widgets.dashboard.geometry_chart import (
    CHOSEN,
    DIMS_STAR,
    FEATURES,
    REFERENCE,
    REFERENCE_FRACTIONS,
    GeometryChart,
)
from toygeom_tui.widgets.dashboard.loss_chart import LossChart
from toygeom_tui.widgets.dynamics.dims_history_chart import DimsHistoryChart

pytestmark = pytest.mark.timeout(60)


def test_the_selected_series_hides_its_own_faint_line() -> None:
    """Drawing every series faint and the selected one thick over it gives the same dots as
    drawing the others faint and the selected one thick (which the chart did before caching)."""
    rng = np.random.default_rng(0)
    steps = np.arange(60.0)
    values = rng.normal(size=(60, 5)).cumsum(axis=0)
    values[10, 2] = np.nan  # a gap in one series
    chart = LossChart()
    chart._steps, chart._values = steps, values
    box = ((0.0, 59.0), (float(np.nanmin(values)), float(np.nanmax(values))))
    for selected in range(5):
        chart.selected = selected
        cached = BrailleCanvas(30, 8, *box)
        chart.draw_data(cached)
        chart.draw_selection(cached)
        direct = BrailleCanvas(30, 8, *box)
        others = np.delete(values, selected, axis=1)
        gap = np.full((1, others.shape[1]), np.nan)
        direct.line(
            np.tile(np.append(steps, np.nan), others.shape[1]),
            np.vstack([others, gap]).ravel(order="F"),
            FAINT,
        )
        direct.line(steps, values[:, selected], 2, thick=True)
        assert np.array_equal(cached.dots, direct.dots), selected


def test_a_dotted_row_is_a_few_segments_and_every_dot_keeps_its_layers_style() -> None:
    """Blank cells join the run before them (they show only the shared background), so a dotted
    reference line is a handful of segments, not one per dot; drawn cells keep their style."""
    canvas = BrailleCanvas(40, 1, (0.0, 1.0), (0.0, 1.0))
    canvas.hline(0.5, 1, every=3)  # dots in two cells of every three
    canvas.points(np.array([0.5]), np.array([0.5]), 2)
    codes, layers = canvas.cells()
    background = Style(bgcolor="black")
    styles = {
        0: background,
        1: background + Style(color="grey50"),
        2: background + Style(bold=True),
    }
    text = row_text(codes[0])
    segments = row_segments(text, codes[0], layers[0], styles)
    assert "".join(segment.text for segment in segments) == text
    cell_styles = [segment.style for segment in segments for _ in segment.text]
    for style, code, layer in zip(cell_styles, codes[0], layers[0], strict=True):
        assert style.bgcolor == background.bgcolor
        if code:
            assert style == styles[int(layer)]
    assert {int(layer) for layer in layers[0]} == {0, 1, 2}
    assert len(segments) <= 4  # grey, bold, grey (and blanks at an edge): not ~27


def test_the_geometry_selection_layer_keeps_the_drawing_order() -> None:
    """Data layer then selection layer = reference lines, the selection's x line where empty,
    every feature, the selected features, the D* line, the selected D* (the original order)."""
    rng = np.random.default_rng(1)
    n_inst, n_feats = 6, 9
    inverse_p = np.logspace(0, 2, n_inst)
    dims = rng.uniform(0, 1, size=(n_inst, n_feats))
    dims_star = rng.uniform(0.2, 1.0, size=n_inst)
    chart = GeometryChart()
    chart._x = np.log10(inverse_p)
    chart._dims_star, chart._dims, chart._features_x = dims_star, dims, None
    box = ((-0.1, 2.1), (0.0, 1.1))
    for selected in range(n_inst):
        chart.selected = selected
        cached = BrailleCanvas(40, 12, *box)
        chart.draw_data(cached)
        chart.draw_selection(cached)
        direct = BrailleCanvas(40, 12, *box)
        for fraction in REFERENCE_FRACTIONS:
            direct.hline(fraction.value, REFERENCE, every=3)
        direct.vline(float(chart._x[selected]), REFERENCE, every=3)
        x = chart._feature_x()
        direct.points(x.ravel(), dims.ravel(), FEATURES)
        direct.points(x[selected], dims[selected], CHOSEN)
        order = np.argsort(chart._x)
        direct.line(chart._x[order], dims_star[order], DIMS_STAR)
        direct.points(chart._x[selected : selected + 1], dims_star[selected : selected + 1], CHOSEN)
        assert np.array_equal(cached.dots, direct.dots), selected


def chart_texts(app: ToygeomApp) -> list[tuple[str, list]]:
    charts = (app.dashboard.loss_chart, app.dashboard.frobenius_chart, app.dashboard.geometry_chart)
    return [(text.plain, text.spans) for text in (chart.render_text() for chart in charts)]


async def test_keys_and_new_records_draw_what_a_fresh_dashboard_draws(
    small_config: RunConfig,
) -> None:
    """Selection changes (next frame) and new history (refresh tick) repaint rows of the
    charts in place; the result is what a dashboard drawing everything from scratch shows."""
    # 200 steps, 180 of them trained below: the history spans most of the x axis.
    trainer = Trainer(small_config, compiled=False, dims_every=10)
    trainer.run(until=60)
    size = (160, 48)
    app = ToygeomApp(trainer, autostart=False, autosave_seconds=0)
    async with app.run_test(size=size) as pilot:
        dashboard = app.dashboard
        charts = (dashboard.loss_chart, dashboard.frobenius_chart, dashboard.geometry_chart)
        await pilot.pause()
        for key, selected in (("j", 1), ("j", 2), ("G", 3), ("k", 2)):
            trainer.run(until=trainer.step + 30)  # new records and D_i since the last frame
            dashboard.refresh_charts()  # what the refresh tick does
            await pilot.press(key)
            await pilot.pause()
            for chart in charts:  # the key is on screen after one frame
                assert chart.selected == selected
                assert chart.shown_version == chart.version, type(chart).__name__
        drawn = chart_texts(app)
    fresh = ToygeomApp(trainer, autostart=False, autosave_seconds=0)
    async with fresh.run_test(size=size) as pilot:
        await pilot.press("j", "j")
        await pilot.pause()
        assert chart_texts(fresh) == drawn


async def test_a_run_with_no_steps_says_so_rather_than_waiting(small_config: RunConfig) -> None:
    """A session saved at step 0 (`train --steps 0`) has no records and never will: its charts
    say there are none yet, not that data is on its way."""
    trainer = Trainer(small_config.replace(steps=0), compiled=False)
    app = ToygeomApp(trainer, autostart=False, autosave_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        dashboard = app.dashboard
        for chart in (dashboard.loss_chart, dashboard.frobenius_chart):
            text = chart.render_text().plain
            assert "no steps recorded yet" in text and "waiting" not in text
        await pilot.press("D")  # the dynamics screen: no D_i history either
        await pilot.pause()
        text = app.screen.query_one(DimsHistoryChart).render_text().plain
        assert "D_i history: no measurement yet" in text and "waiting" not in text
