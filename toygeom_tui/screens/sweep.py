"""The sweep screen: a sweep's runs in a sortable table (grid values → final figures) above a
chart of one figure against one grid key, a line per value of another key, and, when the grid
has seeds, each instance's best seed and spread for the configuration under the cursor (the
seeds of `train --seeds` are such a sweep). Enter opens a run (any seed can be inspected);
space marks two runs for compare. The record is reread every couple of seconds, so a sweep that
is still running fills in.

Dismisses with the path of the run to open, or None.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.sweep import (
    DONE,
    FIGURE_LABELS,
    FIGURES,
    SweepError,
    SweepInfo,
    SweepRunInfo,
    figure_lines,
    seed_spread,
    sweep_info,
    value_label,
)
from toygeom_tui.screens.compare import CompareScreen
from toygeom_tui.screens.marks import compare_pair, move_cursor, toggle_mark
from toygeom_tui.widgets.sweep.seed_spread import SeedSpread
from toygeom_tui.widgets.sweep.sweep_chart import SweepChart
from toygeom_tui.widgets.sweep.sweep_table import SweepTable, sort_columns, sort_value

RESCAN_SECONDS = 2.0


class SweepScreen(Screen[Path | None]):
    BINDINGS = [
        Binding("enter", "open", "Open run", priority=True, id="sweep.open"),
        Binding("t", "sort", "Sort", id="sweep.sort"),
        Binding("T", "reverse", "Reverse", show=False, id="sweep.reverse"),
        Binding("f", "figure", "Figure", id="sweep.figure"),
        Binding("x", "x_key", "X key", id="sweep.x_key"),
        Binding("l", "line_key", "Lines", id="sweep.line_key"),
        Binding("space", "mark", "Mark", id="sweep.mark"),
        Binding("c", "compare", "Compare", id="sweep.compare"),
        Binding("escape,q", "back", "Back", id="sweep.back"),
        Binding("j", "move(1)", "Down", show=False, id="sweep.down"),
        Binding("k", "move(-1)", "Up", show=False, id="sweep.up"),
        Binding("g", "move(-1_000_000)", "First", show=False, id="sweep.first"),
        Binding("G", "move(1_000_000)", "Last", show=False, id="sweep.last"),
    ]

    DEFAULT_CSS = """
    SweepScreen #sweep-header {
        height: 1; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis;
    }
    SweepScreen SweepTable { height: 1fr; }
    SweepScreen #sweep-bottom { height: 1fr; }
    SweepScreen SweepChart { width: 2fr; border: round $border-blurred; }
    SweepScreen SeedSpread { width: 1fr; min-width: 46; border: round $border-blurred; }
    SweepScreen #sweep-detail {
        height: auto; max-height: 2; padding: 0 1; background: $panel; color: $text-muted;
    }
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.info: SweepInfo | None = None
        self.sort_column = "loss"
        self.reverse = False
        self.figure = "loss"
        self.x_key: str | None = None
        self.line_key: str | None = None
        self.marked: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(f"reading {escape(str(self.path))}…", id="sweep-header")
        yield SweepTable(id="sweep-table")
        with Horizontal(id="sweep-bottom"):
            yield SweepChart(id="sweep-chart")
            yield SeedSpread(id="sweep-seeds")
        yield Static("", id="sweep-detail")
        yield Footer()

    @property
    def table(self) -> SweepTable:
        return self.query_one(SweepTable)

    def on_mount(self) -> None:
        self.table.focus()
        self.load()
        self.set_interval(RESCAN_SECONDS, self._tick)

    def _tick(self) -> None:
        if self.is_current:
            self.load()

    @work(thread=True, exclusive=True, group="sweep-read", exit_on_error=False)
    def load(self) -> None:
        try:
            info: SweepInfo | str = sweep_info(self.path)
        except SweepError as err:
            info = str(err)
        self.app.call_from_thread(self._loaded, info)

    def _loaded(self, info: SweepInfo | str) -> None:
        if not self.is_attached:
            return
        if isinstance(info, str):
            self.query_one("#sweep-header", Static).update(f"[b]cannot read:[/b] {escape(info)}")
            return
        first = self.info is None
        self.info = info
        if first:
            keys = list(info.grid)
            self.x_key = keys[0] if keys else None
            self.line_key = keys[1] if len(keys) > 1 else None
            self.query_one(SeedSpread).display = "seed" in info.grid
        self._redraw()

    # -- drawing -------------------------------------------------------------------------------
    def _redraw(self) -> None:
        info = self.info
        if info is None:
            return
        column = self.sort_column
        keyed = [(sort_value(run, column), run) for run in info.runs]
        order = [run for key, run in sorted(keyed, key=lambda kr: kr[0], reverse=self.reverse)
                 if key[0] != 2] + [run for key, run in keyed if key[0] == 2]  # fmt: skip
        self.table.show(info, order, self.marked)
        if self.x_key is not None:
            lines = figure_lines(info.runs, self.figure, self.x_key, self.line_key)
            self.query_one(SweepChart).show(
                lines, figure=FIGURE_LABELS[self.figure], x_key=self.x_key, line_key=self.line_key
            )
        self._describe()

    def _describe(self) -> None:
        info = self.info
        if info is None:
            return
        label = FIGURE_LABELS.get(self.sort_column, self.sort_column)
        parts = [
            f"sweep {escape(self.path.name)}: {info.done}/{len(info.runs)} runs done",
            f"sorted by {escape(str(label))}{' (reversed)' if self.reverse else ''}",
        ]
        if self.marked:
            parts.append("marked: " + ", ".join(escape(name) for name in self.marked))
        self.query_one("#sweep-header", Static).update(" · ".join(parts))
        run = self._cursor_run()
        detail = ""
        if run is not None:
            detail = escape(str(self.path / run.name))
            if run.error:
                detail += f"\n[b]{run.status}:[/b] {escape(run.error)}"
        self.query_one("#sweep-detail", Static).update(detail)
        if run is not None and "seed" in info.grid:
            others = ",".join(f"{k}={value_label(v)}" for k, v in run.values.items() if k != "seed")
            self.query_one(SeedSpread).show(
                seed_spread(info.runs, run.values), f"seeds of {others or 'the config'}"
            )

    def on_data_table_row_highlighted(self, _: DataTable.RowHighlighted) -> None:
        self._describe()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it; a second click reverses."""
        column = event.column_key.value
        if self.info is None or column not in sort_columns(self.info):
            return
        self.reverse = not self.reverse if column == self.sort_column else False
        self.sort_column = column
        self._redraw()

    def on_data_table_row_selected(self, _: DataTable.RowSelected) -> None:
        self.action_open()  # a click on the highlighted row; the enter key is bound above

    def _cursor_run(self) -> SweepRunInfo | None:
        name = self.table.cursor_name
        if self.info is None or name is None:
            return None
        return next((run for run in self.info.runs if run.name == name), None)

    def _refuse(self, message: str) -> None:
        self.notify(message, title="Not done", severity="warning")

    # -- actions -------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        move_cursor(self.table, delta)

    def action_sort(self) -> None:
        if self.info is None:
            return
        columns = sort_columns(self.info)
        current = columns.index(self.sort_column) if self.sort_column in columns else -1
        self.sort_column = columns[(current + 1) % len(columns)]
        self._redraw()

    def action_reverse(self) -> None:
        self.reverse = not self.reverse
        self._redraw()

    def action_figure(self) -> None:
        self.figure = FIGURES[(FIGURES.index(self.figure) + 1) % len(FIGURES)]
        self._redraw()

    def action_x_key(self) -> None:
        keys = list(self.info.grid) if self.info else []
        if len(keys) < 2:
            self._refuse("the sweep has one grid key; the chart's x axis is that key")
            return
        self.x_key = keys[(keys.index(self.x_key) + 1) % len(keys)]
        if self.line_key == self.x_key:
            self.line_key = next(k for k in keys if k != self.x_key)
        self._redraw()

    def action_line_key(self) -> None:
        """Cycle the key drawn as one line per value through the other keys and none."""
        keys = [k for k in (self.info.grid if self.info else {}) if k != self.x_key]
        choices: list[str | None] = [*keys, None]
        current = choices.index(self.line_key) if self.line_key in choices else -1
        self.line_key = choices[(current + 1) % len(choices)]
        self._redraw()

    def action_open(self) -> None:
        run = self._cursor_run()
        if run is None:
            self._refuse("there is no run to open here")
        elif run.status != DONE:
            self._refuse(f"{run.name} is {run.status}; only a finished run has a session")
        else:
            self.dismiss(self.path / run.name)

    def action_mark(self) -> None:
        run = self._cursor_run()
        if run is None:
            return
        dropped = toggle_mark(self.marked, run.name)
        if dropped is not None:
            self.notify(f"unmarked {dropped}: compare takes two runs")
        self._redraw()
        self.action_move(1)

    def action_compare(self) -> None:
        run = self._cursor_run()
        pair = compare_pair(self.marked, run.name if run is not None else None)
        if pair is None:
            self._refuse("compare needs two runs: mark one with space, then press c on another")
            return
        self.app.push_screen(CompareScreen(self.path / pair[0], self.path / pair[1]))

    def action_back(self) -> None:
        self.dismiss(None)
