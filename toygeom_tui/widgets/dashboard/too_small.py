"""Shown instead of the dashboard when the terminal is below the size it can be drawn in."""

from __future__ import annotations

from textual.widgets import Static


class TooSmall(Static):
    """In short lines, in the screen's left half (app.tcss): toasts stack in the right half."""

    def show(self, need: tuple[int, int], have: tuple[int, int]) -> None:
        self.update(
            f"terminal too small\nneed ≥ {need[0]}×{need[1]}, have {have[0]}×{have[1]}\n"
            "enlarge the window\n(q still quits)"
        )
