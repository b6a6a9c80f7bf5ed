"""Sessions in the app: open from the browser, confirm before dropping unsaved training, autosave,
resume, follow a run another process writes, export. Real trainers, real files, a real `train`
process; trainers use the eager step (compiled=False).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_app import make_trainer, notifications, status_text, wait_for

from engine.config import RunConfig
from engine.remote.lock import let_go
from engine.session import WEIGHTS_FILE, load_session, read_record, save_session, session_info
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.screens.export_menu import ExportMenuScreen
from toygeom_tui.screens.quit_confirm import QuitConfirmScreen
from toygeom_tui.screens.sessions import SessionBrowserScreen

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def in_tmp_path(eager_app_trainers: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Trainers the app builds itself use the eager step; the default sessions/ is in tmp."""
    monkeypatch.chdir(tmp_path)


def mark_text(app: ToygeomApp) -> str:
    """The save state right of the status line ("saved 3 s ago", "following", ...)."""
    return str(app.dashboard.session_mark.render())


def saved_run(config: RunConfig, directory: Path, steps: int) -> Trainer:
    trainer = make_trainer(config, steps)
    save_session(trainer, directory)
    return trainer


async def open_from_browser(pilot, name: str) -> None:
    """o, then enter on the row of session `name`."""
    app = pilot.app
    await pilot.press("o")
    assert isinstance(app.screen, SessionBrowserScreen)
    await wait_for(pilot, lambda: app.screen.scanned)
    table = app.screen.table
    keys = [str(k.value) for k in table.rows]
    table.move_cursor(row=[Path(k).name for k in keys].index(name))
    await pilot.press("enter")


# -- open ------------------------------------------------------------------------------------------
async def test_o_opens_a_saved_session_which_waits_for_p(
    small_config: RunConfig, tmp_path: Path
) -> None:
    saved_run(small_config.replace(name="other", n_inst=3), tmp_path / "other-run", 40)
    app = ToygeomApp(make_trainer(small_config), sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_from_browser(pilot, "other-run")  # nothing trained yet: no question
        await wait_for(pilot, lambda: app.current_run.config.name == "other")
        await wait_for(pilot, lambda: "step 40/200" in status_text(app))
        assert "ready" in status_text(app) and app.current_run.step == 40
        assert app.session_dir == tmp_path / "other-run"
        assert "saved" in mark_text(app) and "ago" in mark_text(app)
        assert any("opened" in m and "p continues" in m for m in notifications(app))


async def test_opening_a_session_with_nan_weights_notifies_and_keeps_the_run(
    small_config: RunConfig, tmp_path: Path
) -> None:
    saved_run(small_config, tmp_path / "poisoned", 20)
    weights = tmp_path / "poisoned" / WEIGHTS_FILE
    blob = bytearray(weights.read_bytes())
    header_size = int.from_bytes(blob[:8], "little")
    start, _ = json.loads(blob[8 : 8 + header_size])["W"]["data_offsets"]
    at = 8 + header_size + start
    blob[at : at + 4] = b"\xff\xff\xff\xff"  # one NaN in W; header and size intact
    weights.write_bytes(bytes(blob))
    trainer = make_trainer(small_config)
    app = ToygeomApp(trainer, sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_from_browser(pilot, "poisoned")  # the listing can't see it; loading can
        await wait_for(pilot, lambda: any("NaN" in m for m in notifications(app)))
        assert app.current_run.trainer is trainer and app.is_running
        await pilot.press("j")
        assert app.dashboard.selected == 1


async def test_unsaved_training_is_confirmed_before_open_and_new(
    small_config: RunConfig, tmp_path: Path
) -> None:
    saved_run(small_config.replace(name="other"), tmp_path / "other-run", 30)
    current = make_trainer(small_config, 50)
    app = ToygeomApp(current, sessions_root=tmp_path, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_from_browser(pilot, "other-run")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        assert "50 steps" in app.screen.query_one("Static").render().plain
        await pilot.press("escape")  # stay: nothing changes
        assert app.current_run.trainer is current

        await pilot.press("n")
        app.screen.dismiss(small_config.replace(name="third", steps=20))
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        await pilot.press("escape")
        assert app.current_run.trainer is current

        await open_from_browser(pilot, "other-run")
        await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
        await pilot.press("s")  # save the current run first, then open the other
        await wait_for(pilot, lambda: app.current_run.config.name == "other")
    [saved] = [p for p in tmp_path.iterdir() if p.name.startswith("small-")]
    assert load_session(saved, compiled=False).step == 50
    assert not session_info(saved).running


# -- autosave and resume -----------------------------------------------------------------------
async def test_autosave_writes_a_running_session_then_a_final_one(
    small_config: RunConfig, tmp_path: Path
) -> None:
    # Long enough that the run is still going at the first autosave, even on a busy CI.
    STEPS = 3000
    trainer = make_trainer(small_config.replace(steps=STEPS))
    app = ToygeomApp(trainer, sessions_root=tmp_path, autosave_seconds=0.3)
    trainer.pause()  # held at step 0 until checked: a fast step could save before the check
    async with app.run_test(size=(120, 40)) as pilot:
        assert "unsaved" in mark_text(app)
        trainer.resume()
        record = lambda: next(tmp_path.glob("small-*/session.json"), None)  # noqa: E731
        await wait_for(pilot, lambda: record() is not None)
        directory = record().parent
        assert trainer.state == "training"
        assert session_info(directory).running  # our pid, alive, says "running"
        mid = load_session(directory, compiled=False)
        assert 0 < mid.step < STEPS
        await wait_for(pilot, lambda: "saved" in mark_text(app))
        assert "autosave" in mark_text(app)
        await wait_for(pilot, lambda: trainer.state == "done", timeout=60)
        # The last autosave (running) can land at the final step just before the final save.
        final = lambda: read_record(directory)  # noqa: E731
        await wait_for(pilot, lambda: final()["step"] == STEPS and not final()["writer"]["running"])
        await wait_for(pilot, lambda: app.saved_step == STEPS)  # its message follows the file
        await pilot.press("q")  # everything saved: no question
        await pilot.pause()
        assert not app.is_running


async def test_resume_continues_where_the_session_stopped(
    small_config: RunConfig, tmp_path: Path
) -> None:
    saved_run(small_config, tmp_path / "half", 100)
    saved_steps, saved_loss, _ = load_session(tmp_path / "half").history.metrics_arrays()
    trainer = load_session(tmp_path / "half", compiled=False)
    app = ToygeomApp(trainer, session_dir=tmp_path / "half", autostart=False, autosave_seconds=0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert "ready" in status_text(app) and "step 100/200" in status_text(app)
        await pilot.press("p")
        await wait_for(pilot, lambda: trainer.step > 120)
        await wait_for(pilot, lambda: trainer.state == "done")
        assert "step 200/200" in status_text(app)
    steps, loss, _ = trainer.history.metrics_arrays()
    n = len(saved_steps)
    np.testing.assert_array_equal(steps[:n], saved_steps)
    np.testing.assert_array_equal(loss[:n], saved_loss)
    assert steps[n] > saved_steps[-1] and steps[-1] == 200  # one history, continued


# -- export ----------------------------------------------------------------------------------------
async def test_export_writes_geometry_history_and_screenshot(
    small_config: RunConfig, tmp_path: Path
) -> None:
    saved_run(small_config, tmp_path / "run", 60)
    trainer = load_session(tmp_path / "run", compiled=False)
    app = ToygeomApp(trainer, session_dir=tmp_path / "run", autostart=False)
    seen: dict[str, str] = {}  # every notice by identity: one may expire (5 s) before the next

    def told_so_far() -> int:
        seen.update((n.identity, n.message) for n in app._notifications)
        return len(seen)

    async with app.run_test(size=(120, 40)) as pilot:
        for done, key in enumerate(("j", "c", "h", "s"), start=1):
            await pilot.press("x")
            assert isinstance(app.screen, ExportMenuScreen)
            await pilot.press(key)
            await wait_for(pilot, lambda n=done: told_so_far() >= n)
            await app.workers.wait_for_complete()
        told = list(seen.values())
    assert all(m.startswith("wrote ") for m in told), told
    doc = json.loads((tmp_path / "run" / "small-step60-geometry.json").read_text())
    assert doc["step"] == 60 and len(doc["instances"]) == 4
    rows = (tmp_path / "run" / "small-step60-geometry.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 * 20
    history = (tmp_path / "run" / "small-step60-history.csv").read_text().splitlines()
    assert history[0] == "step,instance,loss,frobenius_sq" and history[-1].startswith("60,3,")
    [svg] = (tmp_path / "run").glob("small-step60-*.svg")
    text = svg.read_text()
    assert text.startswith("<svg") and "toygeom-tui&#160;·&#160;small" in text


async def test_export_to_an_unwritable_place_says_why(
    small_config: RunConfig, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    app = ToygeomApp(make_trainer(small_config, 10), sessions_root=not_a_folder, autostart=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("x", "h")
        await wait_for(pilot, lambda: any("cannot write" in m for m in notifications(app)))
        [message] = notifications(app)
        assert "\n" not in message and str(not_a_folder / "exports") in message
        assert app.is_running


def test_export_functions_of_a_live_trainer_match_a_saved_session(
    small_config: RunConfig, tmp_path: Path
) -> None:
    from toygeom_tui.export import document_json, geometry_json, run_geometry

    trainer = saved_run(small_config, tmp_path / "run", 40)
    live = json.loads(document_json(run_geometry(trainer)))
    saved = json.loads(geometry_json(tmp_path / "run"))
    assert live["instances"] == saved["instances"]
    assert live["step"] == saved["step"] == 40
    assert os.fspath(tmp_path / "run") == saved["session"]


async def test_a_new_run_names_the_session_whose_run_died(small_config, tmp_path) -> None:
    """A session autosaved as running whose writer is gone (no final save, its lock released,
    as `kill -9` leaves it): a new run's app says so once, and the browser marks that row."""
    root = tmp_path / "sessions"
    died = saved_run(small_config, root / "died", 60)
    save_session(died, root / "died", running=True)
    let_go(root / "died")
    saved_run(small_config, root / "fine", small_config.steps)  # finished: "done"
    app = ToygeomApp(make_trainer(small_config), sessions_root=root, offer_resume=True)
    async with app.run_test(size=(120, 40)) as pilot:
        told = lambda: [m for m in notifications(app) if "was interrupted" in m]  # noqa: E731
        await wait_for(pilot, lambda: told())
        assert told() == [f"{root / 'died'} was interrupted at step 60 — press o to resume it"]
        await pilot.press("o")
        await wait_for(pilot, lambda: isinstance(app.screen, SessionBrowserScreen))
        table = app.screen.query_one("SessionTable")
        await wait_for(pilot, lambda: table.row_count == 2)
        states = {str(table.get_row(key)[1]): str(table.get_row(key)[5]) for key in table.rows}
        assert states == {"died": "✗ interrupted", "fine": "done"}
