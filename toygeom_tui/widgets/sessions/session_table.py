"""SessionTable: the saved sessions, one row each, newest first; broken ones greyed with why.
A sweep (a folder with a sweep.json) is one row for all its runs.

`scan_sessions` reads only each session.json (and the weights' header) or sweep.json, so a rescan
every few seconds stays cheap; it never raises, whatever is on disk.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual.widgets import DataTable

from engine.config import PRESETS, RunConfig
from engine.session import RECORD_FILE, WEIGHTS_FILE, SessionError, SessionInfo, session_info
from engine.sweep import SWEEP_FILE, SweepError, SweepInfo, is_sweep, sweep_info
from toygeom_tui.series import BLUISH_GREEN, VERMILLION, rgb

COLUMNS = (
    ("mark", " "),
    ("name", "name"),
    ("config", "config"),
    ("sizes", "feats/hid/inst"),
    ("steps", "steps"),
    ("state", "state"),  # before the rest: what a narrow terminal keeps in view
    ("loss", "loss Σ inst"),  # the final loss summed over instances, as train prints it
    ("modified", "modified"),
    ("problem", "problem"),
)
MARK = "◆"
RUNNING = "● running"
INTERRUPTED = "✗ interrupted"


@dataclass(frozen=True)
class SessionRow:
    """One listed directory: its summary (a session's or a sweep's), or the one-line reason it
    cannot be read."""

    path: Path
    info: SessionInfo | None
    problem: str | None
    modified: float  # newest mtime of its files, seconds since the epoch
    sweep: SweepInfo | None = None

    @property
    def readable(self) -> bool:
        return self.info is not None or self.sweep is not None

    @property
    def running(self) -> bool:
        return self.info is not None and self.info.running

    @property
    def short_problem(self) -> str:
        """The problem without the leading directory path, which the name column already shows."""
        problem = self.problem or ""
        prefix = str(self.path)
        return self.path.name + problem[len(prefix) :] if problem.startswith(prefix) else problem


def scan_sessions(root: Path, extra: Sequence[Path] = ()) -> list[SessionRow]:
    """Every subdirectory of `root` holding a session.json or a sweep.json, plus `extra`, newest
    first."""
    candidates: list[Path] = []
    try:
        children = sorted(root.iterdir())
    except OSError:
        children = []  # no sessions folder yet, or unreadable: nothing to list
    for child in children:
        try:
            if child.is_dir() and any((child / f).exists() for f in (RECORD_FILE, SWEEP_FILE)):
                candidates.append(child)
        except OSError:
            continue
    seen: set[Path] = set()
    rows = []
    for path in [*candidates, *map(Path, extra)]:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            rows.append(read_row(path))
    return sorted(rows, key=lambda row: row.modified, reverse=True)


def read_row(path: Path) -> SessionRow:
    info, sweep, problem = None, None, None
    try:
        if is_sweep(path):
            sweep = sweep_info(path)
        else:
            info = session_info(path)
    except (SessionError, SweepError) as err:
        problem = str(err)
    except Exception as err:  # a file from anywhere must never take the browser down
        problem = f"{path}: unreadable ({type(err).__name__}: {err})"
    problem = " ".join((problem or "").split()) or None
    return SessionRow(path, info, problem, _modified(path), sweep)


def _modified(path: Path) -> float:
    """The newest mtime of its record, weights or sweep file; the folder's own only where it has
    none of them: a run's socket or lock file coming and going (opening a session whose run
    died removes its socket) changes the folder, not the session."""
    times = []
    for candidate in (path / RECORD_FILE, path / WEIGHTS_FILE, path / SWEEP_FILE):
        try:
            times.append(candidate.stat().st_mtime)
        except OSError:
            continue
    if not times:
        with contextlib.suppress(OSError):
            times.append(path.stat().st_mtime)
    return max(times, default=0.0)


def relative_time(timestamp: float, now: float) -> str:
    """'just now', '42 s ago', '3 min ago', '5 h ago', '2 d ago', then the date."""
    if timestamp <= 0:
        return "?"
    ago = now - timestamp
    if -60 < ago < 10:
        return "just now"
    for unit, seconds in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if 0 < ago < 30 * 86400 and ago >= seconds:
            return f"{int(ago // seconds)} {unit} ago"
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


class SessionTable(DataTable):
    """Rows keyed by the session's path; redrawing keeps the cursor on the same session."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self._shown: dict[str, tuple[Text, ...]] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def cursor_key(self) -> str | None:
        """The path (as str) of the session under the cursor, None for an empty table."""
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, rows: Sequence[SessionRow], marked: Collection[Path], now: float) -> None:
        """Show `rows` in order; only changed cells are redrawn when the list itself is the same."""
        wanted = {str(row.path): _cells(row, row.path in marked, now) for row in rows}
        if list(wanted) == list(self._shown):
            for key, cells in wanted.items():
                for (column, _), old, new in zip(COLUMNS, self._shown[key], cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, new, update_width=True)
        else:
            cursor = self.cursor_key
            self.clear()
            for key, cells in wanted.items():
                self.add_row(*cells, key=key)
            if cursor in wanted:
                self.move_cursor(row=list(wanted).index(cursor))
        self._shown = wanted


def _cells(row: SessionRow, marked: bool, now: float) -> tuple[Text, ...]:
    mark = Text(MARK if marked else "", style="bold")
    name = Text(row.path.name)
    modified = Text(relative_time(row.modified, now))
    if row.sweep is not None:
        config, sizes, steps, loss = _sweep_cells(row.sweep)
        return (mark, name, config, sizes, steps, Text("sweep"), loss, modified, Text(""))
    if row.info is None:
        blank = Text("—", style="dim")
        name.stylize("dim")
        modified.stylize("dim")
        problem = Text(row.short_problem, style="dim")
        return (mark, name, blank, blank, blank, blank, blank, modified, problem)
    info, config = row.info, row.info.config
    loss = f"{info.final_loss:.4g}" if info.final_loss is not None else "—"
    return (
        mark,
        name,
        Text(config.name),
        Text(f"{config.n_features}/{config.d_hidden}/{config.n_inst}", justify="right"),
        Text(f"{info.step:,}/{info.total_steps:,}", justify="right"),
        _state(info),
        Text(loss, justify="right"),
        modified,
        Text(""),
    )


def _state(info: SessionInfo) -> Text:
    """Running, interrupted (the row the app's "press o to resume it" means), done, or the
    state the run was saved in (stopped, paused: it goes on from there; a diverged run's
    weights are never saved)."""
    if info.running:
        return Text(RUNNING, style=f"bold {rgb(BLUISH_GREEN)}")
    if info.interrupted:
        return Text(INTERRUPTED, style=f"bold {rgb(VERMILLION)}")
    if info.step >= info.total_steps:
        return Text("done")
    return Text(info.state or "", style="dim")


def _sweep_cells(sweep: SweepInfo) -> tuple[Text, ...]:
    """config, sizes, steps and loss cells of a sweep: its grid, its first run's sizes, how many
    runs are done, and the best final loss."""
    grid = " × ".join(f"{key}×{len(values)}" for key, values in sweep.grid.items())
    base = sweep.base.get("preset") or sweep.base.get("name") or "sweep"
    start = PRESETS.get(sweep.base.get("preset", ""), RunConfig()).to_dict() | sweep.base
    sizes = "/".join(
        "·" if key in sweep.grid else str(start.get(key))  # "·": the grid varies it
        for key in ("n_features", "d_hidden", "n_inst")
    )
    best = sweep.best
    loss = f"{best.figures['loss']:.4g} best" if best is not None and best.figures else "—"
    return (
        Text(f"{base}: {grid}"),
        Text(sizes, justify="right"),
        Text(f"{sweep.done}/{len(sweep.runs)} runs", justify="right"),
        Text(loss, justify="right"),
    )
