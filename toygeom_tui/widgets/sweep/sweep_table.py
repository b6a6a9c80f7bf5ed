"""SweepTable: a sweep's runs, one row each: grid values, status and final figures, sortable.

Rows are keyed by run name; the lowest final loss is starred, marked runs (for compare) get ◆.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from engine.sweep import DONE, FIGURE_LABELS, FIGURES, SweepInfo, SweepRunInfo, value_label
from toygeom_tui.series import ORANGE, rgb

MARK = "◆"
BEST = "★"


def sort_columns(info: SweepInfo) -> list[str]:
    """What the table can be sorted by, in the order `t` steps through them: the figures (final
    loss first), then the grid keys."""
    return [*FIGURES, *info.grid]


def sort_value(run: SweepRunInfo, column: str) -> tuple:
    """A sort key: numbers numerically, then other values by label, runs without one (not done)
    last."""
    value = (run.figures or {}).get(column) if column in FIGURES else run.values.get(column)
    if value is None:
        return (2, 0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0, value_label(value))


class SweepTable(DataTable):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.info: SweepInfo | None = None

    @property
    def cursor_name(self) -> str | None:
        """The run under the cursor, None for an empty table."""
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def show(self, info: SweepInfo, order: Sequence[SweepRunInfo], marked: Collection[str]) -> None:
        """All runs in `order`, the cursor kept on the same run."""
        cursor = self.cursor_name
        if self.info is None or list(self.info.grid) != list(info.grid):
            self.clear(columns=True)
            self.add_column(" ", key="mark")
            for key in info.grid:
                self.add_column(key, key=key)
            self.add_column("status", key="status")
            for figure in FIGURES:
                self.add_column(FIGURE_LABELS[figure], key=figure)
        else:
            self.clear()
        self.info = info
        best = info.best
        for run in order:
            self.add_row(*_cells(info, run, run.name in marked, run is best), key=run.name)
        names = [run.name for run in order]
        if cursor in names:
            self.move_cursor(row=names.index(cursor))


def _cells(info: SweepInfo, run: SweepRunInfo, marked: bool, best: bool) -> list[Any]:
    mark = Text((MARK if marked else " ") + (BEST if best else " "), style=f"bold {rgb(ORANGE)}")
    cells: list[Any] = [mark]
    cells += [Text(value_label(run.values.get(key)), justify="right") for key in info.grid]
    cells.append(Text(run.status, style="" if run.status == DONE else "dim"))
    figures = run.figures or {}
    for figure in FIGURES:
        cells.append(Text(_figure_text(figure, figures.get(figure)), justify="right"))
    return cells


def _figure_text(figure: str, value: float | int | None) -> str:
    if value is None:
        return "—"
    return f"{value}" if figure == "on_fractions" else f"{value:.4g}"
