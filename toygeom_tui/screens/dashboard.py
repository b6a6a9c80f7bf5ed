"""The first screen: run status, live loss / ‖W‖²_F / feature-geometry charts, instance list.

While training, everything is refreshed from one timer (a few Hz) in one frame: the status
line on every tick, and the charts and the instance list's numbers when the run's history
changed, at most every HISTORY_SECONDS, only while this screen is visible at a drawable size.
The event loop shares the CPU and the GIL with training, and every frame costs a compositor
pass, so the training thread sends no progress messages while it runs (a single step taken while
paused is shown at once). A key that moves the selection redraws what the selection changes at
once, in the next frame.

When the run is one seed of a group (engine.seeds: a session in a sweep with seeds), a line
under the status and the instance list show each instance's best seed and the spread over the
seeds; { and } open the previous / next seed, b the selected instance's best. The sweep's record
is read again off the event loop every couple of seconds while seeds are still training.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static
from textual.worker import get_current_worker

from engine.geometry import dims_per_feature_of
from engine.jumps import Jump, history_jumps
from engine.run import Run
from engine.seeds import SeedGroup, seed_group
from engine.sweep import SweepError
from toygeom_tui.screens.dynamics import DynamicsScreen
from toygeom_tui.screens.instance_detail import InstanceDetailScreen
from toygeom_tui.screens.time_keys import TIME_BINDINGS
from toygeom_tui.series import step_axis_end
from toygeom_tui.time_travel import shown_moment
from toygeom_tui.widgets.dashboard.frobenius_chart import FrobeniusChart
from toygeom_tui.widgets.dashboard.geometry_chart import GeometryChart
from toygeom_tui.widgets.dashboard.instance_list import InstanceList
from toygeom_tui.widgets.dashboard.loss_chart import LossChart
from toygeom_tui.widgets.dashboard.seed_status import SeedStatus
from toygeom_tui.widgets.dashboard.status_bar import StatusBar
from toygeom_tui.widgets.dashboard.too_small import TooSmall

MIN_SIZE = (60, 18)
REFRESH_HZ = 4.0
# The history views (charts, the instance list's numbers) redraw at most this often while the run
# trains: at the default's ~100 steps/s a chart gains a dot column about once a second, and
# drawing them on every tick showed little more for 1.9× the event loop's share of a core
# (9.9% against 5.2% with the jumps' pace below: `python -m toygeom_tui.bench.loop_cpu` here
# and at 6e84adc). A new moment, state or selection is drawn at once.
HISTORY_SECONDS = 0.5
# Jumps are looked for again at most this often while the run trains (a search over the whole
# D_i history takes ~10–40 ms of a core, on a thread beside training), and at once otherwise.
JUMPS_SECONDS = 2.0
SEEDS_RESCAN_SECONDS = 2.0  # how often a group of seeds still training is read again


class DashboardScreen(Screen):
    BINDINGS = [
        Binding("j,down", "select(1)", "Next", id="dashboard.next_instance", show=False),
        Binding("k,up", "select(-1)", "Previous", id="dashboard.previous_instance", show=False),
        Binding("g,home", "select_first", "First", id="dashboard.first_instance", show=False),
        Binding("G,end", "select_last", "Last", id="dashboard.last_instance", show=False),
        Binding("enter", "open_detail", "Detail", id="dashboard.instance_detail"),
        Binding("e", "toggle_smoothing", "EMA", id="dashboard.toggle_smoothing", show=False),
        Binding(
            "D",
            "open_dynamics",
            "Dynamics",
            id="dashboard.dynamics",
            tooltip="D_i of every feature against step, and the jumps",
        ),  # fmt: skip
        *TIME_BINDINGS,
        Binding("left_curly_bracket", "seed(-1)", "Seed−", key_display="{", show=False,
                id="dashboard.previous_seed", tooltip="open the previous finished seed"),
        Binding("right_curly_bracket", "seed(1)", "Seed+", key_display="}", show=False,
                id="dashboard.next_seed", tooltip="open the next finished seed"),
        Binding("b", "best_seed", "Best seed", show=False, id="dashboard.best_seed",
                tooltip="open the seed with the lowest final loss at the selected instance"),
    ]  # fmt: skip
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    # Plain vars: a repainting reactive would repaint the whole screen on every key press; the
    # watchers repaint just what changed.
    selected: var[int] = var(0, init=False)
    smooth: var[bool] = var(False, init=False)

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run
        self._drawn_version = -1
        self._redrawn_size: tuple[int, int] | None = None  # the size redraw_all last ran for
        self._history_drawn_at = float("-inf")  # time.monotonic() of the last history draw
        self._jumps_sought_at = float("-inf")  # and of the last search for jumps
        self._shown_status: tuple | None = None
        self._shown_numbers: tuple | None = None  # what the instance list's numbers are of
        self._session_mark = ("", "")
        self._shown_mark = ""
        self._metrics: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._dims: np.ndarray | None = None
        self._dims_step = -1  # the step of the newest D_i record the jumps were found in
        self.jumps: list[Jump] = []  # every jump so far (engine.jumps)
        self._feature_probability = _instance_probability(run)

        self.status_bar = StatusBar(id="status")
        self.session_mark = Static(id="session-mark")
        self.loss_chart = LossChart(id="loss-chart")
        self.frobenius_chart = FrobeniusChart(id="frobenius-chart")
        self.geometry_chart = GeometryChart(id="geometry-chart")
        self.instance_list = InstanceList(id="instance-list")
        self.too_small = TooSmall(id="too-small")
        self.seeds: SeedGroup | None = None  # the run's group of seeds, if it is one seed
        self.seed_status = SeedStatus(id="seed-status")
        self._seeds_problem = ""  # the last sweep record problem told, told once

    def compose(self) -> ComposeResult:
        with Horizontal(id="status-row"):
            yield self.status_bar
            yield self.session_mark
        yield self.seed_status
        with Horizontal(id="dashboard-body"):
            with Vertical(id="charts"):
                with Horizontal(id="history-charts"):
                    yield self.loss_chart
                    yield self.frobenius_chart
                yield self.geometry_chart
            yield self.instance_list
        yield self.too_small
        yield Footer()

    def on_mount(self) -> None:
        self._show_session_mark()
        self.set_interval(1 / REFRESH_HZ, self.refresh_charts)
        self.set_interval(SEEDS_RESCAN_SECONDS, self._rescan_seeds)
        self.read_seeds()
        self.refresh_status()

    # -- the run being shown ---------------------------------------------------------------------
    def show_run(self, run: Run) -> None:
        """Switch to another run (new run, opened session)."""
        self.run = run
        self._feature_probability = _instance_probability(run)
        self._drawn_version, self._history_drawn_at = -1, float("-inf")
        self._jumps_sought_at = float("-inf")
        self._shown_numbers = None
        self._metrics, self._dims = None, None
        self._dims_step, self.jumps = -1, []
        self.selected = min(self.selected, run.config.n_inst - 1)
        self._set_seeds(self._same_group(run))
        self.read_seeds()
        self.refresh_status(force=True)
        self.refresh_charts()

    def refresh_status(self, force: bool = False) -> None:
        """Redraw the header and instance list if anything they show changed (cheap check)."""
        t = self.run
        moment = shown_moment(self.app)
        key = (
            t.step,
            t.total_steps,
            t.state,
            self.selected,
            id(t.latest_loss),
            int(t.steps_per_second),
            t.preparing,
            len(self.jumps),
            None if moment is None else moment.step,
        )
        if (key == self._shown_status and not force) or not self.status_bar.is_attached:
            return  # unchanged, or a late message while the app shuts down
        self._shown_status = key
        self.status_bar.show(t, self.selected, self._feature_probability, len(self.jumps), moment)
        if self.seeds is not None:
            self.seed_status.show(self.seeds, self.selected)
        if not self.instance_list.display:
            return
        numbers = (id(t.latest_loss), t.state, None if moment is None else moment.step)
        only_a_new_log = self._shown_numbers is not None and numbers[1:] == self._shown_numbers[1:]
        if numbers == self._shown_numbers or (
            only_a_new_log and not force and self._history_waits()
        ):
            self.instance_list.select(self.selected)  # the numbers wait for their turn
            return
        self._shown_numbers = numbers
        self.instance_list.show_instances(
            self._feature_probability,
            t.latest_loss if moment is None else moment.loss,
            t.latest_frobenius_sq if moment is None else moment.frobenius_sq,
            t.config.d_hidden,
            self.selected,
        )

    def _history_waits(self) -> bool:
        """True while the run trains and the history views were drawn less than
        HISTORY_SECONDS ago: a new log waits for the next turn."""
        return self._waits(self._history_drawn_at, HISTORY_SECONDS)

    def _waits(self, since: float, seconds: float) -> bool:
        return self.run.state == "training" and time.monotonic() - since < seconds

    def show_session_mark(self, first: str, second: str) -> None:
        """The two lines right of the status: the session's save state ("saved 12 s ago",
        "unsaved", "attached", "lost") and a detail (autosave interval, writer)."""
        self._session_mark = (first, second)
        self._show_session_mark()

    def _show_session_mark(self) -> None:
        # Wide: two lines right of the status. Narrow: one line under it, so the status keeps
        # the whole width (D* is the last thing on its line).
        first, second = self._session_mark
        joint = " · " if self.has_class("-narrow") else "\n"
        text = f"{first}{joint}[dim]{second}[/dim]"
        if self.session_mark.is_attached and text != self._shown_mark:
            self._shown_mark = text  # the app re-sends it every second: repaint only changes
            self.session_mark.update(text, layout=False)

    def refresh_charts(self, force: bool = False) -> None:
        """The refresh tick: status line, the charts if the history changed (or `force`), and
        a search for jumps if there are new D_i records."""
        self.refresh_status()
        if not self.is_current or self.has_class("-too-small"):
            return  # hidden charts cost nothing; they catch up when shown again
        version = self.run.history.version
        new = version != self._drawn_version and (force or not self._history_waits())
        if new:
            self._drawn_version = version
            self._history_drawn_at = time.monotonic()
            self._metrics = self.run.history.metrics_arrays()
            latest = self.run.history.latest_dims()
            self._dims = latest[1] if latest is not None else None
        self._look_for_jumps()
        if new or force:
            self._draw_charts()

    def _look_for_jumps(self) -> None:
        """Search the D_i history for jumps when it has a record not searched yet (at most every
        JUMPS_SECONDS while training, so the last records of a run are searched once it ends)."""
        latest = self.run.history.latest_dims()
        if latest is None or latest[0] == self._dims_step:
            return
        if self._waits(self._jumps_sought_at, JUMPS_SECONDS):
            return
        self._dims_step, self._jumps_sought_at = latest[0], time.monotonic()
        self._find_jumps(self.run)

    @work(thread=True, exclusive=True, group="jumps", exit_on_error=False)
    def _find_jumps(self, run: Run) -> None:
        """All jumps so far, off the event loop (tens of ms for the default run's history)."""
        found = history_jumps(run.history)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_jumps, run, found)

    def _show_jumps(self, run: Run, found: list[Jump]) -> None:
        if run is self.run:
            self.jumps = found
            self.refresh_status()

    def _draw_charts(self) -> None:
        if self._metrics is None or not self.loss_chart.is_attached:
            return
        steps, loss, frob = self._metrics
        end = step_axis_end(int(steps[-1]) if len(steps) else 0, self.run.total_steps)
        moment = shown_moment(self.app)
        at = None if moment is None else moment.step
        self.loss_chart.show_history(steps, loss, end, self.smooth, at)
        self.frobenius_chart.show_history(steps, frob, end, self.smooth, at)
        last_frob = frob[-1] if len(frob) else np.full(self.run.config.n_inst, np.nan)
        dims = self._dims
        if moment is not None:
            last_frob, dims = moment.frobenius_sq, moment.dims
        dims_star = dims_per_feature_of(last_frob, self.run.config.d_hidden)
        self.geometry_chart.show_geometry(1 / self._feature_probability, dims_star, dims)

    # -- selection and view ------------------------------------------------------------------------
    def watch_selected(self, selected: int) -> None:
        # Before anything else: the header, the list's two rows and the charts' selected series,
        # all in the next frame (the charts keep their other series drawn).
        self.refresh_status()
        for chart in (self.loss_chart, self.frobenius_chart, self.geometry_chart):
            chart.select(selected)

    def watch_smooth(self) -> None:
        self._draw_charts()

    def action_select(self, delta: int) -> None:
        self.selected = max(0, min(self.selected + delta, self.run.config.n_inst - 1))

    def action_select_first(self) -> None:
        self.selected = 0

    def action_select_last(self) -> None:
        self.selected = self.run.config.n_inst - 1

    def action_toggle_smoothing(self) -> None:
        self.smooth = not self.smooth
        self.notify(f"EMA smoothing {'on' if self.smooth else 'off'}", timeout=2)

    def on_instance_list_clicked(self, event: InstanceList.Clicked) -> None:
        self.selected = event.instance

    def action_open_detail(self) -> None:
        self.app.push_screen(InstanceDetailScreen(self.run, self.selected))

    def action_open_dynamics(self) -> None:
        self.app.push_screen(DynamicsScreen(self.run, self.selected))

    def time_changed(self) -> None:
        """The app's view_step moved: every view of geometry shows the new moment."""
        self.refresh_status(force=True)
        self._draw_charts()

    # -- the run's seeds -------------------------------------------------------------------------
    def read_seeds(self) -> None:
        """Read the run's group of seeds again (off the event loop); none for a new run."""
        if self.run.session_dir is None:
            self._set_seeds(None)
        else:
            self._load_seeds(self.run, self.run.session_dir)

    def _rescan_seeds(self) -> None:
        if self.seeds is not None and self.seeds.filling and self.is_current:
            self.read_seeds()

    @work(thread=True, exclusive=True, group="seeds", exit_on_error=False)
    def _load_seeds(self, run: Run, directory: Path) -> None:
        try:
            group: SeedGroup | str | None = seed_group(directory)
        except SweepError as err:
            group = str(err)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._seeds_read, run, group)

    def _seeds_read(self, run: Run, group: SeedGroup | str | None) -> None:
        if run is not self.run or not self.is_attached:
            return  # another run is shown by now
        if isinstance(group, str):  # a broken record: say so once, keep what is shown
            if group != self._seeds_problem:
                self._seeds_problem = group
                self.notify(group, title="Cannot read the seeds", severity="warning")
            return
        if group != self.seeds:
            self._set_seeds(group)
            self.refresh_status(force=True)

    def _set_seeds(self, group: SeedGroup | None) -> None:
        self.seeds = group
        self.seed_status.set_class(group is not None, "-shown")
        self.instance_list.show_seeds(group)
        self._shown_numbers = None  # the seed columns join the rows when the numbers are drawn

    def _same_group(self, run: Run) -> SeedGroup | None:
        """The group shown, seen from `run` if it is another of its seeds, so stepping
        through seeds marks the right one at once (the read that follows brings it up to date)."""
        if self.seeds is None or run.session_dir is None:
            return None
        return self.seeds.seen_from(run.session_dir)

    def _seeds_or_refuse(self) -> SeedGroup | None:
        if self.seeds is None:
            self.notify(
                "this run is not one seed of a group (train --seeds N makes one)",
                title="No seeds",
                severity="warning",
            )
        return self.seeds

    def action_seed(self, delta: int) -> None:
        """Open the finished seed `delta` places on from this one (wrapping round)."""
        group = self._seeds_or_refuse()
        if group is None:
            return
        path = group.neighbour(delta)
        if path is None:
            self.notify("no other seed of this run has finished yet", severity="warning")
        else:
            self.app.open_session(path)

    def action_best_seed(self) -> None:
        """Open the seed with the lowest final loss at the selected instance."""
        group = self._seeds_or_refuse()
        if group is None:
            return
        path = group.best_path(self.selected)
        if path is None:
            self.notify(f"no seed has a final loss at instance {self.selected} yet")
        elif group.is_best(self.selected):
            self.notify(f"seed {group.seed} is already the best at instance {self.selected}")
        else:
            self.app.open_session(path)

    # -- terminal size ---------------------------------------------------------------------------
    def on_resize(self, event: events.Resize) -> None:
        width, height = event.size
        too_small = width < MIN_SIZE[0] or height < MIN_SIZE[1]
        self.set_class(too_small, "-too-small")
        if too_small:
            self.too_small.show(MIN_SIZE, (width, height))
            self._redrawn_size = None  # hidden charts are not fed: catch them up when shown
        else:
            self._show_session_mark()  # the -narrow breakpoint class may have changed
            if (width, height) != self._redrawn_size:  # startup sends one size three times
                self._redrawn_size = (width, height)
                self.call_after_refresh(self.redraw_all)  # after layout: each view at its size

    def on_screen_resume(self) -> None:
        self.redraw_all()
        self.read_seeds()

    def redraw_all(self) -> None:
        self.refresh_status(force=True)
        self.refresh_charts(force=True)


def _instance_probability(run: Run) -> np.ndarray:
    """(inst,) each instance's feature probability p, averaged over its features."""
    return run.feature_probability.mean(dim=1).cpu().numpy().astype(np.float64)
