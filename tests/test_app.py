"""The app driven by Textual's Pilot against a real Trainer on a small config.

Trainers here use the eager step (compiled=False): compiling costs seconds and changes nothing
the app shows.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from textual.app import App

from engine.config import RunConfig
from engine.session import load_session, save_session
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.screens.help import HelpScreen
from toygeom_tui.screens.quit_confirm import QuitConfirmScreen
from toygeom_tui.screens.sessions import SessionBrowserScreen
from toygeom_tui.widgets.dashboard.frobenius_chart import FrobeniusChart
from toygeom_tui.widgets.dashboard.geometry_chart import GeometryChart
from toygeom_tui.widgets.dashboard.instance_list import InstanceList
from toygeom_tui.widgets.dashboard.loss_chart import LossChart
from toygeom_tui.widgets.dashboard.status_bar import StatusBar
from toygeom_tui.widgets.dashboard.too_small import TooSmall

pytestmark = pytest.mark.timeout(60)


def make_trainer(config: RunConfig, trained_steps: int = 0) -> Trainer:
    trainer = Trainer(config, compiled=False)
    if trained_steps:
        trainer.run(until=trained_steps)
    return trainer


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Let the app run until `condition()` holds (fails the test after `timeout` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {condition.__doc__ or condition}")
        await pilot.pause(0.02)


def status_text(app: ToygeomApp) -> str:
    return app.dashboard.query_one(StatusBar).plain


def notifications(app: ToygeomApp) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's default sessions folder is relative: runs that finish autosave into tmp."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def long_config(small_config: RunConfig) -> RunConfig:
    """The small config with steps enough that it never finishes inside a test."""
    return small_config.replace(steps=1_000_000)


async def test_keys_move_the_selected_instance(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config, 20), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        assert "instance 0 of 0–3" in status_text(app)
        await pilot.press("j")
        assert app.dashboard.selected == 1
        assert "instance 1 of 0–3" in status_text(app)
        await pilot.press("down", "down")
        assert app.dashboard.selected == 3
        await pilot.press("j")  # stays on the last
        assert app.dashboard.selected == 3
        await pilot.press("k", "up")
        assert app.dashboard.selected == 1
        await pilot.press("G")
        assert app.dashboard.selected == 3
        await wait_for(pilot, lambda: app.dashboard.query_one(LossChart).selected == 3)
        await pilot.press("g")
        assert app.dashboard.selected == 0
        chart = app.dashboard.query_one(LossChart)
        await wait_for(pilot, lambda: chart.selected == 0)  # charts follow a frame later


async def test_pause_stops_the_step_counter_and_resume_restarts_it(long_config: RunConfig) -> None:
    trainer = make_trainer(long_config)
    app = ToygeomApp(trainer)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: trainer.step > 5)
        await pilot.press("p")
        await wait_for(pilot, lambda: trainer.state == "paused")
        stopped_at = trainer.step
        await pilot.pause(0.4)
        assert trainer.step == stopped_at
        await wait_for(pilot, lambda: "paused" in status_text(app))
        await pilot.press("p")
        await wait_for(pilot, lambda: trainer.step > stopped_at + 5)
        assert trainer.state == "training"


async def test_space_runs_exactly_one_step_while_paused(small_config: RunConfig) -> None:
    trainer = make_trainer(small_config, 20)
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.step == 21)
        await wait_for(pilot, lambda: "step 21/200" in status_text(app))
        await pilot.press("space")
        await wait_for(pilot, lambda: trainer.step == 22)
        await pilot.pause(0.3)
        assert trainer.step == 22
        assert trainer.state == "paused"


async def test_space_while_training_asks_to_pause_first(long_config: RunConfig) -> None:
    trainer = make_trainer(long_config)
    app = ToygeomApp(trainer)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: trainer.state == "training")
        await pilot.press("space")
        await wait_for(pilot, lambda: any("pause first" in m for m in notifications(app)))
        assert trainer.state == "training"


async def test_layout_adapts_to_width_and_says_when_too_small(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config, 40), autostart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        dashboard = app.dashboard
        await pilot.pause()
        assert dashboard.query_one(InstanceList).display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not dashboard.query_one(InstanceList).display
        assert not dashboard.query_one(TooSmall).display
        assert dashboard.query_one(LossChart).size.width >= 30
        await pilot.resize_terminal(50, 15)
        await pilot.pause()
        too_small = dashboard.query_one(TooSmall)
        assert too_small.display
        assert "need ≥ 60×18, have 50×15" in str(too_small.render())
        assert not dashboard.query_one("#dashboard-body").display
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert not too_small.display
        assert "step 40/200" in status_text(app)


async def test_the_too_small_message_stays_clear_of_toasts(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config, 40), autostart=False)
    async with app.run_test(size=(50, 15), notifications=True) as pilot:
        for title in ("Saved", "Training done", "Saved"):  # toasts stack up from the bottom right
            app.notify("step 40 saved to sessions/small-20261203-120000", title=title)
        await pilot.pause()
        assert len(app.screen.query("Toast")) == 3
        shown = html.unescape(app.export_screenshot()).replace("\xa0", " ")
        assert "terminal too small" in shown and "need ≥ 60×18, have 50×15" in shown


async def test_charts_draw_the_history(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config, 60), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:

        def drawn(chart: type) -> bool:
            text = app.dashboard.query_one(chart).render_text().plain
            return "waiting" not in text and any("\u2800" < ch <= "\u28ff" for ch in text)

        for chart in (LossChart, FrobeniusChart, GeometryChart):
            await wait_for(pilot, lambda chart=chart: drawn(chart))  # once the chart timer fired
        loss_text = app.dashboard.query_one(LossChart).render_text().plain
        assert "e-" in loss_text  # decade labels such as 1e-1


async def test_history_views_redraw_at_most_every_history_seconds_while_training(
    long_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the run trains, new logs reach the charts and the instance list's numbers once per
    HISTORY_SECONDS (the status line every tick); a selection change is shown at once."""
    from toygeom_tui.screens import dashboard as dashboard_module

    # Startup's resize events (the app's, then the screen's own after layout) each redraw
    # everything once, after a refresh (the charts decimate for their width); one may land in a
    # gated stretch, so a stretch counts only if no such full redraw happened in it.
    full_redraws = []
    redraw_all = dashboard_module.DashboardScreen.redraw_all
    monkeypatch.setattr(dashboard_module.DashboardScreen, "redraw_all",
                        lambda self: (full_redraws.append(1), redraw_all(self)))  # fmt: skip
    trainer = make_trainer(long_config)
    app = ToygeomApp(trainer, autosave_seconds=0)
    async with app.run_test(size=(160, 48)) as pilot:
        dashboard = app.dashboard
        await wait_for(pilot, lambda: dashboard._drawn_version > 0)
        monkeypatch.setattr(dashboard_module, "HISTORY_SECONDS", 60.0)
        for _ in range(5):
            redraws = len(full_redraws)
            dashboard.refresh_charts(force=True)
            drawn, rows = dashboard._drawn_version, list(dashboard.instance_list._rows)
            status = status_text(app)
            await wait_for(pilot, lambda d=drawn: trainer.history.version > d + 3)
            await wait_for(pilot, lambda s=status: status_text(app) != s)  # the step moves on
            if len(full_redraws) == redraws:
                break
        assert len(full_redraws) == redraws, "a full redraw in every stretch"
        assert dashboard._drawn_version == drawn  # the charts wait their turn
        assert dashboard.instance_list._rows == rows  # and so do the list's numbers
        await pilot.press("j")
        assert dashboard.instance_list.selected == 1 and dashboard.loss_chart.selected == 1
        monkeypatch.setattr(dashboard_module, "HISTORY_SECONDS", 0.0)
        await wait_for(pilot, lambda: dashboard._drawn_version > drawn)
        await wait_for(pilot, lambda: dashboard.instance_list._rows != rows)


async def test_jumps_are_sought_at_most_every_jumps_seconds_and_once_the_run_ends(
    small_config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from toygeom_tui.screens import dashboard as dashboard_module

    monkeypatch.setattr(dashboard_module, "JUMPS_SECONDS", 1e9)
    trainer = Trainer(small_config.replace(steps=2_000), compiled=False, dims_every=10)
    app = ToygeomApp(trainer, autosave_seconds=0)
    async with app.run_test(size=(160, 48)) as pilot:
        dashboard = app.dashboard
        await wait_for(pilot, lambda: dashboard._dims_step > 0)
        first = dashboard._dims_step  # the first search; the gate holds every later one back
        await wait_for(pilot, lambda: trainer.history.latest_dims()[0] > first + 100)
        assert dashboard._dims_step == first
        await wait_for(pilot, lambda: trainer.state == "done")
        await wait_for(pilot, lambda: dashboard._dims_step == trainer.history.latest_dims()[0])


async def test_save_writes_a_loadable_session(small_config: RunConfig, tmp_path: Path) -> None:
    trainer = make_trainer(small_config, 30)
    app = ToygeomApp(trainer, sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        saved = [p for p in tmp_path.iterdir() if p.is_dir()]
        assert len(saved) == 1 and saved[0].name.startswith("small-")
        assert any(str(saved[0]) in m for m in notifications(app))
        assert app.saved_step == 30
        await pilot.press("q")  # nothing unsaved: quits without asking
        await pilot.pause()
        assert not isinstance(app.screen, QuitConfirmScreen)
    restored = load_session(saved[0])
    assert restored.step == 30
    assert torch.equal(restored.W, trainer.W)


async def test_open_a_corrupt_session_notifies_and_keeps_running(
    small_config: RunConfig, tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "session.json").write_text("{not json")
    trainer = make_trainer(small_config, 10)
    app = ToygeomApp(trainer, sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        assert isinstance(app.screen, SessionBrowserScreen)
        await wait_for(pilot, lambda: app.screen.scanned)
        await pilot.press("enter")  # the browser says why it can't, and stays
        await wait_for(pilot, lambda: any("broken" in m for m in notifications(app)))
        assert isinstance(app.screen, SessionBrowserScreen)
        await pilot.press("escape")
        assert app.current_run.trainer is trainer
        await pilot.press("j")
        assert app.dashboard.selected == 1


async def test_open_a_saved_session_shows_it(
    small_config: RunConfig, tmp_path: Path, eager_app_trainers: None
) -> None:
    other = make_trainer(small_config.replace(name="other", n_inst=3), 25)
    save_session(other, tmp_path / "other-run")
    app = ToygeomApp(make_trainer(small_config, 10), sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: getattr(app.screen, "scanned", False))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        await pilot.press("y")  # 10 unsaved steps of the current run: let them go
        await wait_for(pilot, lambda: app.current_run.config.name == "other")
        assert app.current_run.step == 25 and app.current_run.state == "ready"  # waits for p
        assert app.session_dir == tmp_path / "other-run"
        await wait_for(pilot, lambda: "other · cpu" in status_text(app))
        await pilot.press("G")
        assert app.dashboard.selected == 2


async def test_opening_a_session_whose_engine_drew_other_batches_says_so(
    small_config: RunConfig, tmp_path: Path, eager_app_trainers: None
) -> None:
    other = make_trainer(small_config.replace(name="other"), 25)
    save_session(other, tmp_path / "other-run")
    record = json.loads((tmp_path / "other-run" / "session.json").read_text())
    record.update(engine_version="0.1.0", saved_at=1e12)  # newer than the weights' own copy
    (tmp_path / "other-run" / "session.json").write_text(json.dumps(record))
    # From the session browser: the note is part of the "opened" notice.
    app = ToygeomApp(make_trainer(small_config), sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("o")
        await wait_for(pilot, lambda: getattr(app.screen, "scanned", False))
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.current_run.config.name == "other")
        await wait_for(pilot, lambda: any("drew other batches" in m for m in notifications(app)))
    # From `open DIR`: the app is handed the loaded session's note.
    loaded = load_session(tmp_path / "other-run", compiled=False)
    app = ToygeomApp(loaded, autostart=False, notice=loaded.load_note)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: any("engine 0.1.0" in m for m in notifications(app)))


async def test_quit_asks_first_when_training_is_unsaved(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config, 30), autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("q")
        assert isinstance(app.screen, QuitConfirmScreen)
        await pilot.press("escape")
        assert app.screen is app.dashboard
        assert app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


async def test_save_and_quit_from_the_confirmation(small_config: RunConfig, tmp_path: Path) -> None:
    app = ToygeomApp(make_trainer(small_config, 30), sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("q", "s")
        await wait_for(pilot, lambda: not app.is_running)
    [saved] = list(tmp_path.iterdir())
    assert json.loads((saved / "session.json").read_text())["step"] == 30


async def test_diverged_run_is_reported_and_charts_survive(small_config: RunConfig) -> None:
    trainer = make_trainer(small_config.replace(steps=100))
    with torch.no_grad():
        trainer.W[1, 0, 0] = float("nan")
    app = ToygeomApp(trainer)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: trainer.state == "diverged")
        await wait_for(pilot, lambda: "diverged" in status_text(app))
        await wait_for(pilot, lambda: any("diverged at step" in m for m in notifications(app)))
        await pilot.pause(0.5)
        for chart in (LossChart, FrobeniusChart, GeometryChart):
            app.dashboard.query_one(chart).render_text()  # NaN/inf in the data: no exception
        await pilot.press("j", "p")  # still responsive; pausing a diverged run says why not
        assert app.dashboard.selected == 1
        told = lambda: sum("diverged at step" in m for m in notifications(app))  # noqa: E731
        await wait_for(pilot, lambda: told() >= 2)


async def test_plus_trains_more_after_done(small_config: RunConfig) -> None:
    trainer = make_trainer(small_config.replace(steps=30))
    app = ToygeomApp(trainer)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: trainer.state == "done")
        await pilot.press("plus")  # acts on a worker thread: wait for it, never assume it ran
        told = lambda: any("training 30 more steps" in m for m in notifications(app))  # noqa: E731
        await wait_for(pilot, told)
        assert trainer.total_steps == 60
        await wait_for(pilot, lambda: trainer.state == "done" and trainer.step == 60)


async def test_help_lists_every_binding(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config), autostart=False)
    async with app.run_test(size=(120, 50)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = app.export_screenshot()
        for binding in [*ToygeomApp.BINDINGS, *type(app.dashboard).BINDINGS]:
            assert binding.id and binding.id in shown
        await pilot.press("escape")
        assert app.screen is app.dashboard
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_every_binding_has_an_id() -> None:
    from toygeom_tui.screens.dashboard import DashboardScreen

    for binding in [*ToygeomApp.BINDINGS, *DashboardScreen.BINDINGS]:
        assert binding.id, binding


async def test_enter_opens_the_instance_detail(small_config: RunConfig) -> None:
    pytest.importorskip("toygeom_tui.screens.instance_detail")
    from toygeom_tui.screens.instance_detail import InstanceDetailScreen

    app = ToygeomApp(make_trainer(small_config, 20), autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("j", "enter")
        await pilot.pause()
        assert isinstance(app.screen, InstanceDetailScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.dashboard


async def test_s_saves_from_the_instance_detail_too(
    small_config: RunConfig, tmp_path: Path
) -> None:
    from toygeom_tui.screens.instance_detail import InstanceDetailScreen

    app = ToygeomApp(make_trainer(small_config, 20), sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("enter", "s")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, InstanceDetailScreen), "saving leaves the view as it was"
        assert app.saved_step == 20
        assert [p.name.startswith("small-") for p in tmp_path.iterdir()] == [True]


async def test_new_run_replaces_the_trainer(
    small_config: RunConfig, eager_app_trainers: None
) -> None:
    pytest.importorskip("toygeom_tui.screens.new_run")
    from toygeom_tui.screens.new_run import NewRunScreen

    first = make_trainer(small_config.replace(steps=1_000_000))
    app = ToygeomApp(first)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: first.step > 0)
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        app.screen.dismiss(small_config.replace(name="second", n_inst=2, steps=40))
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        await pilot.press("y")  # the first run's steps are not saved: let them go
        await wait_for(pilot, lambda: app.current_run.config.name == "second")
        await wait_for(pilot, lambda: app.current_run.state == "done")
        assert first.state == "stopped"  # the old thread was told to stop, and did
        assert "second · cpu" in status_text(app)


async def test_command_palette_offers_the_actions(small_config: RunConfig) -> None:
    app = ToygeomApp(make_trainer(small_config), autostart=False)
    async with app.run_test(size=(100, 30)):
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"Pause or resume training", "Save session", "Open session", "New run"} <= titles


def hues(svg: str) -> set[str]:
    """The non-grey fill colours of an SVG screenshot."""
    colours = set(re.findall(r"fill=\"#([0-9a-f]{6})\"", svg))
    return {c for c in colours if len({c[0:2], c[2:4], c[4:6]}) > 1}


async def dashboard_hues(trainer: Trainer, tmp_path: Path) -> set[str]:
    app = ToygeomApp(trainer, sessions_root=tmp_path, autostart=False, autosave_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        return hues(app.export_screenshot())


async def test_no_color_draws_every_cell_in_grey(
    small_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = make_trainer(small_config, trained_steps=200)
    async with App().run_test() as pilot:  # the screenshot frame's own colours (window buttons)
        frame = hues(pilot.app.export_screenshot())
    assert await dashboard_hues(trainer, tmp_path) - frame, "in colour, the dashboard has hues"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not await dashboard_hues(trainer, tmp_path) - frame


async def test_status_says_preparing_while_the_first_step_builds(long_config: RunConfig) -> None:
    """The first step compiles (seconds): the header says so instead of a blank speed."""
    import threading

    trainer = make_trainer(long_config)
    release = threading.Event()
    train = trainer._step_fn.train

    def slow_first_steps(*args: object) -> torch.Tensor:
        release.wait(timeout=30)  # stands in for a compile: the real steps run after it
        return train(*args)

    trainer._step_fn.train = slow_first_steps
    app = ToygeomApp(trainer, autosave_seconds=0)
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(pilot, lambda: "preparing the step" in status_text(app))
        assert trainer.step == 0 and trainer.state == "training"
        release.set()
        await wait_for(pilot, lambda: "steps/s" in status_text(app) and trainer.step > 0)
        assert "preparing" not in status_text(app)
        assert not trainer.preparing
        trainer.stop()
