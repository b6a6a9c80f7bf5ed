"""The app attached to real `toygeom-tui train` processes (Pilot): it drives the run, q detaches,
two viewers at once, a SIGKILLed run is shown lost and resumed; a local run sent to the background
ends with the numbers of a run that never moved; `attach` picks its run.

Every effect is checked on the run itself: its files, or a second RemoteRun of our own. The runs
are conftest's live_train (a tiny config, endless, autosaving every second).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_app import notifications, status_text, wait_for
from test_remote import cli, wait_until

from engine.config import RunConfig
from engine.remote.client import RemoteRun
from engine.remote.listing import probe
from engine.run import LocalRun
from engine.session import load_saved, load_session, read_record
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp
from toygeom_tui.cli import UserError, choose_run, main
from toygeom_tui.screens.dynamics import DynamicsScreen
from toygeom_tui.screens.help import HelpScreen
from toygeom_tui.screens.instance_detail import InstanceDetailScreen
from toygeom_tui.screens.lost_run import LostRunScreen
from toygeom_tui.screens.quit_confirm import QuitConfirmScreen

pytestmark = pytest.mark.timeout(240)


def mark_text(app: ToygeomApp) -> str:
    return str(app.dashboard.session_mark.render())


def shown_mark(app: ToygeomApp) -> str:
    """The save state's two lines as drawn (cut to the widget's width, as the user sees them)."""
    mark = app.dashboard.session_mark
    return "\n".join(strip.text for strip in mark.render_lines(mark.region.reset_offset))


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def attached(directory: Path) -> ToygeomApp:
    return ToygeomApp(RemoteRun.connect(directory), session_dir=directory)


async def test_an_attached_app_pauses_steps_extends_saves_and_stops_the_run(
    tmp_path: Path, live_train
) -> None:
    run_dir = tmp_path / "run"
    proc = live_train(run_dir, 1.0)
    watcher = RemoteRun.connect(run_dir)  # the run as another terminal sees it
    app = attached(run_dir)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: "attached" in mark_text(app))
            assert "q detaches" in shown_mark(app)  # whole: it was "pid 1303 · q det…"
            await wait_for(pilot, lambda: app.current_run.steps_per_second > 0)
            status = lambda: status_text(app)  # noqa: E731
            # The run's own steps/s and ETA, not the placeholders.
            await wait_for(pilot, lambda: "– steps/s" not in status() and "--:--" not in status())
            first = watcher.step
            await wait_for(pilot, lambda: app.current_run.step > first)  # live, not a save
            snapshots = app.current_run.snapshots
            await wait_for(pilot, lambda: len(snapshots) >= 2, 30)  # weights to travel back to

            await pilot.press("p")
            assert watcher.wait_for(lambda r: r.state == "paused", 30)
            paused_at = watcher.step
            await wait_for(pilot, lambda: "paused" in status_text(app))

            await pilot.press("space")
            assert watcher.wait_for(lambda r: r.step == paused_at + 1, 30)
            await wait_for(pilot, lambda: f"step {paused_at + 1:,}/" in status_text(app))

            # Every screen works on the attached run: detail, dynamics, export, help, time travel.
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, InstanceDetailScreen))
            await wait_for(pilot, lambda: app.screen.shown == (0, paused_at + 1), 30)
            await pilot.press("escape", "D")
            await wait_for(pilot, lambda: isinstance(app.screen, DynamicsScreen))
            await pilot.press("escape", "x", "j")
            exported = run_dir / f"{app.current_run.config.name}-step{paused_at + 1}-geometry.json"
            await wait_for(pilot, exported.exists, 30)
            assert json.loads(exported.read_text())["step"] == paused_at + 1
            await pilot.press("question_mark")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await pilot.press("less_than_sign")
            await wait_for(pilot, lambda: app.view_step is not None)
            assert app.view_step in snapshots.steps and app.view_step < app.current_run.step
            assert torch.equal(app.moment().W, snapshots.at(app.view_step))
            await pilot.press("l")
            await wait_for(pilot, lambda: app.view_step is None)

            total = watcher.total_steps
            await pilot.press("plus")
            extra = app.current_run.config.steps
            assert watcher.wait_for(lambda r: r.total_steps == total + extra, 30)

            before = (run_dir / "session.json").stat().st_mtime_ns  # paused: no autosave now
            await pilot.press("s")
            await wait_for(pilot, lambda: (run_dir / "session.json").stat().st_mtime_ns != before)
            await wait_for(pilot, lambda: any("saved step" in m for m in notifications(app)))
            assert read_record(run_dir)["step"] == paused_at + 1

            await app.run_action("stop_run")  # the command palette's "Stop training"
            await wait_for(pilot, lambda: proc.poll() is not None, 60)
            assert proc.returncode == 0
            await wait_for(pilot, lambda: "stopped" in status_text(app))
            assert read_record(run_dir)["writer"]["running"] is False
    finally:
        watcher.close()


async def test_q_detaches_and_two_apps_watch_one_run(tmp_path: Path, live_train) -> None:
    run_dir = tmp_path / "run"
    proc = live_train(run_dir, 1.0)
    one, two = attached(run_dir), attached(run_dir)
    async with one.run_test(size=(120, 40)) as p1, two.run_test(size=(120, 40)) as p2:
        await wait_for(p1, lambda: "attached" in mark_text(one))
        await wait_for(p2, lambda: "attached" in mark_text(two))
        await p1.press("p")  # one pauses: both see it
        await wait_for(p2, lambda: "paused" in status_text(two))
        await p2.press("p")  # the other resumes it
        await wait_for(p1, lambda: "training" in status_text(one))
        await p1.press("q")
        await wait_for(p1, lambda: not one.is_running)
    assert "toygeom-tui attach" in (one.farewell or "") and str(run_dir) in one.farewell
    # Both gone: the run trains on, as a third viewer sees.
    assert proc.poll() is None
    third = RemoteRun.connect(run_dir)
    try:
        step = third.step
        assert third.wait_for(lambda r: r.step > step and r.state == "training", 30)
    finally:
        third.close()


async def save_then_lose(app: ToygeomApp, pilot, proc: subprocess.Popen, run_dir: Path) -> int:
    """Save the attached run (s), SIGKILL its process, wait for the lost screen; the saved step."""
    await pilot.press("s")  # a save to resume from
    await wait_for(pilot, lambda: any("saved step" in m for m in notifications(app)))
    saved = read_record(run_dir)["step"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    await wait_for(pilot, lambda: isinstance(app.screen, LostRunScreen), 30)
    return saved


async def test_a_killed_run_is_shown_lost_and_resumes_in_the_background(
    tmp_path: Path, live_train
) -> None:
    run_dir = tmp_path / "run"
    proc = live_train(run_dir, 1.0)
    app = attached(run_dir)
    resumed_pid = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            saved = await save_then_lose(app, pilot, proc, run_dir)
            assert "lost" in mark_text(app) and "lost" in status_text(app)
            assert "process gone" in shown_mark(app)
            await pilot.press("b")  # resume in the background, and attach to it
            moved = lambda: app.current_run.remote and app.current_run.pid != proc.pid  # noqa: E731
            await wait_for(pilot, moved, 120)
            resumed_pid = app.current_run.pid
            await wait_for(pilot, lambda: app.current_run.step > saved, 60)
            await wait_for(pilot, lambda: "attached" in mark_text(app))
            await pilot.press("q")
        assert probe(run_dir)["pid"] == resumed_pid  # still training, served, after we left
    finally:
        if resumed_pid is not None:
            kill_pid(resumed_pid)


async def test_a_killed_run_resumes_here_from_its_last_save(tmp_path: Path, live_train) -> None:
    run_dir = tmp_path / "run"
    proc = live_train(run_dir, 1.0)
    app = attached(run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        saved = await save_then_lose(app, pilot, proc, run_dir)
        await pilot.press("h")  # resume here, in this app
        await wait_for(pilot, lambda: not app.current_run.remote, 60)
        assert app.session_dir == run_dir and app.current_run.config == load_saved(run_dir).config
        told = f"resumed {run_dir} here at step {saved:,}"
        await wait_for(pilot, lambda: any(told in m for m in notifications(app)), 30)
        await wait_for(pilot, lambda: app.current_run.step > saved, 60)  # it trains on, here
        assert app.current_run.state == "training" and probe(run_dir) is None
        assert "attached" not in mark_text(app) and "lost" not in mark_text(app)


async def test_a_local_run_sent_to_the_background_ends_as_if_it_never_moved(
    tmp_path: Path,
) -> None:
    config = RunConfig(name="bg", n_features=12, d_hidden=4, n_inst=3, batch_size=128,
                       steps=3000, device="cpu")  # fmt: skip
    run_dir = tmp_path / "bg"
    app = ToygeomApp(LocalRun(Trainer(config)), session_dir=run_dir, autosave_seconds=0)
    pid = None
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.current_run.step >= 100, 60)
            await pilot.press("p")
            await wait_for(pilot, lambda: app.current_run.state == "paused")
            moved_at = app.current_run.step
            assert 0 < moved_at < config.steps
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, QuitConfirmScreen))
            await pilot.press("b")
            await wait_for(pilot, lambda: not app.is_running, 120)
        assert f"toygeom-tui attach {run_dir}" in app.farewell
        pid = probe(run_dir)["pid"]
        assert pid != os.getpid()
        wait_until(lambda: probe(run_dir) is None, 180)  # trained to the end, then gone
        moved = load_session(run_dir, compiled=False)
    finally:
        if pid is not None:
            kill_pid(pid)
    assert moved.step == config.steps
    reference = Trainer(config)
    assert reference.run() == "done"
    assert torch.equal(moved.W, reference.W) and torch.equal(moved.b_final, reference.b_final)


# -- which run `attach` opens --------------------------------------------------------------------
def test_attach_with_no_run_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "sessions").mkdir()
    result = subprocess.run([sys.executable, "-m", "toygeom_tui", "attach"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no run is training under sessions" in result.stderr
    missing = cli("attach", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no run is serving" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_attach_with_two_runs_asks_which(
    tmp_path: Path, live_train, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    first, second = Path("sessions/a"), Path("sessions/b")
    live_train(first, 1.0), live_train(second, 1.0)
    from engine.remote.listing import running

    runs = running("sessions")
    assert [d for d, _ in runs] == [first, second]
    err = io.StringIO()
    assert choose_run(runs, io.StringIO("2\n"), err) == second
    assert f"1  {first}" in err.getvalue() and f"2  {second}" in err.getvalue()
    with pytest.raises(UserError, match="no run chosen"):
        choose_run(runs, io.StringIO("7\n"), io.StringIO())
    # From the command line: both listed, a wrong answer is one line and exit 2.
    monkeypatch.setattr(sys, "stdin", io.StringIO("nope\n"))
    assert main(["attach"]) == 2
    out = capsys.readouterr().err
    assert str(first) in out and str(second) in out and "no run chosen (nope typed)" in out
