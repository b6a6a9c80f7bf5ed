"""Every instance in one row (p, 1/(1−S), loss, ‖W‖²_F, D*), the selected one highlighted.
When the run is one seed of a group (engine.seeds), each row also has the instance's best seed,
marked ★ where that is the seed shown, its final loss and the worst seed's (the spread).

Not focusable: the dashboard's keys move the selection, so j/k behave the same whichever
widget has focus. The rows shown scroll to keep the selection in view. Drawn line by line
(Textual's line API), so an update repaints only the lines whose text or highlight changed.
"""

from __future__ import annotations

import numpy as np
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from engine.geometry import dims_per_feature_of
from engine.seeds import SeedGroup

_PLAIN, _SELECTED = Style(bold=True), Style(reverse=True, bold=True)
HEADER = f"{'#':>3} {'p':>7} {'1/p':>6} {'loss':>8} {'‖W‖²':>6} {'D*':>5}"
SEEDS_HEADER = f" {'seed':>5} {'best':>8} {'worst':>8}"  # the best seed, its loss, the worst's
BEST_MARK = "★"  # the seed shown is this instance's best


class InstanceList(Widget):
    class Clicked(Message):
        def __init__(self, instance: int) -> None:
            super().__init__()
            self.instance = instance

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[str] = []
        self._seed_columns: list[str] | None = None  # per instance, when the run has seeds
        self.selected = 0
        self._first = 0  # index of the first instance shown
        self._lines: list[tuple[str, bool]] = []  # what each screen line shows: text, selected
        self._shown_for: object = None  # (size, theme) the screen's lines were drawn for
        self._styles = (Style(), _PLAIN, _SELECTED)  # blank, row, selected row (with the theme's)

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
        dims_star = dims_per_feature_of(frob, d_hidden)
        self._rows = [
            f"{i:>3} {p:>7.3g} {1 / p:>6.3g} "
            f"{_num(loss[i], 8)} {_num(frob[i], 6)} {_num(dims_star[i], 5)}"
            for i, p in enumerate(feature_probability.tolist())
        ]
        if self._seed_columns is not None:
            blank = " " * len(SEEDS_HEADER)
            columns = self._seed_columns
            self._rows = [row + (columns[i] if i < len(columns) else blank)
                          for i, row in enumerate(self._rows)]  # fmt: skip
        self.select(selected)

    def show_seeds(self, group: SeedGroup | None) -> None:
        """The seed columns from `group` (None: none, the list as without seeds); they join the
        rows at the next show_instances. Class -seeds widens the list to hold them."""
        self.set_class(group is not None, "-seeds")
        if group is None:
            self._seed_columns = None
            return
        self._seed_columns = [
            f" {_seed(one.best_seed, group.is_best(one.instance))}"
            f" {_num(one.best_loss, 8)} {_num(one.worst_loss, 8)}"
            for one in group.spread
        ]

    def select(self, selected: int) -> None:
        """Highlight instance `selected` (scrolled into view); repaints only changed lines."""
        self.selected = selected
        if not self.is_attached:
            return  # laid out when first rendered
        old, self._lines = self._lines, self._visible_lines()
        if self._shown_for != (self.size, self.app.theme) or len(old) != len(self._lines):
            self.refresh()
            return
        width = self.size.width
        changed = [y for y, (a, b) in enumerate(zip(old, self._lines, strict=True)) if a != b]
        if changed:
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    def _visible_lines(self) -> list[tuple[str, bool]]:
        visible = max(self.size.height - 1, 1)
        if self.selected < self._first:
            self._first = self.selected
        elif self.selected >= self._first + visible:
            self._first = self.selected - visible + 1
        self._first = max(0, min(self._first, max(len(self._rows) - visible, 0)))
        shown = range(self._first, min(self._first + visible, len(self._rows)))
        header = HEADER if self._seed_columns is None else HEADER + SEEDS_HEADER
        return [(header, False)] + [(self._rows[i], i == self.selected) for i in shown]

    def render_line(self, y: int) -> Strip:
        key = (self.size, self.app.theme)
        if key != self._shown_for:  # resized (or a new theme): lay the lines out again
            self._shown_for, self._lines = key, self._visible_lines()
            base = self.rich_style
            self._styles = (base, base + _PLAIN, base + _SELECTED)
        base, plain, selected_style = self._styles
        if y >= len(self._lines):
            return Strip.blank(self.size.width, base)
        text, selected = self._lines[y]
        return Strip([Segment(text, selected_style if selected else plain)]).crop(
            0, self.size.width
        )

    def on_click(self, event: events.Click) -> None:
        row = event.y - 1 + self._first
        if event.y >= 1 and 0 <= row < len(self._rows):
            self.post_message(self.Clicked(row))


def _num(value: float, width: int) -> str:
    return f"{value:>{width}.3g}" if np.isfinite(value) else f"{'–':>{width}}"


def _seed(seed: object, marked: bool) -> str:
    """A seed in 5 columns, ★ before it if `marked`; – where no seed has a loss (a longer seed
    pushes the row out)."""
    text = "–" if seed is None else f"{BEST_MARK if marked else ''}{seed}"
    return f"{text:>5}"
