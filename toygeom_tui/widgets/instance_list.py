"""Every instance in one row (p, 1/(1−S), loss, ‖W‖²_F, D*), the selected one highlighted.

Not focusable: the dashboard's keys move the selection, so j/k behave the same whichever
widget has focus. The rows shown scroll to keep the selection in view.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual import events
from textual.message import Message
from textual.widget import Widget

HEADER = f"{'#':>3} {'p':>7} {'1/p':>6} {'loss':>8} {'‖W‖²':>6} {'D*':>5}"


class InstanceList(Widget):
    class Clicked(Message):
        def __init__(self, instance: int) -> None:
            super().__init__()
            self.instance = instance

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[str] = []
        self.selected = 0
        self._first = 0  # index of the first instance shown

    def show_instances(
        self,
        feature_probability: np.ndarray,
        loss: np.ndarray | None,
        frobenius_sq: np.ndarray | None,
        d_hidden: int,
        selected: int,
    ) -> None:
        """All arrays (inst,); loss and frobenius_sq None before the first log."""
        n = len(feature_probability)
        loss = loss if loss is not None else np.full(n, np.nan)
        frob = frobenius_sq if frobenius_sq is not None else np.full(n, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            dims_star = d_hidden / frob
        self._rows = [
            f"{i:>3} {p:>7.3g} {1 / p:>6.3g} "
            f"{_num(loss[i], 8)} {_num(frob[i], 6)} {_num(dims_star[i], 5)}"
            for i, p in enumerate(feature_probability.tolist())
        ]
        self.selected = selected
        self.refresh()

    def render(self) -> Text:
        visible = max(self.size.height - 1, 1)
        if self.selected < self._first:
            self._first = self.selected
        elif self.selected >= self._first + visible:
            self._first = self.selected - visible + 1
        self._first = max(0, min(self._first, max(len(self._rows) - visible, 0)))
        text = Text(HEADER, style="bold", no_wrap=True, end="")
        for i in range(self._first, min(self._first + visible, len(self._rows))):
            style = "reverse bold" if i == self.selected else ""
            text.append("\n")
            text.append(self._rows[i], style=style)
        return text

    def on_click(self, event: events.Click) -> None:
        row = event.y - 1 + self._first
        if event.y >= 1 and 0 <= row < len(self._rows):
            self.post_message(self.Clicked(row))


def _num(value: float, width: int) -> str:
    return f"{value:>{width}.3g}" if np.isfinite(value) else f"{'–':>{width}}"
