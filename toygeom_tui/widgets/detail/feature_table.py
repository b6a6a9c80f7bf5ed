"""FeatureTable: every feature of one instance, sortable, searchable, dead features collapsible.

Rows are rebuilt from scratch on each refresh (a few hundred at most); the cursor follows the
feature, not the row number, so a re-sort or a training update keeps it on the same feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from engine.geometry import DIFFUSE, NAME_TOL, REPRESENTED, FeatureGeometry

DEAD_ROW = "dead"
# sort name → (column label, key, descending); NaN sorts last either way.
SORTS: dict[str, tuple[str, Any, bool]] = {
    "index": ("#", lambda f: f.index, False),
    "dimensionality": ("D_i", lambda f: f.dimensionality, True),
    "norm": ("‖W_i‖", lambda f: f.norm, True),
}
COLUMNS = (("index", "#"), ("norm", "‖W_i‖"), ("dimensionality", "D_i"), ("fraction", "≈ frac"),
           ("distance", "Δ"), ("configuration", "configuration"), ("component", "comp"),
           ("partners", "top partners (index:cos)"))  # fmt: skip


def is_dead(feature: FeatureGeometry) -> bool:
    """Not represented: no node of the geometry graph (engine.geometry decides, one rule)."""
    return feature.component < 0


def fraction_cell(feature: FeatureGeometry) -> Text:
    """The nearest named fraction, dim where D_i sits off it (Δ ≥ NAME_TOL, as for names): a
    mixed feature's nearest fraction is only the closest label, not a level it reached."""
    on_line = feature.fraction_distance < NAME_TOL
    return Text(feature.nearest_fraction, style="" if on_line else "dim")


_SHORT = {"dedicated dimension": "dedicated dim", DIFFUSE: "diffuse"}


def configuration_cell(feature: FeatureGeometry) -> str:
    """The configuration as the table shows it, short enough that the columns after it fit:
    'mixed 64 in 20d' for 'mixed (64 features in 20 dims)'. The panel below gives the full name."""
    name = feature.configuration
    kind = name.split(" (", 1)[0]
    if kind in ("mixed", "uniform"):  # named by their counts, the component's
        return f"{kind} {feature.component_size} in {feature.component_rank}d"
    return _SHORT.get(name, name)


def partners_text(feature: FeatureGeometry, n: int = 3) -> str:
    """'17:−0.98 3:+0.41': the strongest partners with signed cosines."""
    return " ".join(f"{p.index}:{p.cosine:+.2f}".replace("-", "−") for p in feature.partners[:n])


def matches(feature: FeatureGeometry, query: str) -> bool:
    """A query is a feature index, or text found in the configuration or fraction label."""
    query = query.strip().lower()
    if not query:
        return True
    if query.isdigit():
        return feature.index == int(query)
    return query in feature.configuration.lower() or query in str(feature.nearest_fraction).lower()


def _sort_key(value: float, descending: bool) -> tuple[bool, float]:
    finite = isinstance(value, int) or math.isfinite(value)
    return (not finite, (-value if descending else value) if finite else 0.0)


class FeatureTable(Vertical):
    """The feature rows plus a search box shown by `open_search`. Posts `Highlighted`."""

    DEFAULT_CSS = """
    FeatureTable { height: 1fr; }
    FeatureTable #feature-search { display: none; height: 1; }
    FeatureTable DataTable { height: 1fr; }
    """

    class Highlighted(Message):
        """The cursor moved to `feature` (None on the collapsed dead row or an empty table)."""

        def __init__(self, feature: int | None) -> None:
            super().__init__()
            self.feature = feature

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features: list[FeatureGeometry] = []
        self.sort = "index"
        self.query_text = ""
        self.show_dead = False
        self.selected: int | None = None

    def compose(self) -> ComposeResult:
        yield Input(placeholder="find: feature index or configuration (enter/esc)",
                    id="feature-search", compact=True)  # fmt: skip
        table: DataTable = DataTable(id="features", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table

    @property
    def table(self) -> DataTable:
        return self.query_one("#features", DataTable)

    def show(self, features: Sequence[FeatureGeometry]) -> None:
        self.features = list(features)
        self._rebuild()

    def shown_features(self) -> list[int]:
        """Feature indices in row order (the collapsed dead row excluded)."""
        return [int(key.value) for key in self.table.rows if key.value != DEAD_ROW]

    def cycle_sort(self) -> None:
        names = list(SORTS)
        self.set_sort(names[(names.index(self.sort) + 1) % len(names)])

    def set_sort(self, name: str) -> None:
        self.sort = name
        self._rebuild()

    def toggle_dead(self) -> None:
        self.show_dead = not self.show_dead
        self._rebuild()

    def open_search(self) -> None:
        search = self.query_one("#feature-search", Input)
        # Shown and focused now, not after the next style update and the queued focus: keys
        # typed right after "/" (one burst from the terminal: "/2/5") go to the box, not the table.
        search.display = True
        self.screen.set_focus(search)

    def close_search(self, clear: bool) -> None:
        search = self.query_one("#feature-search", Input)
        if clear:
            search.value = ""
            self.query_text = ""
            self._rebuild()
        if not self.query_text:
            search.display = False
        self.table.focus()

    @property
    def searching(self) -> bool:
        # The screen's focus, not the box's has_focus, which follows once the box handles its
        # Focus event: a "/" typed right after the one that opened the box belongs in it.
        return self.screen.focused is self.query_one("#feature-search", Input)

    def move(self, rows: int) -> None:
        table = self.table
        if table.row_count:
            table.move_cursor(row=max(0, min(table.row_count - 1, table.cursor_row + rows)))

    def _ordered(self) -> tuple[list[FeatureGeometry], int]:
        """The rows to show, sorted, and how many dead features are collapsed away."""
        label, key, descending = SORTS[self.sort]
        wanted = [f for f in self.features if matches(f, self.query_text)]
        wanted.sort(key=lambda f: _sort_key(key(f), descending))
        if self.show_dead:
            return wanted, 0
        alive = [f for f in wanted if not is_dead(f)]
        return alive, len(wanted) - len(alive)

    def _rebuild(self) -> None:
        table = self.table
        rows, n_dead = self._ordered()
        keep = self.selected
        table.clear()
        for f in rows:
            table.add_row(
                str(f.index), f"{f.norm:.3f}", f"{f.dimensionality:.3f}", fraction_cell(f),
                f"{f.fraction_distance:.3f}", configuration_cell(f), f"{f.component}"
                + (f" ({f.component_size})" if f.component_size > 1 else ""),
                partners_text(f), key=str(f.index),
            )  # fmt: skip
        if n_dead:
            # Its count in the configuration column (not the index column, which it would
            # widen), the why in the last one: a long text there would widen the configuration
            # column and push comp and the partners off an 80- or 120-column table.
            cells = ["…"] + [""] * (len(COLUMNS) - 1)
            keys = [key for key, _ in COLUMNS]
            cells[keys.index("configuration")] = f"{n_dead} not represented"
            cells[keys.index("partners")] = f"‖W_i‖² ≤ {REPRESENTED}; d shows them"
            table.add_row(*cells, key=DEAD_ROW)
        label = SORTS[self.sort][0]
        self.border_title = f"features · sorted by {label}" + (" ↓" if SORTS[self.sort][2] else "")
        if self.query_text:
            self.border_title += f" · matching {self.query_text!r}"
        if keep is not None and str(keep) in table.rows:
            table.move_cursor(row=table.get_row_index(str(keep)), animate=False)
        self._announce()

    def _announce(self) -> None:
        """Post Highlighted if the feature under the cursor changed."""
        table = self.table
        feature = None
        if table.row_count:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
            feature = None if key == DEAD_ROW else int(key)
        if feature != self.selected:
            self.selected = feature
            self.post_message(self.Highlighted(feature))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self._announce()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        if event.column_key.value in SORTS:
            self.set_sort(str(event.column_key.value))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_text = event.value
        self._rebuild()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.close_search(clear=False)
