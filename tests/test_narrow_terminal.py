"""At 80 columns (the terminal the README promises) and at 60 (the smallest the app draws in)
the header lines keep what matters: the rate and the ETA, the selected instance's numbers, the
step a travelled view shows. Each line has shorter forms, and the first that fits is drawn
(Pilot, a real Trainer)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from rich.text import Text
from test_app import make_trainer, wait_for

from engine.config import RunConfig
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.screens.lost_run import LostRunScreen
from toygeom_tui.screens.quit_confirm import QuitConfirmScreen
from toygeom_tui.widgets.dashboard.status_bar import StatusBar

pytestmark = pytest.mark.timeout(60)

WIDTH = 80


def drawn(bar: StatusBar, y: int) -> str:
    return bar.render_line(y).text.rstrip()


def header(screen, selector: str) -> list[str]:
    return Text.from_markup(str(screen.query_one(selector).render())).plain.splitlines()


async def test_the_dashboard_keeps_the_rate_and_eta_at_80_columns(
    small_config: RunConfig,
) -> None:
    config = small_config.replace(name="a-long-run-name", steps=1_000_000)
    app = ToygeomApp(make_trainer(config), autostart=True)
    async with app.run_test(size=(WIDTH, 24)) as pilot:
        bar = app.dashboard.query_one(StatusBar)
        await wait_for(pilot, lambda: "steps/s · ETA" in drawn(bar, 0) and "–" not in drawn(bar, 0))
        run_line, instance_line = drawn(bar, 0), drawn(bar, 1)
        assert "…" not in run_line and "…" not in instance_line, (run_line, instance_line)
        assert "a-long-run-name" in run_line and "ETA" in run_line
        assert instance_line.startswith("inst") and "D* " in instance_line
        assert "instance 0 of 0–3" in bar.plain, "the full form is still the widget's text"
    app = ToygeomApp(make_trainer(config), autostart=True)
    async with app.run_test(size=(160, 24)) as pilot:  # wide: the longest form, every word
        bar = app.dashboard.query_one(StatusBar)
        await wait_for(pilot, lambda: "steps/s · ETA" in drawn(bar, 0) and "–" not in drawn(bar, 0))
        assert " · cpu · step " in drawn(bar, 0) and "1/(1−S)" in drawn(bar, 1)


@pytest.mark.parametrize("width", [WIDTH, 60])
async def test_a_travelled_view_keeps_its_step(small_config: RunConfig, width: int) -> None:
    trainer = Trainer(small_config.replace(name="a-long-run-name"), compiled=False)
    trainer.run()
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(width, 24)) as pilot:
        bar = app.dashboard.query_one(StatusBar)
        await pilot.pause()
        assert drawn(bar, 0).lstrip().startswith("✓ done  a-long-run-name")
        assert "…" not in drawn(bar, 0) and "…" not in drawn(bar, 1)
        await pilot.press("j", "less_than_sign", "less_than_sign")
        step = app.view_step
        assert step is not None and step < trainer.step
        assert drawn(bar, 1).lstrip().startswith(f"at step {step:,} ") and "D* " in drawn(bar, 1)
        assert "…" not in drawn(bar, 1)
        await pilot.press("enter")
        detail = app.screen
        await wait_for(pilot, lambda: detail.shown == (1, step))
        await pilot.pause()
        line = header(detail, "#detail-header")[0]
        assert f"at step {step:,}" in line and line.endswith("done"), line
        assert len(line) <= width - 2
        await pilot.press("D")
        await pilot.pause()
        line = header(app.screen, "#dynamics-header")[0]
        assert f"at step {step:,}" in line and line.endswith("done"), line
        assert len(line) <= width - 2
        await pilot.press("l")
        await pilot.pause()
        line = header(app.screen, "#dynamics-header")[0]
        assert f"step {trainer.step:,}/" in line and len(line) <= width - 2, line
    app = ToygeomApp(trainer, autostart=False)
    async with app.run_test(size=(160, 40)) as pilot:  # wide: the live step too
        await pilot.press("less_than_sign", "enter")
        detail = app.screen
        await wait_for(pilot, lambda: detail.geometry is not None)
        await pilot.pause()
        assert f"(live: {trainer.step:,})" in header(detail, "#detail-header")[0]
        assert "(1/p " in header(detail, "#detail-header")[0]


@pytest.mark.parametrize("size", [(WIDTH, 24), (60, 18)])
@pytest.mark.parametrize(
    "dialog",
    [
        lambda: QuitConfirmScreen(68_730, "quit", background=True),
        lambda: QuitConfirmScreen(120, "open sessions/some-other-run"),
        lambda: LostRunScreen("sessions/fg", 69_490),
    ],
)
async def test_every_button_of_a_dialog_shows_its_whole_label(size, dialog) -> None:
    """The quit dialog's Quit (its red one) and the lost run's 'Resume in the background' fell
    outside their dialogs: buttons 16 cells wide at least, four of them in 52 columns."""
    from textual.app import App
    from textual.widgets import Button

    class Host(App):
        CSS_PATH = Path(inspect.getfile(ToygeomApp)).with_name(ToygeomApp.CSS_PATH)  # sizes

    app = Host()
    async with app.run_test(size=size) as pilot:
        app.push_screen(dialog())
        await pilot.pause()
        box = app.screen.query_one("#quit-dialog").content_region
        for button in app.screen.query(Button):
            label = str(button.label)
            assert box.contains_region(button.region), (label, button.region, box)
            assert button.region.width >= len(label) + 2, label
