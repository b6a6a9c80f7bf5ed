"""The Textual app: wiring between one engine Run (engine.run) and the screens.

The app and its screens drive a Run and cannot tell its two sides apart:
  - a LocalRun, trained here on a thread: autosaved every `autosave_seconds` into its session
    folder (marked running), saved once more, unmarked, when it ends or the user leaves it
    with "save"; q may send it to a headless process instead (engine.remote.background);
  - a RemoteRun, attached to a `toygeom-tui train` process: that process saves; q detaches.
The run's observers only post messages (toygeom_tui.messages). Controls go through the Run's
methods on a thread worker (a remote control waits for its answer); engine.policy decides what
may happen, and a refusal is one notice with its reason.

The app paints before it has a run: given an Opening, it shows the StartScreen and makes the
run on a worker, as importing torch takes seconds. So this module imports only what needs no
torch; the engine and the screens that need it are imported where they are used.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import pkgutil
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.atomic import write_text_atomic
from engine.paths import SESSIONS_ROOT
from engine.policy import DIVERGED, DONE, LOST, PAUSED, STOPPED, TRAINING, toggle
from toygeom_tui.keymap import config_path, read_keymap
from toygeom_tui.messages import (
    InterruptedSessions,
    LoadFailed,
    RunLoaded,
    RunStateChanged,
    SaveFailed,
    SessionSaved,
    TrainingProgress,
)
from toygeom_tui.screens.export_menu import (
    GEOMETRY_CSV,
    GEOMETRY_JSON,
    HISTORY_CSV,
    SCREENSHOT,
    ExportMenuScreen,
)
from toygeom_tui.screens.help import HelpScreen
from toygeom_tui.screens.lost_run import IN_BACKGROUND, LostRunScreen
from toygeom_tui.screens.quit_confirm import (
    BACKGROUND,
    QUIT,
    SAVE_AND_QUIT,
    QuitConfirmScreen,
)
from toygeom_tui.screens.starting import StartScreen

if TYPE_CHECKING:
    from engine.autosave import Autosaver
    from engine.config import RunConfig
    from engine.run import Run
    from engine.session import SessionError
    from engine.sweep import Sweep
    from engine.sweep_local import LocalExecutor
    from engine.trainer import Trainer
    from toygeom_tui.screens.new_run import SeedsRun
    from toygeom_tui.time_travel import Moment

DEFAULT_EXTRA_STEPS = 1_000  # `+` on a run configured with steps = 0
GIL_SWITCH_INTERVAL = 0.0005  # seconds; see ToygeomApp.on_mount


@dataclass(frozen=True)
class Opened:
    """A run made for the app, with the session it came from, a line to show once it is up
    (what loading the session found), and the sweep it belongs to if it was opened as one (its
    screen then opens over the run's dashboard)."""

    run: Run | Trainer
    session_dir: Path | None = None
    notice: str | None = None
    sweep: Path | None = None


@dataclass(frozen=True)
class Opening:
    """A run still to be made: `make(stage)` runs on a worker after the first paint (it imports
    the engine, and torch with it) and returns an Opened; `stage(text)` says what it is doing.
    Whatever it raises ends the app, and run_app raises it again (a bad input: one line)."""

    what: str  # for the start screen: "a new run: pentagon", a session's folder
    make: Callable[[Callable[[str], None]], Opened]


class RunWatch:
    """The app's observers on one run, and what is known about its saves.

    The observers run on the run's thread: they post messages and never touch the UI. The
    save bookkeeping (saved_step, saved_at, marked_running) is only touched on the event loop.
    A local run is autosaved from here; a remote one saves in its own process.
    """

    def __init__(
        self, app: App, run: Run, saved_at: float | None = None, final_save: bool = True
    ) -> None:
        self.app, self.run = app, run
        self.autosaver: Autosaver | None = None
        self.wants_final_save = final_save  # save once more when the run is done
        # A loaded session's own step is saved; a new run has nothing saved yet.
        self.saved_step = run.step if run.session_dir is not None else 0
        self.saved_at = saved_at  # wall-clock seconds of the newest save, None before one
        self.marked_running = False  # the newest save says "still being written" (by us)
        self.autosave_failing = False  # told the user once; told again after a save succeeds
        self.attached = False  # its observers are on the run

    # -- on the run's thread (each observer is given the Trainer or the RemoteRun: use self.run)
    def progress(self, _: object = None) -> None:
        # A single step (paused) is shown at once. While training runs, the dashboard polls the
        # run from its refresh tick: a message per interval would only wake the UI thread.
        if self.run.paused:
            self.app.post_message(TrainingProgress(self.run))

    def log(self, _: object) -> None:
        self.progress()
        if self.autosaver is not None:
            self.autosaver(self.run.trainer)

    def _autosaved(self, running: bool) -> None:
        # Periodic autosaves stay quiet; the final one is announced.
        directory = self.autosaver.directory
        self.app.post_message(
            SessionSaved(self.run, directory, self.run.step, running=running, announce=not running)
        )

    def _autosave_failed(self, error: SessionError) -> None:
        self.app.post_message(SaveFailed(self.run, str(error), autosave=True))

    def state(self, _: object) -> None:
        # A local run that is done is saved once more, unmarked, before anyone is told.
        run, autosaver = self.run, self.autosaver
        if (
            run.state == DONE
            and autosaver is not None
            and (self.wants_final_save or self.marked_running)
        ):
            autosaver.save(run.trainer, running=False)
        self.app.post_message(RunStateChanged(run, run.state))

    # -- on the event loop ----------------------------------------------------------------------
    def start_autosave(self, directory: Path, interval: float) -> None:
        """Autosave a local run into `directory` every `interval` seconds (0: only the final
        save, if any)."""
        if self.autosaver is None and not self.run.remote:
            from engine.autosave import Autosaver

            self.autosaver = Autosaver(
                directory,
                interval if interval > 0 else math.inf,
                on_error=self._autosave_failed,
                on_saved=self._autosaved,
            )

    def attach(self) -> None:
        self.run.on("log", self.log)
        self.run.on("dims", self.progress)
        self.run.on("state", self.state)
        self.attached = True

    def detach(self) -> None:
        """Stop watching (again is a no-op: a run sent to the background was let go before)."""
        if self.attached:
            self.run.off("log", self.log)
            self.run.off("dims", self.progress)
            self.run.off("state", self.state)
            self.attached = False


class ToygeomApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "toygeom-tui"
    BINDINGS = [
        Binding("p", "toggle_pause", "Pause", id="app.toggle_pause", tooltip="pause or resume"),
        Binding("space", "step_once", "Step", id="app.step_once", tooltip="one step while paused"),
        Binding("plus", "train_more", "More", id="app.train_more", show=False),
        Binding("n", "new_run", "New", id="app.new_run"),
        Binding("s", "save", "Save", id="app.save"),
        Binding("o", "open_session", "Open", id="app.open_session", tooltip="session browser"),
        Binding("x", "export", "Export", id="app.export", show=False, tooltip="files of this run"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        run: Run | Trainer | Opening,
        *,
        session_dir: Path | None = None,
        sessions_root: Path = SESSIONS_ROOT,
        autostart: bool = True,
        autosave_seconds: float = 30.0,
        offer_resume: bool = False,
        keymap_path: Path | None = None,
        notice: str | None = None,
    ) -> None:
        """`run`: a Run (a Trainer is trained here as a LocalRun), or an Opening to make one
        while the start screen shows; an opened session then waits for p, and a new run trains
        at once and names interrupted sessions (the flags below are for a Run). `autostart`:
        train a local run at once (a remote one trains anyway). `offer_resume`: on start, name
        an interrupted session under `sessions_root` (once). `keymap_path`: the config.toml whose
        [keymap] remaps keys (default: the user's). `notice`: a line to show once the app is up
        (what loading the session found)."""
        super().__init__()
        self.keymap_path = keymap_path or config_path()
        self.keymap: dict[str, str] = {}  # binding id -> keys, as applied from keymap_path
        self.view_step: int | None = None  # the recorded step the geometry views show; None: live
        self._moment: Moment | None = None
        self.sessions_root = sessions_root
        self.autosave_seconds = autosave_seconds
        self.farewell: str | None = None  # printed once the app is gone (how to come back)
        self.failure: BaseException | None = None  # what ended the app before it had a run
        self._sweep_stop = threading.Event()  # set on exit: seeds being trained stop
        self.opening = run if isinstance(run, Opening) else None  # None once there is a run
        self.current_run: Run | None = None
        self.session_dir = session_dir
        if self.opening is None:
            self._adopt(run, session_dir, autostart, offer_resume, notice)
        else:
            self.start_screen = StartScreen(self.opening.what)

    def _adopt(
        self,
        run: Run | Trainer,
        session_dir: Path | None,
        autostart: bool,
        offer_resume: bool,
        notice: str | None,
    ) -> None:
        """Take `run` as the app's first run (the dashboard is made for it)."""
        from engine.run import as_run
        from toygeom_tui.screens.dashboard import DashboardScreen

        run = as_run(run)
        self.current_run = run
        self.session_dir = session_dir or run.session_dir
        self.autostart = autostart and not run.remote
        self.offer_resume = offer_resume and self.session_dir is None
        self.notice = notice
        self._watch = self._watch_run(run, _saved_at(self.session_dir))
        self.dashboard = DashboardScreen(run)

    def get_default_screen(self) -> Screen:
        return self.dashboard if self.opening is None else self.start_screen

    def on_mount(self) -> None:
        # The training thread needs the GIL between torch ops; with CPython's default 5 ms
        # switch interval, each chart redraw on this thread stalls it for whole intervals.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        if self.opening is None:
            self._begin()
        else:  # once the start screen is on the terminal
            self.call_after_refresh(self._open, self.opening)

    def _begin(self) -> None:
        """Watch (and maybe train) the first run; its dashboard is the screen."""
        self._apply_keymap()
        self._watch.attach()
        self.set_interval(1.0, self._show_session_mark)
        self._show_session_mark()
        if self.autostart:
            self.start_training()
        if self.offer_resume:
            self._look_for_interrupted(self.sessions_root)
        if self.notice:
            self.notify(self.notice, timeout=15)

    @work(thread=True, exit_on_error=False, group="startup")
    def _open(self, opening: Opening) -> None:
        """Make the Opening's run off the event loop, then show it (or end with its error)."""

        def stage(text: str) -> None:
            with contextlib.suppress(RuntimeError):  # the app is gone: nobody to tell
                self.call_from_thread(self.start_screen.stage, text)

        try:
            opened = opening.make(stage)
            from toygeom_tui.screens import dashboard  # noqa: F401  (torch's: here, not on the loop)
        except Exception as err:  # bad input (one line) or a bug: either way the app ends with it
            with contextlib.suppress(RuntimeError):  # unless it has ended already (q)
                self.call_from_thread(self._fail, err)
            return
        try:
            self.call_from_thread(self._opened, opened)
        except RuntimeError:  # the app is gone (q while starting): let go of the run
            from engine.run import as_run

            as_run(opened.run).close()

    def _opened(self, opened: Opened) -> None:
        if not self.is_running:  # q while starting: the worker lets the run go
            raise RuntimeError("the app has ended")
        # A new run trains at once and names interrupted sessions (_adopt leaves a remote one be).
        new = opened.session_dir is None
        self._adopt(opened.run, opened.session_dir, new, new, opened.notice)
        self.opening = None
        # The start screen is the default mode's base screen, which cannot be switched out;
        # the run's dashboard is the base of a mode of its own, and the start screen rests.
        self.add_mode("run", lambda: self.dashboard)
        self.switch_mode("run")
        self._begin()
        if opened.sweep is not None:
            self._show_sweep(opened.sweep)

    def _show_sweep(self, directory: Path) -> None:
        """The sweep's screen over the dashboard; Enter there opens a run on the dashboard."""
        from toygeom_tui.screens.sweep import SweepScreen

        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_session(path)

        self.push_screen(SweepScreen(directory), open_)

    def _fail(self, error: BaseException) -> None:
        self.failure = error
        self.exit(return_code=2)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Until there is a run, the only thing to do is to leave.
        return self.opening is None or action == "quit"

    def on_unmount(self) -> None:
        # A local run stops (its thread is joined); a remote one is let go and trains on.
        if self.current_run is not None:
            self._watch.detach()
            self.current_run.close()
        self._sweep_stop.set()  # and a sweep of seeds ends its worker processes
        sys.setswitchinterval(self._switch_interval)

    def _apply_keymap(self) -> None:
        """The user's [keymap], through Textual's keymap; what cannot apply is one notice."""
        self.keymap, problems = read_keymap(self.keymap_path, binding_ids())
        self.set_keymap(self.keymap)
        if problems:
            self.notify(
                f"{self.keymap_path}: {'; '.join(problems)}. Those keys keep their defaults.",
                title="Keymap",
                severity="warning",
                timeout=20,
            )

    @property
    def saved_step(self) -> int:
        """The step the current run's newest save holds; training beyond it is in no save."""
        return self._watch.saved_step

    def _watch_run(self, run: Run, saved_at: float | None) -> RunWatch:
        return RunWatch(self, run, saved_at, final_save=self.autosave_seconds > 0)

    # -- training ------------------------------------------------------------------------------
    def start_training(self) -> None:
        """Train the run as it stands (held paused if it is; a local one autosaves from now)."""
        self.act("start")

    def act(self, *calls: tuple[str, ...] | str, done: str | None = None) -> None:
        """Call the run's controls in order (("extend", n), "resume", ...) on a thread worker;
        a refusal is one notice with its reason, else `done` (if any) is."""
        if not self.current_run.remote:
            self._watch.start_autosave(self.session_path(), self.autosave_seconds)
        self._control(self.current_run, [(c,) if isinstance(c, str) else c for c in calls], done)

    @work(thread=True, group="control", exit_on_error=False)
    def _control(self, run: Run, calls: list[tuple], done: str | None) -> None:
        from engine.run import RunRefused

        try:
            for name, *args in calls:
                getattr(run, name)(*args)
        except RunRefused as err:
            self.call_from_thread(self.notify, str(err), severity="warning")
            return
        if done:
            self.call_from_thread(self.notify, done)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group, state = event.worker.group, event.state
        if group in ("control", "move", "save") and state == WorkerState.ERROR:
            self.notify(f"{group} failed: {event.worker.error}", severity="error", timeout=30)
        elif group == "export" and state == WorkerState.SUCCESS:
            self.notify(f"wrote {event.worker.result}", title="Exported")
        elif group == "export" and state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Not exported", severity="error",
                        timeout=15)  # fmt: skip

    def on_training_progress(self, message: TrainingProgress) -> None:
        if message.run is self.current_run:
            self.dashboard.refresh_status()

    def on_run_state_changed(self, message: RunStateChanged) -> None:
        run = message.run
        if run is not self.current_run:
            return
        self.dashboard.refresh_status(force=True)
        if message.state == DIVERGED:
            self.dashboard.refresh_charts(force=True)
            self.notify(run.error or "training diverged", title="Diverged", severity="error",
                        timeout=30)  # fmt: skip
        elif message.state == DONE:
            saves = "" if self.autosave_seconds > 0 or run.remote else ", s saves"
            self.notify(
                f"step {run.step:,} reached; + trains {self._extra_steps():,} more{saves}",
                title="Training done",
            )
        elif message.state == STOPPED and run.error:
            self.notify(run.error, severity="error", timeout=30)
        elif message.state == LOST:
            self._show_session_mark()
            self.push_screen(LostRunScreen(str(self.session_dir), run.step), self._resume_lost)

    def _extra_steps(self) -> int:
        return self.current_run.config.steps or DEFAULT_EXTRA_STEPS

    def replace_run(
        self,
        run: Run,
        session_dir: Path | None,
        *,
        saved_at: float | None = None,
        autostart: bool = True,
    ) -> None:
        """Show `run` instead of the current one (which is let go: stopped if local)."""
        self._watch.detach()
        self._let_go(self.current_run)
        self.current_run, self.session_dir = run, session_dir
        self.view_step, self._moment = None, None
        self._watch = self._watch_run(run, saved_at)
        self._watch.attach()
        self.dashboard.show_run(run)
        if autostart and not run.remote:
            self.start_training()
        self._show_session_mark()

    @work(thread=True, group="let-go", exit_on_error=False)
    def _let_go(self, run: Run) -> None:
        run.close()  # joins a thread or a connection: off the event loop

    # -- control actions --------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        self.act(toggle(self.current_run.state))

    def action_step_once(self) -> None:
        self.act("step_once")

    def action_train_more(self) -> None:
        """+: train more steps (a run that is not training trains on)."""
        run, n = self.current_run, self._extra_steps()
        going = run.state in (TRAINING, PAUSED)
        then = () if going else ("resume",)
        done = f"training {n:,} more steps, to {run.total_steps + n:,}"
        self.act(("extend", n), *then, done=done)

    def action_stop_run(self) -> None:
        """Stop training for good (a served run saves and its process ends)."""
        self.act("stop", done="stopping the run")

    # -- time travel (toygeom_tui.time_travel) --------------------------------------------------
    def action_travel(self, delta: int) -> None:
        """Show the geometry `delta` (±1) recorded steps from the one shown."""
        from toygeom_tui.time_travel import no_history_reason, step_after_move

        t = self.current_run
        target = step_after_move(t.snapshots.steps, self.view_step, t.step, delta)
        if target is None and self.view_step is None:
            if delta < 0:
                self.notify(no_history_reason(t), severity="warning")
            return
        self.travel_to(target)

    def action_back_to_live(self) -> None:
        self.travel_to(None)

    def travel_to(self, step: int | None) -> None:
        """Show the latest snapshot at or before `step` on every geometry view (None: live)."""
        if step is not None:
            step = self.current_run.snapshots.at_or_before(step)
        if step == self.view_step:
            return
        self.view_step, self._moment = step, None
        for screen in self.screen_stack:
            if hasattr(screen, "time_changed"):
                screen.time_changed()

    def moment(self) -> Moment | None:
        """The run at `view_step` (None while live). A snapshot thinned away while training goes
        on is replaced by the latest one before it."""
        if self.view_step is None:
            return None
        from toygeom_tui.time_travel import moment_at

        t = self.current_run
        if self._moment is None or self._moment.step not in t.snapshots.steps:
            step = t.snapshots.at_or_before(self.view_step)
            if step is None:
                self.view_step = None
                return None
            self.view_step, self._moment = step, moment_at(t, step)
        return self._moment

    # -- runs and sessions -------------------------------------------------------------------------
    def action_new_run(self) -> None:
        from toygeom_tui.screens.new_run import NewRunScreen, SeedsRun

        def start(chosen: RunConfig | SeedsRun | None) -> None:
            if isinstance(chosen, SeedsRun):
                self._start_seeds(chosen)
            elif chosen is not None:
                self._build_run(chosen)

        self.push_screen(NewRunScreen(self.current_run.config), start)

    def _start_seeds(self, request: SeedsRun) -> None:
        """Train the seeds as a local sweep in worker processes, and show the sweep screen,
        which fills in as they finish; Enter there opens a seed on the dashboard."""
        from engine.config import ConfigError
        from engine.session import new_session_dir
        from engine.sweep import Sweep, SweepError, seed_spec
        from engine.sweep_local import LocalExecutor

        config = request.config
        directory = new_session_dir(f"{config.name}-seeds", self.sessions_root)
        try:
            sweep = Sweep.create(directory, seed_spec(config, request.seeds))
        except (ConfigError, SweepError) as err:
            self.notify(str(err), title="Cannot start the seeds", severity="error")
            return
        self._run_sweep(sweep, LocalExecutor())  # made here: its start needs the main thread
        self._show_sweep(directory)

    @work(thread=True, exit_on_error=False, group="sweep")
    def _run_sweep(self, sweep: Sweep, executor: LocalExecutor) -> None:
        from engine.sweep import SweepError

        try:
            sweep.run(executor, stop=self._sweep_stop)
        except SweepError as err:
            self.call_from_thread(self.notify, str(err), severity="error")
            return
        if not self._sweep_stop.is_set():
            done = sweep.counts()["done"]
            message = f"{sweep.directory.name}: {done}/{len(sweep.spec.runs)} seeds done"
            self.call_from_thread(self.notify, message)

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _build_run(self, config: RunConfig) -> None:
        """Build a Trainer off the event loop (compiling can take seconds)."""
        from engine.config import ConfigError
        from engine.run import LocalRun
        from engine.trainer import Trainer

        try:
            trainer = Trainer(config)
        except ConfigError as err:
            self.post_message(LoadFailed(str(err)))
            return
        self.post_message(
            RunLoaded(LocalRun(trainer), None, autostart=True, done=f"new run: {config.name}")
        )

    def action_open_session(self) -> None:
        from toygeom_tui.screens.sessions import SessionBrowserScreen

        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_session(path)

        self.push_screen(SessionBrowserScreen(self.sessions_root, in_use=self.session_dir), open_)

    def open_session(self, path: Path) -> None:
        """Open a saved session to continue it, or attach to it if a process trains it."""
        ours: set[Path] = set()
        if self.session_dir is not None and (self._watch.marked_running or self.current_run.remote):
            ours.add(self.session_dir.resolve())
        self._load_run(Path(path), frozenset(ours))

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _load_run(self, path: Path, ours: frozenset[Path]) -> None:
        from engine.remote.client import RemoteError, RemoteRun
        from engine.remote.listing import probe
        from engine.run import LocalRun
        from engine.session import SessionError, load_session, session_info

        try:
            if path.resolve() in ours:
                raise SessionError(f"{path}: this is the run shown here")
            if probe(path) is not None:
                loaded = RunLoaded(
                    RemoteRun.connect(path), path, done=f"attached to {path}; q detaches"
                )
            else:
                info = session_info(path)
                trainer = load_session(path)
                where = "finished" if trainer.step >= trainer.total_steps else "p continues"
                note = f"; {trainer.load_note}" if trainer.load_note else ""
                loaded = RunLoaded(
                    LocalRun(trainer),
                    path,
                    saved_at=info.saved_at,
                    done=f"opened {path} at step {trainer.step:,} ({where}){note}",
                )
        except (SessionError, RemoteError) as err:
            self.post_message(LoadFailed(str(err)))
            return
        self.post_message(loaded)

    def on_run_loaded(self, message: RunLoaded) -> None:
        def show() -> None:
            self.replace_run(
                message.run,
                message.session_dir,
                saved_at=message.saved_at,
                autostart=message.autostart,
            )
            self.notify(message.done)

        doing = f"open {message.session_dir.name}" if message.session_dir else "start a new run"
        self._leave_run(show, doing)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.notify(message.error, title="Cannot open", severity="error", timeout=15)

    def _leave_run(self, then: Callable[[], None], doing: str) -> None:
        """Do `then` (quit, show another run) once the current run's training is saved, sent to
        the background (quit only), or the user chose to let the unsaved steps go. An attached
        run is simply let go: its own process saves it."""
        if self.current_run is None:  # still opening: nothing to save
            then()
            return
        run, watch = self.current_run, self._watch
        if run.remote:
            then()
            return
        unsaved = run.step - watch.saved_step
        if unsaved <= 0:
            if watch.marked_running:  # all saved, but the record still says "running"
                self._save(run, self.session_path(), finish=True, then=then)
            else:
                then()
            return

        def decide(choice: str | None) -> None:
            if choice == SAVE_AND_QUIT:
                self._save(run, self.session_path(), finish=True, then=then)
            elif choice == BACKGROUND:
                self.notify("moving the run to a background process…")
                self._to_background(run, self.session_path())
            elif choice == QUIT:
                from engine.session import SessionError, mark_stopped

                if watch.marked_running and self.session_dir is not None:
                    try:  # nobody writes it any more: don't list it as running
                        mark_stopped(self.session_dir)
                    except SessionError as err:
                        self.notify(str(err), severity="warning")
                then()

        trains_on = doing == "quit" and run.state in (TRAINING, PAUSED)
        self.push_screen(QuitConfirmScreen(unsaved, doing, background=trains_on), decide)

    @work(thread=True, group="move", exit_on_error=False)
    def _to_background(self, run: Run, directory: Path) -> None:
        """Train the run on in a headless process, then leave saying how to attach."""
        from engine.remote.background import BackgroundError, keep_training

        self._watch.detach()  # its final save and messages are the new process's now
        try:
            keep_training(run, directory)
        except BackgroundError as err:  # the run stays here, stopped at its saved step
            self.call_from_thread(self._watch.attach)
            self.call_from_thread(self.notify, str(err), title="Not moved", severity="error")
            return
        self.farewell = (
            f"{directory} trains on in the background; attach with: toygeom-tui attach {directory}"
        )
        self.call_from_thread(self.exit)

    def _resume_lost(self, where: str | None) -> None:
        """The LostRunScreen's choice: resume the lost run's last save in the background (and
        attach to it) or here."""
        if where is not None and self.session_dir is not None:
            self._resume_from_save(self.session_dir, where == IN_BACKGROUND)

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _resume_from_save(self, directory: Path, in_background: bool) -> None:
        from engine.remote.background import BackgroundError, resume_headless
        from engine.remote.client import RemoteError, RemoteRun
        from engine.run import LocalRun
        from engine.session import SessionError, load_session

        try:
            if in_background:
                resume_headless(directory)
                run: Run = RemoteRun.connect(directory)
                done = f"resumed {directory} in the background; attached"
            else:
                run = LocalRun(load_session(directory))
                done = f"resumed {directory} here at step {run.step:,}"
            saved_at = _saved_at(directory)
        except (BackgroundError, RemoteError, SessionError) as err:
            self.post_message(LoadFailed(str(err)))
            return
        self.post_message(
            RunLoaded(run, directory, saved_at=saved_at, autostart=not in_background, done=done)
        )

    def session_path(self) -> Path:
        """Where this run saves: the session it came from, or a new timestamped folder."""
        if self.session_dir is None:
            from engine.session import new_session_dir

            self.session_dir = new_session_dir(self.current_run.config.name, self.sessions_root)
        return self.session_dir

    def action_save(self) -> None:
        self._save(self.current_run, self.session_path(), finish=False, then=None)

    @work(thread=True, group="save", exit_on_error=False)
    def _save(
        self, run: Run, directory: Path, *, finish: bool, then: Callable[[], None] | None
    ) -> None:
        """Save `run` (a local one into `directory`); `finish`: it ends first (the save then
        holds exactly what the user saw and says nobody writes it any more)."""
        from engine.run import RunRefused
        from engine.session import SessionError

        if finish:
            run.close()  # joins the training thread: the step is final
        if not run.remote:
            run.session_dir = directory
        running = run.state in (TRAINING, PAUSED) and not run.remote
        try:
            step = run.step
            run.save()
        except RunRefused as err:
            self.post_message(SaveFailed(run, str(err), autosave=False))
            return
        except SessionError as err:
            self.post_message(SaveFailed(run, str(err), autosave=False))
            return
        self.post_message(
            SessionSaved(run, directory, step, running=running, announce=True, then=then)
        )

    def on_session_saved(self, message: SessionSaved) -> None:
        if message.run is self.current_run:
            watch = self._watch
            watch.saved_step = max(watch.saved_step, message.step)
            watch.saved_at = time.time()
            watch.marked_running = message.running
            watch.autosave_failing = False
            self.session_dir = message.directory
            self._show_session_mark()
        if message.announce:
            self.notify(f"saved step {message.step:,} to {message.directory}", title="Saved")
        if message.then is not None:
            message.then()

    def on_save_failed(self, message: SaveFailed) -> None:
        watch = self._watch if message.run is self.current_run else None
        if message.autosave and watch is not None:
            if watch.autosave_failing:
                return  # told already; the status line keeps saying it
            watch.autosave_failing = True
            self._show_session_mark()
        title = "Autosave failed" if message.autosave else "Not saved"
        self.notify(message.error, title=title, severity="error", timeout=15)

    def _show_session_mark(self) -> None:
        self.dashboard.show_session_mark(*self.session_mark())

    def session_mark(self) -> tuple[str, str]:
        """The status line's save state: ("saved 12 s ago" | "unsaved" | "attached" | "lost",
        a detail)."""
        now = time.time()
        run, watch = self.current_run, self._watch
        if run.remote:
            # 17 columns: the status line already names the process (its pid, as its device).
            if run.state == LOST:
                return "[b]lost[/b]", "process gone"
            return "[b]attached[/b]", "q detaches"
        first = "unsaved" if watch.saved_at is None else f"saved {_ago(now - watch.saved_at)}"
        if watch.autosave_failing:
            second = "[b]autosave failing[/b]"
        elif self.autosave_seconds > 0:
            second = f"autosave {_ago(self.autosave_seconds).removesuffix(' ago')}"
        else:
            second = "autosave off"
        return first, second

    @work(thread=True, exit_on_error=False, group="startup")
    def _look_for_interrupted(self, root: Path) -> None:
        """Sessions whose record says "running" but whose writer (on this host) is gone."""
        from engine.session import SessionError, session_info

        found: list[tuple[float, Path, int]] = []
        try:
            children = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            return  # no sessions folder yet
        for child in children:
            try:
                info = session_info(child)
            except SessionError:
                continue
            if info.interrupted:
                found.append((info.saved_at, child, info.step))
        if found:
            found.sort(reverse=True)
            self.post_message(InterruptedSessions([(path, step) for _, path, step in found]))

    def on_interrupted_sessions(self, message: InterruptedSessions) -> None:
        path, step = message.sessions[0]
        more = len(message.sessions) - 1
        also = f" (and {more} more)" if more else ""
        self.notify(
            f"{path} was interrupted at step {step:,}{also} — press o to resume it",
            title="Interrupted run",
            timeout=20,
        )

    # -- export --------------------------------------------------------------------------------
    def export_dir(self) -> Path:
        """The run's session folder once it exists, else sessions_root/exports."""
        if self.session_dir is not None and self.session_dir.is_dir():
            return self.session_dir
        return self.sessions_root / "exports"

    def action_export(self) -> None:
        def chosen(choice: str | None) -> None:
            if choice is not None:
                self.export(choice)

        self.push_screen(ExportMenuScreen(str(self.export_dir())), chosen)

    def export(self, choice: str) -> None:
        """Write one export (export_menu's choices) to export_dir(); a notification says where."""
        from toygeom_tui.export import document_csv, document_json, history_csv, run_geometry

        t = self.current_run
        stem = self.export_dir() / f"{t.config.name}-step{t.step}"
        if choice == SCREENSHOT:
            # After the menu is gone, so the picture is of the screen below it.
            def shoot() -> None:
                svg = self.export_screenshot(title=f"toygeom-tui · {t.config.name}")
                stamp = time.strftime("%Y%m%d-%H%M%S")
                self._write_export(Path(f"{stem}-{stamp}.svg"), lambda: svg)

            self.call_after_refresh(shoot)
        elif choice == HISTORY_CSV:
            self._write_export(Path(f"{stem}-history.csv"), lambda: history_csv(t.history))
        elif choice == GEOMETRY_JSON:
            self._write_export(
                Path(f"{stem}-geometry.json"), lambda: document_json(run_geometry(t))
            )
        elif choice == GEOMETRY_CSV:
            self._write_export(Path(f"{stem}-geometry.csv"), lambda: document_csv(run_geometry(t)))

    @work(thread=True, exit_on_error=False, group="export")
    def _write_export(self, path: Path, text: Callable[[], str]) -> Path:
        """Its result or error reaches on_worker_state_changed as a notification."""
        try:
            content = text()
        except ValueError as err:
            raise RuntimeError(f"cannot export: {err}") from None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, content)
        except OSError as err:
            raise RuntimeError(f"{path}: cannot write ({err.strerror or err})") from None
        return path

    # -- app ----------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        run = self.current_run
        if run is not None and run.remote and run.state not in (DONE, STOPPED, DIVERGED, LOST):
            where = self.session_dir
            self.farewell = f"detached; {where} trains on. Back with: toygeom-tui attach {where}"
        self._leave_run(self.exit, "quit")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        if self.opening is not None:
            return  # no run yet
        yield SystemCommand("Pause or resume training", "p", self.action_toggle_pause)
        yield SystemCommand("Step once", "space, while paused", self.action_step_once)
        yield SystemCommand("Train more steps", "+", self.action_train_more)
        yield SystemCommand("Stop training", "for good: a served run saves and ends",
                            self.action_stop_run)  # fmt: skip
        yield SystemCommand("New run", "n: a form over the run's config", self.action_new_run)
        yield SystemCommand("Save session", "s", self.action_save)
        yield SystemCommand("Open session", "o: the session browser", self.action_open_session)
        yield SystemCommand("Export…", "x: choose what to export", self.action_export)
        for title, choice in (
            ("Export geometry table (JSON)", GEOMETRY_JSON),
            ("Export geometry table (CSV)", GEOMETRY_CSV),
            ("Export history (CSV)", HISTORY_CSV),
            ("Export screenshot (SVG)", SCREENSHOT),
        ):
            yield SystemCommand(title, f"to {self.export_dir()}/", lambda c=choice: self.export(c))
        yield SystemCommand("Toggle EMA smoothing", "e", self.dashboard.action_toggle_smoothing)
        yield SystemCommand("Instance detail", "enter", self.dashboard.action_open_detail)
        yield SystemCommand("Earlier geometry", "<: the previous weight snapshot",
                            lambda: self.action_travel(-1))  # fmt: skip
        yield SystemCommand("Later geometry", ">: the next weight snapshot, then live",
                            lambda: self.action_travel(1))  # fmt: skip
        yield SystemCommand("Live geometry", "l: back from time travel", self.action_back_to_live)
        yield SystemCommand("Keys", "? or F1: every key", self.action_help)


def binding_ids() -> set[str]:
    """Every binding id of the app's screens and widgets (what a keymap may name)."""
    import toygeom_tui.screens
    import toygeom_tui.widgets

    for package in (toygeom_tui.screens, toygeom_tui.widgets):  # all of them, imported or not yet
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(module.name)
    ids: set[str] = set()
    pending = [DOMNode]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("toygeom_tui"):
            ids.update(b.id for b in cls.BINDINGS if isinstance(b, Binding) and b.id)
    return ids


def _saved_at(session_dir: Path | None) -> float | None:
    """When the session in `session_dir` was last saved (None: no session there)."""
    if session_dir is None:
        return None
    from engine.session import SessionError, session_info

    try:
        return session_info(session_dir).saved_at or None
    except SessionError:
        return None


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def run_app(opening: Opening, *, mouse: bool = True) -> None:
    """Run the app on the run `opening` makes until the user quits, then say how to come back
    to a run that trains on (a local run stops with the app unless sent to the background; a
    remote one trains on). What making the run raised is raised here, once the app is gone.

    An opened session waits for `p`; a new run starts training at once, and an interrupted
    session in sessions/ is offered for resume.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # Nothing to paint on: make the run first, so that bad input fails before Textual starts.
        opened = opening.make(lambda _text: None)
        opening = Opening(opening.what, lambda _stage: opened)
    app = ToygeomApp(opening)
    try:
        app.run(mouse=mouse)
    finally:
        if app.current_run is not None:
            app.current_run.close()
    if app.failure is not None:
        raise app.failure
    if app.farewell:
        print(app.farewell)
