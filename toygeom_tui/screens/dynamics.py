"""DynamicsScreen: how one instance's features moved between levels, and when.

Top: D_i of every learned feature against step (engine.history's D_i records), the selected
feature thick, the named fractions dotted, each jump marked. Under it, on the same step axis, the
instance's loss with each jump dotted. Beside (or under, when narrow): the jump list
(engine.jumps); Enter on a jump selects its feature and travels to the first weight snapshot at
or after it, so every geometry view shows the new configuration. Polls the history once a second.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from engine.geometry import NAMED_FRACTIONS, REPRESENTED, feature_norms
from engine.jumps import Jump, history_jumps
from engine.policy import DONE
from engine.run import Run
from toygeom_tui.screens.time_keys import TIME_BINDINGS
from toygeom_tui.series import step_axis_end
from toygeom_tui.time_travel import shown_moment
from toygeom_tui.widgets.dynamics.dims_history_chart import DimsHistoryChart
from toygeom_tui.widgets.dynamics.marked_loss_chart import MarkedLossChart
from toygeom_tui.widgets.text_lines import fitting

POLL_SECONDS = 1.0
_VALUE = {f.label: f.value for f in NAMED_FRACTIONS}


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


class DynamicsScreen(Screen):
    """Instance `instance` of a (possibly still training) run; `feature` starts selected."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("j,down", "move(1)", "Next jump", show=False, id="dynamics.next_jump"),
        Binding("k,up", "move(-1)", "Previous jump", show=False, id="dynamics.previous_jump"),
        Binding("left_square_bracket", "instance(-1)", "inst−", key_display="[",
                id="dynamics.prev_instance"),
        Binding("right_square_bracket", "instance(1)", "inst+", key_display="]",
                id="dynamics.next_instance"),
        *TIME_BINDINGS,
        Binding("escape,q", "back", "Back", id="dynamics.back"),
    ]  # fmt: skip

    DEFAULT_CSS = """
    DynamicsScreen #dynamics-header {
        height: 2; padding: 0 1; background: $panel; text-wrap: nowrap; text-overflow: ellipsis;
    }
    DynamicsScreen #dynamics-body { height: 1fr; }
    DynamicsScreen #dynamics-charts { width: 1fr; }
    DynamicsScreen DimsHistoryChart { height: 3fr; }
    DynamicsScreen MarkedLossChart { height: 2fr; }
    DynamicsScreen #jump-pane { width: 52; border-left: vkey $panel-lighten-2; }
    DynamicsScreen #no-jumps { padding: 1 1; color: $text-muted; }
    DynamicsScreen.-narrow #dynamics-body { layout: vertical; }
    DynamicsScreen.-narrow #jump-pane { width: 1fr; height: 6; border-left: none; }
    DynamicsScreen.-narrow #no-jumps { padding: 0 1; }
    DynamicsScreen.-narrow DimsHistoryChart, DynamicsScreen.-narrow MarkedLossChart { height: 1fr; }
    """

    def __init__(self, run: Run, instance: int, feature: int | None = None) -> None:
        super().__init__()
        self.run = run
        self.instance = max(0, min(run.config.n_inst - 1, instance))
        self.feature = feature
        self.jumps: list[Jump] = []  # this instance's, in step order (the list's rows)
        self._drawn: tuple[int, int] | None = None  # (instance, history version) on screen

    def compose(self) -> ComposeResult:
        yield Static("", id="dynamics-header")
        with Horizontal(id="dynamics-body"):
            with Vertical(id="dynamics-charts"):
                yield DimsHistoryChart()
                yield MarkedLossChart()
            with Vertical(id="jump-pane"):
                table = DataTable(id="jump-list", cursor_type="row", zebra_stripes=True)
                table.add_columns("step", "feature", "from → to", "loss before", "after")
                yield table
                yield Static("", id="no-jumps")  # why the list is empty, while it is
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.set_interval(POLL_SECONDS, self.poll)
        self.poll()

    # -- data ----------------------------------------------------------------------------------
    def poll(self) -> None:
        """Redraw when the history moved on or another instance was asked for."""
        key = (self.instance, self.run.history.version)
        if key != self._drawn:
            self._drawn = key
            self._show_history()
        self._update_header()

    def _show_history(self) -> None:
        t, inst = self.run, self.instance
        dims_steps, dims = t.history.dims_arrays()
        loss_steps, loss, _ = t.history.metrics_arrays()
        self.jumps = history_jumps(t.history, inst)
        W, _, _ = t.snapshot()
        learned = feature_norms(W[inst : inst + 1])[0].square() > REPRESENTED
        jumped = {j.feature for j in self.jumps}
        features = [i for i in range(t.config.n_features) if bool(learned[i]) or i in jumped]
        marks = [(j.step, _VALUE[j.after]) for j in self.jumps]
        newest = max(int(s[-1]) for s in (dims_steps, loss_steps, [0]) if len(s))
        end = step_axis_end(newest, t.total_steps)  # one step axis for both charts
        self.query_one(DimsHistoryChart).show_history(
            dims_steps, dims[:, inst], features, marks, end
        )
        chart = self.query_one(MarkedLossChart)
        chart.jump_steps = [j.step for j in self.jumps]
        chart.show_history(loss_steps, loss[:, inst : inst + 1], end, False)
        self._fill_jump_list()
        self._show_selection()

    def _fill_jump_list(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for j in self.jumps:
            table.add_row(
                f"{j.step:,}",
                str(j.feature),
                f"{j.before} → {j.after}",
                _loss(j.loss_before),
                _loss(j.loss_after),
            )
        if self.jumps:
            table.move_cursor(row=min(row, len(self.jumps) - 1))
        note = self.query_one("#no-jumps", Static)
        note.display = not self.jumps
        if not self.jumps:
            yet = "" if self.run.state == DONE else " yet"
            note.update(f"No jumps at instance {self.instance}{yet}: none of its features has "
                        "settled at one named fraction, then moved quickly to another and "
                        "settled there (engine.jumps).")  # fmt: skip

    def _show_selection(self) -> None:
        moment = shown_moment(self.app)
        step = None if moment is None else moment.step
        self.query_one(DimsHistoryChart).select(self.feature, step)
        chart = self.query_one(MarkedLossChart)
        if chart.marked_step != step:
            chart.marked_step = step
            chart.selection_changed()

    def on_resize(self) -> None:
        self._update_header()  # its form depends on the width

    def _update_header(self) -> None:
        t, inst = self.run, self.instance
        moment = shown_moment(self.app)
        count = len(self.jumps)

        def header(feature: str, step: str) -> str:
            parts = (f"inst {inst}/{t.config.n_inst - 1}", f"{count} jump{'s' * (count != 1)}")
            return " · ".join(part for part in (*parts, feature, step, t.state) if part)

        if self.feature is None:
            features = ("no feature selected (Enter on a jump)", "no feature selected", "")
        else:
            thick = f"feature [b]{self.feature}[/b] (thick)"
            features = (thick, thick, f"feature [b]{self.feature}[/b]")
        steps = (f"step {t.step:,}/{t.total_steps:,}",) * 2
        if moment is not None:
            steps = (
                f"[reverse b] {moment.marker(t.step)} [/]",
                f"[reverse b] {moment.marker()} [/]",
            )
        # Longest first: the line under it says how to select, so a narrow terminal drops that
        # hint, a travelled view's live step, then "no feature selected" or "(thick)", never the
        # step it shows.
        forms = [
            header(features[0], steps[0]),
            header(features[1], steps[0]),
            header(features[1], steps[1]),
            header(features[2], steps[1]),
        ]
        help_line = "[dim]Enter: jump's feature and step · < > recorded steps · l live[/dim]"
        text = fitting(forms, self.size.width - 2)  # its padding: 1 a side
        self.query_one("#dynamics-header", Static).update(text + "\n" + help_line)

    # -- actions -------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if not 0 <= event.cursor_row < len(self.jumps):
            return
        jump = self.jumps[event.cursor_row]
        self.feature = jump.feature
        after = [s for s in self.run.snapshots.steps if s >= jump.step]
        target = after[0] if after and after[0] < self.run.step else None
        if target is None:
            self.app.travel_to(None)
            self.notify(f"feature {jump.feature}: no snapshot after step {jump.step:,}; live")
        else:
            self.app.travel_to(target)
        self._show_selection()
        self._update_header()

    def time_changed(self) -> None:
        self._show_selection()
        self._update_header()

    def action_move(self, rows: int) -> None:
        table = self.query_one(DataTable)
        if self.jumps:
            table.move_cursor(row=max(0, min(len(self.jumps) - 1, table.cursor_row + rows)))

    def action_instance(self, delta: int) -> None:
        target = max(0, min(self.run.config.n_inst - 1, self.instance + delta))
        if target != self.instance:
            self.instance, self.feature = target, None
            self.query_one(DataTable).move_cursor(row=0)
            self.poll()

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_screen_resume(self) -> None:
        self._drawn = None
        self.poll()
