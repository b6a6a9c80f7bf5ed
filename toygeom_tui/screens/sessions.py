"""The session browser: every saved session with its sizes, steps, loss and age; open, rename,
delete and compare them; a sweep is one entry, and opening it shows the sweep screen. A thread
rescans every couple of seconds so running sessions move.

Dismisses with the path of the session to open, or None.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Input, Static
from textual.worker import get_current_worker

from engine.session import RECORD_FILE, SessionError, session_info
from toygeom_tui.screens.compare import CompareScreen
from toygeom_tui.screens.marks import compare_pair, move_cursor, toggle_mark
from toygeom_tui.screens.sweep import SweepScreen
from toygeom_tui.widgets.sessions.session_table import SessionRow, SessionTable, scan_sessions

RESCAN_SECONDS = 2.0


def rename_problem(path: Path, name: str) -> str | None:
    """Why `path` cannot be renamed to `name` (a sibling), or None if it can."""
    if not name.strip():
        return "the new name is empty"
    if name != name.strip():
        return "the new name starts or ends with a space"
    if "/" in name or (os.altsep and os.altsep in name) or "\0" in name:
        return "a name cannot contain '/'"
    if name in (".", ".."):
        return f"{name!r} is not a usable name"
    if name == path.name:
        return "that is already its name"
    target = path.parent / name
    if target.exists() or target.is_symlink():
        return f"{target} already exists"
    return None


def _still_running(path: Path) -> bool:
    """Asked afresh before a rename or delete: the listing may be two seconds old."""
    try:
        return session_info(path).running
    except SessionError:
        return False


class SessionBrowserScreen(Screen[Path | None]):
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, id="sessions.open"),
        Binding("space", "mark", "Mark", id="sessions.mark"),
        Binding("c", "compare", "Compare", id="sessions.compare"),
        Binding("r", "rename", "Rename", id="sessions.rename"),
        Binding("x,delete", "delete", "Delete", id="sessions.delete"),
        Binding("f5,ctrl+r", "rescan", "Rescan", id="sessions.rescan"),
        Binding("escape,q", "back", "Back", id="sessions.back"),
        Binding("j", "move(1)", "Down", show=False, id="sessions.down"),
        Binding("k", "move(-1)", "Up", show=False, id="sessions.up"),
        Binding("g", "move(-1_000_000)", "First", show=False, id="sessions.first"),
        Binding("G", "move(1_000_000)", "Last", show=False, id="sessions.last"),
    ]

    DEFAULT_CSS = """
    SessionBrowserScreen #sessions-header {
        height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis;
    }
    SessionBrowserScreen SessionTable { height: 1fr; }
    SessionBrowserScreen #sessions-detail {
        height: auto; max-height: 3; padding: 0 1; background: $panel; color: $text-muted;
    }
    """

    def __init__(
        self, root: Path, extra: Sequence[Path] = (), *, in_use: Path | None = None
    ) -> None:
        """`in_use`: the session the app has open, which is not renamed or deleted under it."""
        super().__init__()
        self.root = Path(root)
        self.extra = [Path(p) for p in extra]
        self.in_use = Path(in_use).resolve() if in_use is not None else None
        self.rows: dict[Path, SessionRow] = {}  # as last scanned, newest first
        self.marked: list[Path] = []  # oldest mark first
        self.scanned = False

    def compose(self) -> ComposeResult:
        yield Static("", id="sessions-header")
        yield SessionTable(id="sessions-table")
        yield Static("", id="sessions-detail")
        yield Footer()

    @property
    def table(self) -> SessionTable:
        return self.query_one(SessionTable)

    def on_mount(self) -> None:
        self._describe()
        self.table.focus()
        self.set_interval(RESCAN_SECONDS, self._tick)

    def _tick(self) -> None:
        if self.is_current:  # not while a dialog or the compare screen covers the list
            self.scan()

    def on_screen_resume(self) -> None:
        self.scan()  # on first showing, and on coming back from a dialog or compare

    # -- scanning ------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="session-scan", exit_on_error=False)
    def scan(self) -> None:
        rows = scan_sessions(self.root, self.extra)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_rows, rows)

    def _show_rows(self, rows: list[SessionRow]) -> None:
        if not self.is_attached:
            return  # a late scan after the browser closed
        self.scanned = True
        self.rows = {row.path: row for row in rows}
        self.marked = [p for p in self.marked if p in self.rows]
        self.table.show(rows, self.marked, time.time())
        self._describe()

    def _describe(self) -> None:
        where = f"in {escape(str(self.root))}/"
        if not self.scanned:
            header = f"scanning for sessions {where}…"
        elif not self.rows:
            header = f"No sessions {where} yet"
        else:
            # Counts first: a long folder path is what gets cut off at the right edge.
            broken = sum(not row.readable for row in self.rows.values())
            count = len(self.rows)
            parts = [f"{count} session" + ("s" if count != 1 else "")]
            if broken:
                parts.append(f"{broken} unreadable")
            if self.marked:
                parts.append("marked: " + ", ".join(escape(p.name) for p in self.marked))
            header = " · ".join([*parts, where])
        self.query_one("#sessions-header", Static).update(header)
        row = self._cursor_row()
        detail = ""
        if row is not None:
            detail = escape(str(row.path))
            if row.problem:
                detail += f"\n[b]problem:[/b] {escape(row.problem)}"
        self.query_one("#sessions-detail", Static).update(detail)

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._describe()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_open()  # a click on the highlighted row; the enter key is bound above

    def _cursor_row(self) -> SessionRow | None:
        key = self.table.cursor_key
        return self.rows.get(Path(key)) if key is not None else None

    def _busy(self, path: Path, doing: str) -> str | None:
        """Why `path` must not be renamed or deleted now, or None."""
        if self.in_use is not None and path.resolve() == self.in_use:
            return f"{path.name} is open in the app; open another session first, then {doing} it"
        if _still_running(path):
            return f"{path.name} is still being trained; {doing} it when it stops"
        return None

    def _refuse(self, message: str) -> None:
        self.notify(message, title="Not done", severity="warning")

    # -- actions -------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        move_cursor(self.table, delta)

    def action_rescan(self) -> None:
        self.scan()

    def action_back(self) -> None:
        self.dismiss(None)

    def action_open(self) -> None:
        row = self._cursor_row()
        if row is None:
            self._refuse("there is no session to open here")
        elif row.problem is not None:
            self._refuse(f"cannot open {row.path.name}: {row.short_problem}")
        elif row.sweep is not None:
            self.app.push_screen(SweepScreen(row.path), self._opened_from_sweep)
        else:
            self.dismiss(row.path)

    def _opened_from_sweep(self, run: Path | None) -> None:
        if run is not None:
            self.dismiss(run)

    def action_mark(self) -> None:
        row = self._cursor_row()
        if row is None:
            self._refuse("there is no session to mark here")
            return
        dropped = toggle_mark(self.marked, row.path)
        if dropped is not None:
            self.notify(f"unmarked {dropped.name}: compare takes two sessions")
        self.table.show(list(self.rows.values()), self.marked, time.time())
        self.action_move(1)
        self._describe()

    def action_compare(self) -> None:
        cursor = self._cursor_row()
        pair = compare_pair(self.marked, cursor.path if cursor is not None else None)
        if pair is None:
            self._refuse("compare needs two sessions: mark one with space, then press c on another")
            return
        self.app.push_screen(CompareScreen(*pair))

    def action_rename(self) -> None:
        row = self._cursor_row()
        if row is None:
            self._refuse("there is no session to rename here")
        elif busy := self._busy(row.path, "rename"):
            self._refuse(busy)
        else:
            path = row.path
            self.app.push_screen(RenameScreen(path), lambda name: self._rename(path, name))

    def _rename(self, path: Path, name: str | None) -> None:
        if name is None:
            return
        problem = rename_problem(path, name)
        if problem is not None:
            self._refuse(f"cannot rename {path.name}: {problem}")
            return
        if busy := self._busy(path, "rename"):
            self._refuse(busy)
            return
        target = path.parent / name
        try:
            os.rename(path, target)  # atomic within a folder
        except OSError as err:
            self._refuse(f"cannot rename {path.name}: {err.strerror or err}")
            return
        self.extra = [target if p == path else p for p in self.extra]
        self.marked = [target if p == path else p for p in self.marked]
        self.notify(f"renamed {path.name} to {name}")
        self.scan()

    def action_delete(self) -> None:
        row = self._cursor_row()
        if row is None:
            self._refuse("there is no session to delete here")
        elif not (row.path / RECORD_FILE).is_file():
            # An extra directory may be anything the user named: only a session is deleted.
            self._refuse(f"{row.path.name} has no {RECORD_FILE}; not a session, not deleting")
        elif busy := self._busy(row.path, "delete"):
            self._refuse(busy)
        else:
            path = row.path
            question = (
                f"Delete [b]{escape(path.name)}[/b] and all its files?\n{escape(str(path))}\n"
                "This cannot be undone."
            )
            confirm = ConfirmScreen("Delete?", question, yes="Delete")
            self.app.push_screen(confirm, lambda yes: self._delete(path, yes))

    def _delete(self, path: Path, yes: bool | None) -> None:
        if not yes:
            self.notify(f"kept {path.name}")
            return
        if busy := self._busy(path, "delete"):
            self._refuse(busy)
            return
        try:
            shutil.rmtree(path)
        except OSError as err:
            self._refuse(f"cannot delete {path.name}: {err.strerror or err}")
            self.scan()
            return
        self.extra = [p for p in self.extra if p != path]
        self.marked = [p for p in self.marked if p != path]
        self.notify(f"deleted {path.name}")
        self.scan()


class RenameScreen(ModalScreen[str | None]):
    """Asks for a new name; says why a name will not do, while it is typed."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="rename.cancel")]

    DEFAULT_CSS = """
    RenameScreen { align: center middle; }
    RenameScreen #rename-dialog {
        width: 60; max-width: 100%; height: auto;
        border: round $primary; background: $panel; padding: 0 1;
    }
    RenameScreen #rename-problem { color: $error; height: auto; }
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def compose(self) -> ComposeResult:
        with Vertical(id="rename-dialog") as dialog:
            dialog.border_title = f"Rename {self.path.name}"
            dialog.border_subtitle = "enter rename · esc cancel"
            yield Input(self.path.name, id="rename-input")
            yield Static("", id="rename-problem")

    def on_input_changed(self, event: Input.Changed) -> None:
        problem = rename_problem(self.path, event.value)
        shown = "" if problem is None or event.value == self.path.name else problem
        self.query_one("#rename-problem", Static).update(escape(shown))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        problem = rename_problem(self.path, event.value)
        if problem is None:
            self.dismiss(event.value)
        else:
            self.query_one("#rename-problem", Static).update(escape(problem))
            self.notify(f"cannot rename {self.path.name}: {problem}", severity="warning")

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question; only an explicit yes dismisses with True."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no"),
    ]

    DEFAULT_CSS = """
    ConfirmScreen { align: center middle; }
    ConfirmScreen #confirm-dialog {
        width: 64; max-width: 100%; height: auto;
        border: round $error; background: $panel; padding: 0 1;
    }
    ConfirmScreen #confirm-buttons { height: 1; margin-top: 1; align-horizontal: right; }
    ConfirmScreen #confirm-buttons Button { margin-left: 2; }
    """

    def __init__(self, title: str, question: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text, self.question, self.yes_label = title, question, yes

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-dialog") as dialog:
            dialog.border_title = self.title_text
            dialog.border_subtitle = "y yes · n/esc no"
            yield Static(self.question)
            with Horizontal(id="confirm-buttons"):
                yield Button("No", id="no", compact=True)
                yield Button(self.yes_label, id="yes", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
