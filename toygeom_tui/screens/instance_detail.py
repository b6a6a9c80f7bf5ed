"""InstanceDetailScreen: one instance's features, their partners and pictures of its geometry.

It polls the run once a second; only when the step moved (or the instance changed) does it
take a snapshot and run `engine.geometry.analyze` on that one instance, in a thread worker, so
neither the run's lock nor the analysis ever blocks a key press. While the app travels back
in time (toygeom_tui.time_travel), everything shows the weights of that recorded step instead.
"""

from __future__ import annotations

import time

import numpy as np
from textual import work
from textual.actions import SkipAction
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from engine.geometry import NAMED_FRACTIONS, InstanceGeometry, analyze
from engine.run import Run
from toygeom_tui.screens.dynamics import DynamicsScreen
from toygeom_tui.screens.time_keys import TIME_BINDINGS
from toygeom_tui.time_travel import Moment, shown_moment
from toygeom_tui.widgets.detail.dims_histogram import DimsHistogram
from toygeom_tui.widgets.detail.feature_table import FeatureTable, is_dead
from toygeom_tui.widgets.detail.feature_vectors import FeatureVectors
from toygeom_tui.widgets.detail.gram_heatmap import GramHeatmap
from toygeom_tui.widgets.detail.partners_panel import PartnersPanel
from toygeom_tui.widgets.text_lines import fitting

POLL_SECONDS = 1.0
# The analysis shares the GIL with the training thread: keep it under ~10% of wall time.
MAX_BUSY_SHARE = 0.1


def _num(x: float, fmt: str = ".3g") -> str:
    return format(x, fmt) if np.isfinite(x) else str(x)


class InstanceDetailScreen(Screen):
    """Inspect instance `instance` of a (possibly still training) run."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    BINDINGS = [
        Binding("j,down", "move(1)", "Next feature", show=False, id="instance_detail.next_feature"),
        Binding("k,up", "move(-1)", "Prev feature", show=False, id="instance_detail.prev_feature"),
        Binding("g,home", "move(-1_000_000)", "First", show=False, id="instance_detail.first"),
        Binding("G,end", "move(1_000_000)", "Last", show=False, id="instance_detail.last"),
        Binding("left_square_bracket", "instance(-1)", "inst−", key_display="[",
                id="instance_detail.prev_instance"),
        Binding("right_square_bracket", "instance(1)", "inst+", key_display="]",
                id="instance_detail.next_instance"),
        Binding("t", "sort", "Sort", id="instance_detail.sort"),  # s saves, as everywhere
        # A priority binding runs as the app reads "/", before the keys after it are handed to
        # the table: "/17" typed in one burst lands in the box (in the box, "/" is a character).
        Binding("slash", "search", "Find", key_display="/", id="instance_detail.search",
                priority=True),  # fmt: skip
        Binding("d", "dead", "Dead", id="instance_detail.toggle_dead"),
        Binding("h", "pictures", "Pictures", id="instance_detail.toggle_pictures"),
        Binding("D", "dynamics", "Dynamics", id="instance_detail.dynamics"),
        *TIME_BINDINGS,
        Binding("escape,q", "back", "Back", id="instance_detail.back"),
    ]  # fmt: skip

    DEFAULT_CSS = """
    InstanceDetailScreen #detail-header { height: auto; padding: 0 1; background: $panel; }
    InstanceDetailScreen #detail-body { height: 1fr; }
    InstanceDetailScreen #inspector { width: 1fr; }
    InstanceDetailScreen FeatureTable { border: round $border-blurred; }
    InstanceDetailScreen FeatureTable:focus-within { border: round $border; }
    InstanceDetailScreen #pictures { width: 45%; }
    InstanceDetailScreen #pictures > * { border: round $border-blurred; height: 1fr; }
    InstanceDetailScreen #pictures > DimsHistogram { height: 16; }
    InstanceDetailScreen.-vectors #pictures > GramHeatmap { height: 2fr; }
    InstanceDetailScreen.-vectors #pictures > FeatureVectors { height: 3fr; }
    InstanceDetailScreen.-vectors #pictures > DimsHistogram { height: 2fr; }
    InstanceDetailScreen FeatureVectors { display: none; }
    InstanceDetailScreen.-vectors FeatureVectors { display: block; }
    InstanceDetailScreen.-wide.-toggled #pictures { display: none; }
    InstanceDetailScreen.-narrow #pictures { display: none; }
    InstanceDetailScreen.-narrow.-toggled #pictures {
        display: block; width: 1fr; layout: horizontal;
    }
    InstanceDetailScreen.-narrow.-toggled #pictures > * { width: 1fr; height: 1fr; }
    InstanceDetailScreen.-narrow.-toggled #inspector { display: none; }
    """

    def __init__(self, run: Run, instance: int) -> None:
        super().__init__()
        self.run = run
        self.instance = max(0, min(run.config.n_inst - 1, instance))
        self.geometry: InstanceGeometry | None = None  # of the instance and step on screen
        self.shown: tuple[int, int] | None = None  # (instance, step) on screen
        self.W: np.ndarray | None = None  # (hidden feats) of the instance on screen
        self.note = ""  # why the picture may be off (non-finite weights, a failed analysis)
        self._next_analysis = 0.0  # time.monotonic() before which a training update waits

    def compose(self) -> ComposeResult:
        yield Static("", id="detail-header")
        with Horizontal(id="detail-body"):
            with Vertical(id="inspector"):
                yield FeatureTable()
                yield PartnersPanel()
            with Vertical(id="pictures"):
                yield GramHeatmap()
                yield FeatureVectors()
                yield DimsHistogram()
        yield Footer()

    def on_mount(self) -> None:
        self.set_class(self.run.config.d_hidden == 2, "-vectors")
        self.query_one(GramHeatmap).border_title = "WᵀW (features grouped by component)"
        self.query_one(FeatureVectors).border_title = "feature vectors (d_hidden = 2)"
        self.query_one(DimsHistogram).border_title = "D_i histogram · named fractions"
        self.query_one(FeatureTable).table.focus()
        self.set_interval(POLL_SECONDS, self.poll)
        self.poll()

    # -- data --------------------------------------------------------------------------------
    def poll(self) -> None:
        """Analyse again if the run moved on or another instance was asked for."""
        moved_on = self.shown is None or self.shown[0] != self.instance
        moment = shown_moment(self.app)
        step = self.run.step if moment is None else moment.step
        if moved_on or (self.shown[1] != step and time.monotonic() >= self._next_analysis):
            self.analyze_instance(self.instance, moment)
        else:
            self._update_header()  # the state (training/paused/done) may have changed

    @work(thread=True, exclusive=True, group="instance-analysis", exit_on_error=False)
    def analyze_instance(self, instance: int, moment: Moment | None) -> None:
        """Analyse `instance` live, or at `moment` (time travel)."""
        if moment is None:
            W, _, step = self.run.snapshot()
        else:
            W, step = moment.W, moment.step
        started = time.monotonic()  # after the snapshot: waiting for the lock costs no CPU
        W_inst = W[instance : instance + 1].double()
        finite = bool(W_inst.isfinite().all())
        note = (
            "" if finite else "W has NaN/inf (training diverged); geometry computed with them as 0"
        )
        geometry: InstanceGeometry | None = None
        try:
            with np.errstate(all="ignore"):
                geometry = analyze(W_inst if finite else W_inst.nan_to_num(0.0, 0.0, 0.0))[0]
        except Exception as err:  # shown to the user; the view keeps the last good geometry
            note = f"geometry analysis failed: {err}"
        self._next_analysis = time.monotonic() + (time.monotonic() - started) / MAX_BUSY_SHARE
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, instance, step, W_inst[0].numpy(), geometry, note)

    def _show(
        self, instance: int, step: int, W: np.ndarray, geometry: InstanceGeometry | None, note: str
    ) -> None:
        if instance != self.instance or not self.is_mounted:
            return  # a stale result: the user moved on while it was computed
        self.shown, self.W, self.note = (instance, step), W, note
        if geometry is None:
            self.query_one(GramHeatmap).show(W, selected=self.query_one(FeatureTable).selected)
            self._update_header()
            return
        self.geometry = geometry
        table = self.query_one(FeatureTable)
        table.show(geometry.features)
        # Dead features would fill most of the map with white; they show with the table's `d`.
        shown = [f for f in geometry.features if table.show_dead or not is_dead(f)]
        by_component = sorted(shown, key=lambda f: (f.component < 0, f.component, f.index))
        self.query_one(GramHeatmap).show(W, [f.index for f in by_component], table.selected)
        if W.shape[0] == 2:
            importance = self.run.importance[instance].cpu().numpy()
            self.query_one(FeatureVectors).show(W, importance, table.selected)
        fractions = [(f.label, f.value) for f in NAMED_FRACTIONS]
        self.query_one(DimsHistogram).show(
            np.array([f.dimensionality for f in geometry.features]), fractions
        )
        self._show_partners(table.selected)
        self._update_header()

    def on_resize(self) -> None:
        self._update_header()  # the header's short form depends on the width

    def _update_header(self) -> None:
        cfg, inst = self.run.config, self.instance
        p = self.run.feature_probability[inst].cpu().numpy()
        if np.ptp(p) == 0:  # one p: with 1/p, which a short line drops first
            p_short = f"p {_num(p[0])}"
            p_text = f"{p_short} (1/p {_num(1 / p[0])})"
        else:
            p_text = p_short = f"p {_num(p.min())}–{_num(p.max())}"
        moment = shown_moment(self.app)
        if self.geometry is None or self.shown is None:
            values = short_values = "analysing…"
            step = short_step = shortest_step = ""
        else:
            g = self.geometry
            short_values = f"D* {_num(g.dims_per_feature)}"
            values = f"‖W‖²_F {_num(g.frobenius_sq)} · {short_values}"
            shortest_step = f"{self.shown[1]:,}/{self.run.total_steps:,}"
            step = short_step = f"step {shortest_step}"
            if moment is not None and moment.step == self.shown[1]:
                step = f"[reverse b] {moment.marker(self.run.step)} [/]"
                short_step = shortest_step = f"[reverse b] {moment.marker()} [/]"

        def header(p: str, values: str, step: str) -> str:
            parts = (f"inst {inst}/{cfg.n_inst - 1}", p, values, step, self.run.state)
            return " · ".join(part for part in parts if part)

        # Longest first: a narrow terminal loses 1/p, a travelled view's live step (or the word
        # "step"), then ‖W‖²_F (D* = d_hidden / ‖W‖²_F stays).
        forms = [
            (p_text, values, step),
            (p_short, values, step),
            (p_short, values, short_step),
            (p_short, values, shortest_step),
            (p_short, short_values, shortest_step),
        ]
        text = fitting([header(*form) for form in forms], self.size.width - 2)  # padding: 1 a side
        if self.note:
            text += f"\n⚠ {self.note}"
        self.query_one("#detail-header", Static).update(text)

    def _show_partners(self, feature: int | None) -> None:
        features = self.geometry.features if self.geometry else ()
        chosen = features[feature] if feature is not None and feature < len(features) else None
        self.query_one(PartnersPanel).show(chosen, features)

    def on_feature_table_highlighted(self, event: FeatureTable.Highlighted) -> None:
        self._show_partners(event.feature)
        self.query_one(GramHeatmap).select(event.feature)
        if self.run.config.d_hidden == 2:
            self.query_one(FeatureVectors).select(event.feature)

    # -- actions -----------------------------------------------------------------------------
    def action_move(self, rows: int) -> None:
        self.query_one(FeatureTable).move(rows)

    def action_instance(self, delta: int) -> None:
        target = max(0, min(self.run.config.n_inst - 1, self.instance + delta))
        if target != self.instance:
            self.instance = target
            self.geometry = None
            self._update_header()
            self.poll()

    def action_sort(self) -> None:
        self.query_one(FeatureTable).cycle_sort()

    def action_search(self) -> None:
        table = self.query_one(FeatureTable)
        if table.searching:
            raise SkipAction()  # the box has the focus: "/" is part of the query ("2/5")
        table.open_search()

    def action_dead(self) -> None:
        self.query_one(FeatureTable).toggle_dead()
        if self.geometry is not None and self.shown is not None:
            self._show(self.instance, self.shown[1], self.W, self.geometry, self.note)

    def action_pictures(self) -> None:
        self.toggle_class("-toggled")

    def action_dynamics(self) -> None:
        feature = self.query_one(FeatureTable).selected
        self.app.push_screen(DynamicsScreen(self.run, self.instance, feature))

    def time_changed(self) -> None:
        """The app's view_step moved: show the geometry of the new moment."""
        self.geometry = None
        self._update_header()
        self.analyze_instance(self.instance, shown_moment(self.app))

    def action_back(self) -> None:
        table = self.query_one(FeatureTable)
        if table.searching or table.query_text:  # first clear the filter, then leave
            table.close_search(clear=True)
        else:
            self.app.pop_screen()
