"""Marking two rows to compare, and moving a table's cursor: what the session browser and the
sweep screen share."""

from __future__ import annotations

from typing import TypeVar

from textual.widgets import DataTable

T = TypeVar("T")
MAX_MARKED = 2  # compare takes two


def toggle_mark(marked: list[T], item: T) -> T | None:
    """Mark `item`, or unmark it if marked; returns the oldest mark if it had to go."""
    if item in marked:
        marked.remove(item)
        return None
    marked.append(item)
    return marked.pop(0) if len(marked) > MAX_MARKED else None


def compare_pair(marked: list[T], cursor: T | None) -> tuple[T, T] | None:
    """The two marked items, or the one marked and the one under the cursor; None if neither."""
    if len(marked) == MAX_MARKED:
        return marked[0], marked[1]
    if len(marked) == 1 and cursor is not None and cursor != marked[0]:
        return marked[0], cursor
    return None


def move_cursor(table: DataTable, delta: int) -> None:
    """Move the row cursor by `delta`, stopping at the first and last rows."""
    if table.row_count:
        table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + delta)))
