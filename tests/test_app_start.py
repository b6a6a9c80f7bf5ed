"""The app's start: it paints the start screen first and makes its run on a worker (an Opening).

Driven by Textual's Pilot with real Trainers (eager step); each `make` here waits on an event
so the test decides when the run is there.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_app import wait_for

from engine.config import RunConfig
from engine.session import load_session, save_session
from engine.trainer import Trainer
from toygeom_tui.app import Opened, Opening, ToygeomApp, run_app
from toygeom_tui.screens.dashboard import DashboardScreen
from toygeom_tui.screens.starting import StartScreen
from toygeom_tui.widgets.dashboard.status_bar import StatusBar

pytestmark = pytest.mark.timeout(60)


class Gate:
    """An Opening's `make` that names a stage, then waits for `open()` and returns `opened`."""

    def __init__(self, opened: Opened | Exception) -> None:
        self.opened = opened
        self.called = threading.Event()
        self.gate = threading.Event()
        self.returned = threading.Event()

    def __call__(self, stage) -> Opened:
        self.called.set()
        stage("building the model")
        try:
            assert self.gate.wait(30), "the test never opened the gate"
            if isinstance(self.opened, Exception):
                raise self.opened
            return self.opened
        finally:
            self.returned.set()

    def open(self) -> None:
        self.gate.set()


def stage_line(app: ToygeomApp) -> str:
    return str(app.start_screen.query_one("#start-stage").render())


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a new run's default sessions/ folder


def test_the_app_module_imports_neither_torch_nor_numpy() -> None:
    # What the start screen needs is all the app imports before its first paint.
    code = "import sys, toygeom_tui.app; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_the_start_screen_shows_until_the_run_is_made_then_the_run_trains(
    small_config: RunConfig,
) -> None:
    gate = Gate(Opened(Trainer(small_config, compiled=False)))
    app = ToygeomApp(Opening("a new run: small", gate), sessions_root=Path("sessions"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: "building the model" in stage_line(app))
        assert isinstance(app.screen, StartScreen)
        assert "opening a new run: small" in str(app.screen.query_one("#start-what").render())
        for key in ("p", "space", "s", "n", "o", "x", "question_mark", "ctrl+p"):
            await pilot.press(key)  # nothing to act on yet: no screen, no error
        await pilot.pause(0.2)
        assert isinstance(app.screen, StartScreen) and app.current_run is None
        gate.open()
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        run = app.current_run
        await wait_for(pilot, lambda: run.step > 0)  # a new run trains at once
        assert "small" in app.dashboard.query_one(StatusBar).plain


async def test_an_opened_session_waits_for_p_and_shows_its_notice(
    small_config: RunConfig, tmp_path: Path
) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=20)
    save_session(trainer, tmp_path / "saved")
    loaded = load_session(tmp_path / "saved", compiled=False)
    gate = Gate(Opened(loaded, tmp_path / "saved", "a note from loading"))
    gate.open()
    app = ToygeomApp(Opening(str(tmp_path / "saved"), gate), sessions_root=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen))
        await pilot.pause(0.3)
        assert app.current_run.step == 20 and app.session_dir == tmp_path / "saved"
        assert "a note from loading" in [n.message for n in app._notifications]
        await pilot.press("p")
        await wait_for(pilot, lambda: app.current_run.step > 20)


async def test_what_making_the_run_raises_ends_the_app_with_it() -> None:
    refused = ValueError("preset: 'nope' is not known")
    gate = Gate(refused)
    gate.open()
    app = ToygeomApp(Opening("a new run: nope", gate))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.is_running)
    assert app.failure is refused and app.current_run is None


async def test_q_while_starting_leaves_at_once_and_the_late_run_is_let_go(
    small_config: RunConfig,
) -> None:
    trainer = Trainer(small_config, compiled=False)
    gate = Gate(Opened(trainer))
    app = ToygeomApp(Opening("a new run: small", gate))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: gate.called.is_set())
        await pilot.press("q")
        await wait_for(pilot, lambda: not app.is_running)
    gate.open()
    assert gate.returned.wait(10)
    await asyncio.sleep(0.2)  # the worker finds the app gone
    assert app.current_run is None and trainer.step == 0


def test_without_a_terminal_bad_input_is_raised_before_textual_starts(
    capfd: pytest.CaptureFixture[str],
) -> None:
    # Under pytest stdin is no tty: run_app makes the run first, so nothing is painted.
    refused = ValueError("device: 'tpu' is not allowed")
    gate = Gate(refused)
    gate.open()
    with pytest.raises(ValueError, match="tpu"):
        run_app(Opening("a new run", gate))
    assert capfd.readouterr() == ("", "")  # not one escape sequence
