"""The dynamics screen, its jump list, and time travel through weight snapshots (Pilot)."""

from __future__ import annotations

import functools

import pytest
from sessions_v1 import make_format_1
from test_app import notifications, status_text, wait_for
from trajectories import trainer_with_a_known_jump

from engine.config import RunConfig
from engine.geometry import analyze
from engine.session import load_session, save_session
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.screens.dynamics import DynamicsScreen
from toygeom_tui.screens.instance_detail import InstanceDetailScreen
from toygeom_tui.widgets.dynamics.dims_history_chart import DimsHistoryChart
from toygeom_tui.widgets.dynamics.marked_loss_chart import MarkedLossChart

pytestmark = pytest.mark.timeout(600)

known_jump = functools.cache(trainer_with_a_known_jump)  # never changed: autostart=False


async def test_the_dynamics_screen_lists_the_jumps_and_draws_every_learned_feature() -> None:
    app = ToygeomApp(known_jump(), autostart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: "5 jumps" in status_text(app))
        await pilot.press("D")
        assert isinstance(app.screen, DynamicsScreen)
        screen = app.screen
        rows = [screen.query_one("#jump-list").get_row_at(i) for i in range(5)]
        assert [r[:3] for r in rows] == [
            ["1,000", "0", "1/2 → 2/5"], ["1,000", "1", "1/2 → 2/5"], ["1,000", "2", "1/2 → 2/5"],
            ["1,000", "3", "1/2 → 2/5"], ["1,000", "4", "0 → 2/5"],
        ]  # fmt: skip
        chart = screen.query_one(DimsHistoryChart)
        assert chart.render_text().plain.count("D_i of 5 learned features") == 1
        await pilot.press("escape")
        assert app.screen is app.dashboard


async def test_enter_on_a_jump_selects_its_feature_and_travels_to_its_step() -> None:
    trainer = known_jump()
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("D")
        screen = app.screen
        await pilot.press("j", "j", "j", "j", "enter")
        after = min(s for s in trainer.snapshots.steps if s >= 1000)
        assert screen.feature == 4 and app.view_step == after
        assert screen.query_one(DimsHistoryChart).selected == 4
        header = str(screen.query_one("#dynamics-header").render())
        assert f"at step {after:,} (live: 2,000)" in header
        await pilot.press("escape")
        assert f"at step {after:,} (live: 2,000)" in status_text(app), "the dashboard follows"


async def test_time_travel_shows_exactly_the_geometry_of_the_recorded_step(
    small_config: RunConfig,
) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run()
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("less_than_sign", "less_than_sign", "less_than_sign")
        recorded = [s for s in trainer.snapshots.steps if s < trainer.step]
        step = recorded[-3]
        assert app.view_step == step
        assert f"at step {step:,} (live: 200)" in status_text(app)
        again = Trainer(small_config, compiled=False)
        again.run(until=step)
        await pilot.press("j", "enter")
        detail = app.screen
        assert isinstance(detail, InstanceDetailScreen)
        await wait_for(pilot, lambda: detail.shown == (1, step) and detail.geometry is not None)
        assert detail.geometry == analyze(again.W[1:2])[0], "the very geometry trained to s"
        await pilot.press("greater_than_sign")
        await wait_for(pilot, lambda: detail.shown == (1, recorded[-2]))
        await pilot.press("l")
        assert app.view_step is None
        await wait_for(pilot, lambda: detail.shown == (1, 200))
        assert detail.geometry == analyze(trainer.W[1:2])[0]
        assert "live:" not in str(detail.query_one("#detail-header").render())


async def test_later_than_the_last_snapshot_is_live(small_config: RunConfig) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=100)
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("less_than_sign")
        assert app.view_step == max(s for s in trainer.snapshots.steps if s < 100)
        await pilot.press("greater_than_sign")
        assert app.view_step is None and "live:" not in status_text(app)


async def test_a_format_1_session_says_it_has_no_history(small_config, tmp_path) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "old")
    make_format_1(tmp_path / "old")
    loaded = load_session(tmp_path / "old", compiled=False)
    app = ToygeomApp(loaded, autostart=False, session_dir=tmp_path / "old")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("less_than_sign")
        assert app.view_step is None
        assert any("no weight snapshots before step 60" in m for m in notifications(app))


async def test_dynamics_opens_from_the_detail_on_its_feature() -> None:
    app = ToygeomApp(known_jump(), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter")
        detail = app.screen
        await wait_for(pilot, lambda: detail.geometry is not None)
        await pilot.press("j", "j", "D")
        assert isinstance(app.screen, DynamicsScreen) and app.screen.feature == 2


async def test_the_loss_chart_of_a_finished_run_is_drawn_for_its_width() -> None:
    """The chart decimates its history when it knows its width, and again on each resize: a
    finished run's history never changes, so nothing else would redraw it."""
    trainer = known_jump()
    records = len(trainer.history.metrics_arrays()[0])
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(80, 30)) as pilot:
        await pilot.press("D")
        await pilot.pause()
        chart = app.screen.query_one(MarkedLossChart)
        chart.render_text()
        assert 2 * chart.size.width < records
        assert len(chart._steps) == 2 * chart.size.width  # two points per column
        await pilot.resize_terminal(140, 30)
        await pilot.pause()
        chart.render_text()
        assert len(chart._steps) == min(records, 2 * chart.size.width) > 2 * 80


async def test_an_empty_jump_list_says_why_and_a_full_one_does_not() -> None:
    trainer = Trainer(RunConfig(name="calm", n_features=5, d_hidden=2, n_inst=2, batch_size=64,
                                steps=200, device="cpu"), compiled=False)  # fmt: skip
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("D")
        note = app.screen.query_one("#no-jumps")
        assert note.display and note.region.area > 0
        assert "No jumps at instance 0 yet: none of its features" in str(note.render())
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert "No jumps at instance 1 yet" in str(note.render())
    app = ToygeomApp(known_jump(), autostart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: "5 jumps" in status_text(app))
        await pilot.press("D")
        assert not app.screen.query_one("#no-jumps").display
