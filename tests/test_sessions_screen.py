"""The session browser and the compare screen, driven by Pilot over real saved sessions.

Sessions are trained for a few dozen steps with the eager step and saved with
engine.session.save_session; the broken ones are real sessions damaged the way files get damaged.
"""

from __future__ import annotations

import html
import json
import os
import pickle
import re
import shutil
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input

from engine.config import RunConfig
from engine.remote.lock import let_go
from engine.session import (
    RECORD_FILE,
    WEIGHTS_FILE,
    load_saved,
    load_session,
    save_session,
    session_info,
)
from engine.snapshot_files import file_name
from engine.trainer import Trainer
from toygeom_tui.screens.compare import CompareScreen
from toygeom_tui.screens.sessions import (
    ConfirmScreen,
    RenameScreen,
    SessionBrowserScreen,
    rename_problem,
)
from toygeom_tui.widgets.sessions.session_table import SessionTable, relative_time, scan_sessions

pytestmark = pytest.mark.timeout(60)
UNSET = object()


class Host(App):
    """Opens the browser, keeps what it was dismissed with and every notification."""

    def __init__(
        self, root: Path, extra: tuple[Path, ...] = (), in_use: Path | None = None
    ) -> None:
        super().__init__()
        self.root, self.extra, self.in_use = root, extra, in_use
        self.result: object = UNSET
        self.messages: list[str] = []

    def on_mount(self) -> None:
        self.push_screen(
            SessionBrowserScreen(self.root, self.extra, in_use=self.in_use), self._keep
        )

    def _keep(self, result: Path | None) -> None:
        self.result = result

    def notify(self, message: str, **options: object) -> None:
        self.messages.append(message)
        super().notify(message, **options)


def train(config: RunConfig, directory: Path, *, running: bool = False) -> None:
    trainer = Trainer(config, compiled=False)
    trainer.run()
    save_session(trainer, directory, running=running)


def age(directory: Path, seconds: float) -> None:
    """Make a session look `seconds` old (the browser sorts by its files' mtimes)."""
    stamp = time.time() - seconds
    for path in (directory / RECORD_FILE, directory / WEIGHTS_FILE, directory):
        os.utime(path, (stamp, stamp))


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two trained sessions: alpha (config "small", 50 steps) and beta (config "wide", 60)."""
    root = tmp_path_factory.mktemp("library")
    config = RunConfig(
        name="small", n_features=20, d_hidden=5, n_inst=4, batch_size=256, steps=50, device="cpu"
    )
    train(config, root / "alpha")
    train(config.replace(name="wide", n_features=30, steps=60, seed=1), root / "beta")
    return root


@pytest.fixture
def sessions(library: Path, tmp_path: Path) -> Path:
    """A fresh copy of the library per test; beta is newer than alpha."""
    root = tmp_path / "sessions"
    shutil.copytree(library, root)
    age(root / "alpha", 600)
    age(root / "beta", 90)
    return root


def break_sessions(root: Path) -> None:
    """corrupt: session.json is not JSON; pickled: a pickle renamed weights.safetensors."""
    shutil.copytree(root / "alpha", root / "corrupt")
    (root / "corrupt" / RECORD_FILE).write_text("{ this is not json")
    shutil.copytree(root / "alpha", root / "pickled")
    (root / "pickled" / WEIGHTS_FILE).write_bytes(pickle.dumps({"W": [1.0, 2.0]}))
    age(root / "corrupt", 30)
    age(root / "pickled", 3000)


def rows(app: App) -> list[list[str]]:
    """The browser's table as plain text, row by row."""
    table = app.screen.query_one(SessionTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def names(app: App) -> list[str]:
    return [row[1] for row in rows(app)]


def screen_text(app: App) -> str:
    """What the terminal shows, one line per row (read from the SVG screenshot)."""
    lines: dict[str, list[str]] = {}
    for y, text in re.findall(
        r'<text [^>]*?y="([\d.]+)"[^>]*>([^<]*)</text>', app.export_screenshot()
    ):
        lines.setdefault(y, []).append(html.unescape(text).replace("\xa0", " "))
    return "\n".join("".join(parts) for parts in lines.values())


async def settle(app: App, pilot) -> None:
    """Let scans and loads in worker threads finish and their results reach the screen."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def cursor_to(app: App, pilot, name: str) -> None:
    await pilot.press("g", *["j"] * names(app).index(name))


async def compare(app: App, pilot, first: str, second: str) -> None:
    """Mark session `first`, open the compare screen from `second`, and let both load."""
    await settle(app, pilot)
    await cursor_to(app, pilot, first)
    await pilot.press("space")
    await cursor_to(app, pilot, second)
    await pilot.press("c")
    await settle(app, pilot)
    assert isinstance(app.screen, CompareScreen)


# -- pure helpers -------------------------------------------------------------------------------
def test_relative_time_reads_like_a_person() -> None:
    now = 1_700_000_000.0
    assert relative_time(now - 2, now) == "just now"
    assert relative_time(now - 42, now) == "42 s ago"
    assert relative_time(now - 180, now) == "3 min ago"
    assert relative_time(now - 5 * 3600, now) == "5 h ago"
    assert relative_time(now - 2 * 86400, now) == "2 d ago"
    assert relative_time(now - 400 * 86400, now) == time.strftime(
        "%Y-%m-%d", time.localtime(now - 400 * 86400)
    )


def test_rename_problem_names_the_rule(sessions: Path) -> None:
    alpha = sessions / "alpha"
    assert rename_problem(alpha, "gamma") is None
    assert "empty" in rename_problem(alpha, "  ")
    assert "'/'" in rename_problem(alpha, "a/b")
    assert "already exists" in rename_problem(alpha, "beta")
    assert "already its name" in rename_problem(alpha, "alpha")
    assert "not a usable name" in rename_problem(alpha, "..")


def test_scan_lists_sessions_and_extras_but_not_other_folders(
    sessions: Path, tmp_path: Path
) -> None:
    (sessions / "notes").mkdir()  # no session.json: not a session, not listed
    stray = tmp_path / "stray"
    stray.mkdir()  # given explicitly: listed, with why it is not a session
    listed = scan_sessions(sessions, [stray, sessions / "alpha"])
    assert [row.path.name for row in listed] == ["stray", "beta", "alpha"]
    assert "not a session" in listed[0].problem
    assert [row.info.step for row in listed[1:]] == [60, 50]
    assert scan_sessions(tmp_path / "missing") == []


# -- the browser --------------------------------------------------------------------------------
async def test_lists_sessions_newest_first_with_their_steps(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        table = rows(app)
        assert [row[1] for row in table] == ["beta", "alpha"]
        assert [row[2] for row in table] == ["wide", "small"]
        assert [row[3] for row in table] == ["30/5/4", "20/5/4"]
        assert [row[4] for row in table] == ["60/60", "50/50"]
        assert [row[5] for row in table] == ["done", "done"]  # 60 of 60 steps, 50 of 50
        assert [row[7] for row in table] == ["1 min ago", "10 min ago"]
        assert all(float(row[6]) > 0 for row in table)


async def test_a_file_coming_and_going_in_a_session_is_no_modification(sessions: Path) -> None:
    """Opening a session whose run died removes its socket, which changes the folder's mtime:
    the browser's "modified" (and its order) goes by the session's own files."""
    (sessions / "alpha" / "run.sock").write_text("")
    (sessions / "alpha" / "run.sock").unlink()  # the folder's mtime is now
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        table = rows(app)
        assert [row[1] for row in table] == ["beta", "alpha"]
        assert table[1][7] == "10 min ago"


async def test_the_list_follows_the_disk(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        shutil.copytree(sessions / "alpha", sessions / "fresh")
        age(sessions / "fresh", 0)
        deadline = time.monotonic() + 10
        while "fresh" not in names(app):  # the periodic rescan, no key pressed
            assert time.monotonic() < deadline, "the periodic rescan never listed 'fresh'"
            await pilot.pause(0.1)
        assert names(app)[0] == "fresh"
        shutil.rmtree(sessions / "fresh")
        await pilot.press("f5")
        await settle(app, pilot)
        assert names(app) == ["beta", "alpha"]


async def test_broken_sessions_are_listed_with_their_problem(sessions: Path) -> None:
    break_sessions(sessions)
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        by_name = {row[1]: row for row in rows(app)}
        assert names(app) == ["corrupt", "beta", "alpha", "pickled"]
        assert "not valid JSON" in by_name["corrupt"][8]
        assert "not a safetensors file" in by_name["pickled"][8]
        assert by_name["alpha"][8] == ""
        assert "2 unreadable" in screen_text(app)
        await cursor_to(app, pilot, "pickled")
        await pilot.press("enter")  # refused, with the reason
        await pilot.pause()
        assert app.result is UNSET
        assert any("cannot open pickled" in m and "safetensors" in m for m in app.messages)


async def test_enter_opens_the_session_under_the_cursor(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await cursor_to(app, pilot, "alpha")
        await pilot.press("enter")
        await pilot.pause()
    assert app.result == sessions / "alpha"


async def test_escape_goes_back_with_nothing(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


async def test_rename_renames_the_directory(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await cursor_to(app, pilot, "alpha")
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, RenameScreen)
        field = app.screen.query_one(Input)
        field.value = ""
        await pilot.press(*"beta", "enter")  # taken: the dialog stays and says so
        await pilot.pause()
        assert isinstance(app.screen, RenameScreen)
        assert any("already exists" in m for m in app.messages)
        field.value = ""
        await pilot.press(*"gamma", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, RenameScreen)
        assert (sessions / "gamma" / RECORD_FILE).is_file()
        assert not (sessions / "alpha").exists()
        assert names(app) == ["beta", "gamma"]


async def test_delete_asks_first_and_no_keeps_the_session(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await cursor_to(app, pilot, "beta")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(app, pilot)
        assert (sessions / "beta" / WEIGHTS_FILE).is_file()
        assert names(app) == ["beta", "alpha"]
        await pilot.press("delete")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(app, pilot)
        assert not (sessions / "beta").exists()
        assert names(app) == ["alpha"]


async def test_a_session_whose_run_died_is_marked_interrupted(sessions: Path) -> None:
    """An autosave of a running run, then its writer gone without a final save (as `kill -9`
    leaves it): the row the app's "was interrupted — press o to resume it" notice means."""
    config = RunConfig(name="died", n_features=6, d_hidden=2, n_inst=2, steps=10, device="cpu")
    trainer = Trainer(config, compiled=False)
    trainer.run(until=5)
    save_session(trainer, sessions / "died", running=True)
    assert session_info(sessions / "died").running
    let_go(sessions / "died")  # the process's lock goes with it
    assert session_info(sessions / "died").interrupted
    assert not session_info(sessions / "alpha").interrupted
    note = load_session(sessions / "died", compiled=False).load_note
    assert note == "its run stopped without saving after step 5 (killed or crashed)"
    assert load_session(sessions / "alpha", compiled=False).load_note is None
    stopped = Trainer(config, compiled=False)
    stopped.run(until=5)  # stopped short of its 10 steps, saved, nobody's
    save_session(stopped, sessions / "stopped")
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        by_name = {row[1]: row for row in rows(app)}
        assert by_name["died"][4] == "5/10" and by_name["died"][5] == "✗ interrupted"
        assert by_name["alpha"][5] == "done"
        assert by_name["stopped"][5] == "stopped"  # the state it was saved in: it goes on


async def test_a_running_session_cannot_be_renamed_or_deleted(sessions: Path) -> None:
    # save_session(running=True) records this process as the writer, which is alive.
    config = RunConfig(name="live", n_features=6, d_hidden=2, n_inst=2, steps=10, device="cpu")
    train(config, sessions / "live", running=True)
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert rows(app)[0][1] == "live"
        assert rows(app)[0][5] == "● running"
        await pilot.press("r")
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, SessionBrowserScreen)
        assert sum("still being trained" in m for m in app.messages) == 2
        assert (sessions / "live" / RECORD_FILE).is_file()


async def test_the_session_open_in_the_app_is_not_renamed_or_deleted(sessions: Path) -> None:
    app = Host(sessions, in_use=sessions / "alpha")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await cursor_to(app, pilot, "alpha")
        await pilot.press("r", "x")
        await pilot.pause()
        assert isinstance(app.screen, SessionBrowserScreen)
        assert sum("open in the app" in m for m in app.messages) == 2
        assert (sessions / "alpha" / RECORD_FILE).is_file()


async def test_compare_needs_two_sessions_and_marks_at_most_two(sessions: Path) -> None:
    break_sessions(sessions)
    app = Host(sessions)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        assert any("compare needs two sessions" in m for m in app.messages)
        await pilot.press("g", "space", "space", "space")  # marks the first three in turn
        await pilot.pause()
        browser = app.screen
        assert isinstance(browser, SessionBrowserScreen)
        assert [p.name for p in browser.marked] == ["beta", "alpha"]
        assert any("unmarked corrupt" in m for m in app.messages)
        assert [row[0] for row in rows(app)] == ["", "◆", "◆", ""]


async def test_compare_shows_both_sessions(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert names(app) == ["beta", "alpha"]
        await pilot.press("g", "space", "c")  # mark beta, the cursor moved on to alpha
        await settle(app, pilot)
        assert isinstance(app.screen, CompareScreen)
        text = screen_text(app)
        for expected in ("beta", "alpha", "60/60", "50/50", "30/5/4", "20/5/4", "D* vs 1/p"):
            assert expected in text
        assert "alpha n=" in text and "beta n=" in text  # both in the D_i chart's legend
        await pilot.resize_terminal(120, 40)  # charts rebuild on resize
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, SessionBrowserScreen)


async def test_compare_survives_a_broken_session(sessions: Path) -> None:
    break_sessions(sessions)
    app = Host(sessions)
    async with app.run_test(size=(80, 24)) as pilot:
        await compare(app, pilot, "pickled", "alpha")
        text = screen_text(app)
        assert "pickled" in text and "not a safetensors" in text
        assert "50/50" in text and "alpha n=" in text
        assert any("not a safetensors file" in m for m in app.messages)


async def test_compare_tells_what_loading_a_session_left_out(sessions: Path) -> None:
    record = json.loads((sessions / "alpha" / RECORD_FILE).read_text())
    step, digest = record["snapshots"]["files"][1]
    (sessions / "alpha" / file_name(step, digest)).write_bytes(b"not a snapshot")
    app = Host(sessions)
    async with app.run_test(size=(120, 30)) as pilot:
        await compare(app, pilot, "beta", "alpha")
        text = screen_text(app)
        assert "50/50" in text and "60/60" in text  # alpha still compared
        note = load_saved(sessions / "alpha").note
        assert note is not None and file_name(step, digest) in note
        assert f"{step:012d}-{digest}" in text  # under the table: the damaged file, named
        assert note in app.messages


async def test_browser_fits_80x24_and_says_when_there_is_nothing(tmp_path: Path) -> None:
    app = Host(tmp_path / "nothing-here")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert "No sessions in" in screen_text(app)
        await pilot.press("enter", "r", "x")
        await pilot.pause()
        assert sum("there is no session" in m for m in app.messages) == 3
        assert isinstance(app.screen, SessionBrowserScreen)
