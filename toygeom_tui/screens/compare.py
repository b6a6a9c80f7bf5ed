"""Two sessions side by side: a table of what they are, their D* curves and D_i distributions.

Both load in a thread; one that fails shows its one-line error in the table, the other is
still drawn. What loading left out of one that loads (a damaged snapshot file) is told under
the table, as opening the session would tell it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Static

from engine.config import RunConfig, resolve_feature_probability
from engine.geometry import dimensionality, dims_per_feature, feature_norms
from engine.session import SessionError, load_saved
from toygeom_tui.series import rgb
from toygeom_tui.widgets.sessions.compare_chart import (
    SERIES_STYLES,
    DimsSpreadCompareChart,
    DimsSpreadSeries,
    DimsStarCompareChart,
    DimsStarSeries,
)

REPRESENTED_NORM = 0.3  # ‖W_i‖ above this: the feature is represented, not dead


@dataclass(frozen=True)
class ComparedSession:
    """What the compare screen shows of one session, or why it could not be loaded."""

    path: Path
    error: str | None = None
    config: RunConfig | None = None
    step: int = 0
    total_steps: int = 0
    final_loss: float | None = None
    dims_star: DimsStarSeries | None = None
    dims_spread: DimsSpreadSeries | None = None
    note: str | None = None  # what loading found and left out, if anything (SavedSession.note)


def load_compared(path: Path) -> ComparedSession:
    """Load a session and measure its geometry; never raises (runs in a worker thread)."""
    try:
        saved = load_saved(path)
    except SessionError as err:
        return ComparedSession(path, error=str(err))
    except Exception as err:  # a file from anywhere must never take the app down
        return ComparedSession(path, error=f"{path}: cannot load ({type(err).__name__}: {err})")
    W = saved.W  # (inst hidden feats)
    config = saved.config
    inverse_p = 1.0 / resolve_feature_probability(config).mean(dim=1).double().numpy()
    represented = feature_norms(W) > REPRESENTED_NORM  # (inst feats)
    loss = saved.latest_loss
    final = float(np.sum(loss)) if loss is not None and np.isfinite(loss).all() else None
    return ComparedSession(
        path,
        config=config,
        step=saved.step,
        total_steps=saved.total_steps,
        final_loss=final,
        dims_star=DimsStarSeries(path.name, inverse_p, dims_per_feature(W).double().numpy()),
        dims_spread=DimsSpreadSeries(path.name, dimensionality(W)[represented].double().numpy()),
        note=saved.note,
    )


class CompareScreen(Screen):
    BINDINGS = [Binding("escape,q", "back", "Back", id="compare.back")]

    DEFAULT_CSS = """
    CompareScreen #compare-table { height: auto; padding: 0 1; background: $panel; }
    CompareScreen #compare-charts { height: 1fr; }
    CompareScreen #compare-charts > * { width: 1fr; border: round $border-blurred; }
    """

    def __init__(self, a: Path, b: Path) -> None:
        super().__init__()
        self.paths = (Path(a), Path(b))
        self.sessions: tuple[ComparedSession, ...] | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._table(), id="compare-table")
        with Horizontal(id="compare-charts"):
            yield DimsStarCompareChart(id="compare-dims-star")
            yield DimsSpreadCompareChart(id="compare-dims-spread")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DimsStarCompareChart).border_title = "D* vs 1/p"
        spread = self.query_one(DimsSpreadCompareChart)
        spread.border_title = f"D_i, features with ‖W_i‖ > {REPRESENTED_NORM}"
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def load(self) -> None:
        sessions = tuple(load_compared(path) for path in self.paths)
        self.app.call_from_thread(self._show, sessions)

    def _show(self, sessions: tuple[ComparedSession, ...]) -> None:
        if not self.is_attached:
            return
        self.sessions = sessions
        self.query_one("#compare-table", Static).update(self._table())
        self.query_one(DimsStarCompareChart).show([s.dims_star for s in sessions])
        self.query_one(DimsSpreadCompareChart).show([s.dims_spread for s in sessions])
        for session in sessions:
            if session.error is not None:
                self.notify(session.error, title="Cannot compare", severity="error")
            elif session.note is not None:
                self.notify(session.note, title=session.path.name, severity="warning")

    def _table(self) -> Group:
        """The two sessions, one row each; a session that failed gets a line saying why, and
        one that loaded with something left out a line saying what."""
        problems = []
        table = Table(box=None, padding=(0, 1), expand=True)
        for header in ("", "name", "config", "steps", "loss Σ inst", "feats/hid/inst"):
            table.add_column(header, no_wrap=True, justify="left")
        for index, path in enumerate(self.paths):
            colour, marker = SERIES_STYLES[index]
            key = Text(marker, style=f"bold {rgb(colour)}")
            session = self.sessions[index] if self.sessions is not None else None
            if session is None:
                table.add_row(key, path.name, Text("loading…", style="dim"))
            elif session.error is not None or session.config is None:
                table.add_row(key, path.name, Text("cannot load (below)", style="dim"))
                problems.append(Text.assemble(key, " ", (session.error or "", "dim")))
            else:
                config = session.config
                loss = f"{session.final_loss:.4g}" if session.final_loss is not None else "—"
                table.add_row(
                    key,
                    path.name,
                    config.name,
                    f"{session.step:,}/{session.total_steps:,}",
                    loss,
                    f"{config.n_features}/{config.d_hidden}/{config.n_inst}",
                )
                if session.note is not None:
                    problems.append(Text.assemble(key, " ", (session.note, "dim")))
        return Group(table, *problems)

    def action_back(self) -> None:
        self.dismiss()
