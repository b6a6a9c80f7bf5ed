"""The Textual app: wiring between one engine Trainer and the screens.

The trainer runs in a thread worker; its observers only post messages (toygeom_tui.messages).
Everything the user commands goes through the trainer's thread-safe controls. A run is one of:
  - trained here: autosaved every `autosave_seconds` into its session folder (marked running),
    saved once more, unmarked, when it ends or the user leaves it with "save";
  - followed: an engine.follow.Follower's trainer, refreshed from the files another process
    (`toygeom-tui train`) writes, read-only.
"""

from __future__ import annotations

import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen
from textual.timer import Timer
from textual.worker import Worker, WorkerState

from engine.atomic import write_text_atomic
from engine.autosave import Autosaver
from engine.config import ConfigError, RunConfig
from engine.follow import Follower
from engine.session import (
    SESSIONS_ROOT,
    SessionError,
    load_session,
    mark_stopped,
    new_session_dir,
    read_record,
    save_session,
    session_info,
)
from engine.sweep import Sweep, SweepError, seed_spec
from engine.sweep_local import LocalExecutor
from engine.trainer import DIVERGED, DONE, TRAINING, Trainer
from toygeom_tui.export import document_csv, document_json, history_csv, trainer_geometry
from toygeom_tui.keymap import config_path, read_keymap
from toygeom_tui.messages import (
    FollowerPolled,
    InterruptedSessions,
    LoadFailed,
    RunLoaded,
    SaveFailed,
    SessionSaved,
    TrainerStateChanged,
    TrainingProgress,
)
from toygeom_tui.screens.dashboard import DashboardScreen
from toygeom_tui.screens.export_menu import (
    GEOMETRY_CSV,
    GEOMETRY_JSON,
    HISTORY_CSV,
    SCREENSHOT,
    ExportMenuScreen,
)
from toygeom_tui.screens.help import HelpScreen
from toygeom_tui.screens.new_run import NewRunScreen, SeedsRun
from toygeom_tui.screens.quit_confirm import QUIT, SAVE_AND_QUIT, QuitConfirmScreen
from toygeom_tui.screens.sessions import SessionBrowserScreen
from toygeom_tui.screens.sweep import SweepScreen
from toygeom_tui.time_travel import Moment, moment_at, no_history_reason, step_after_move

DEFAULT_EXTRA_STEPS = 1_000  # `+` on a run configured with steps = 0
FOLLOW_POLL_SECONDS = 1.0
GIL_SWITCH_INTERVAL = 0.0005  # seconds; see ToygeomApp.on_mount
READ_ONLY = "read-only: following a run another process is writing"
WRITER_STOPPED = "read-only: the writer stopped; open the session (o) to train it further"


class RunWatch:
    """The app's observers on one trainer, and what is known about its saves.

    The observers run on the training thread: they post messages and never touch the UI. The
    save bookkeeping (saved_step, saved_at, marked_running) is only touched on the event loop.
    """

    def __init__(self, app: App, trainer: Trainer, saved_at: float | None = None) -> None:
        self.app, self.trainer = app, trainer
        self.autosaver: Autosaver | None = None
        # A loaded session's own step is saved; a new run has nothing saved yet.
        self.saved_step = trainer.step if trainer.session_dir is not None else 0
        self.saved_at = saved_at  # wall-clock seconds of the newest save, None before one
        self.marked_running = False  # the newest save says "still being written" (by us)
        self.autosave_failing = False  # told the user once; told again after a save succeeds

    # -- on the training thread -----------------------------------------------------------------
    def progress(self, trainer: Trainer) -> None:
        # A single step (paused) is shown at once. While training runs, the dashboard polls the
        # trainer from its refresh tick: a message per interval would only wake the UI thread.
        if trainer.paused:
            self.app.post_message(TrainingProgress(trainer))

    def log(self, trainer: Trainer) -> None:
        self.progress(trainer)
        if self.autosaver is not None:
            self.autosaver(trainer)

    def final_save(self) -> None:
        """Save once more, marked as no longer running (the run ended)."""
        if self.autosaver is not None:
            self.autosaver.save(self.trainer, running=False)

    def _autosaved(self, running: bool) -> None:
        # Periodic autosaves stay quiet; the final one is announced.
        directory = self.autosaver.directory
        self.app.post_message(
            SessionSaved(
                self.trainer, directory, self.trainer.step, running=running, announce=not running
            )
        )

    def _autosave_failed(self, error: SessionError) -> None:
        self.app.post_message(SaveFailed(self.trainer, str(error), autosave=True))

    def state(self, trainer: Trainer) -> None:
        self.app.post_message(TrainerStateChanged(trainer, trainer.state))

    # -- on the event loop ----------------------------------------------------------------------
    def start_autosave(self, directory: Path, interval: float) -> None:
        """Autosave into `directory` every `interval` seconds (0: only the final save, if any)."""
        if self.autosaver is None:
            self.autosaver = Autosaver(
                directory,
                interval if interval > 0 else math.inf,
                on_error=self._autosave_failed,
                on_saved=self._autosaved,
            )

    def attach(self) -> None:
        self.trainer.on("log", self.log)
        self.trainer.on("dims", self.progress)
        self.trainer.on("state", self.state)

    def detach(self) -> None:
        self.trainer.off("log", self.log)
        self.trainer.off("dims", self.progress)
        self.trainer.off("state", self.state)


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
        trainer: Trainer,
        *,
        session_dir: Path | None = None,
        sessions_root: Path = SESSIONS_ROOT,
        autostart: bool = True,
        autosave_seconds: float = 30.0,
        follow: Follower | None = None,
        offer_resume: bool = False,
        keymap_path: Path | None = None,
    ) -> None:
        """`follow`: show `follow.trainer` (pass it as `trainer` too) read-only, refreshed as
        the process writing `follow.directory` saves; `autostart` and autosave do not apply.
        `offer_resume`: on start, name an interrupted session under `sessions_root` (once).
        `keymap_path`: the config.toml whose [keymap] remaps keys (default: the user's)."""
        super().__init__()
        self.keymap_path = keymap_path or config_path()
        self.keymap: dict[str, str] = {}  # binding id -> keys, as applied from keymap_path
        self.view_step: int | None = None  # the recorded step the geometry views show; None: live
        self._moment: Moment | None = None
        if follow is not None and trainer is not follow.trainer:
            raise ValueError("ToygeomApp: with follow=, trainer must be follow.trainer")
        self.trainer = trainer
        self.follower = follow
        self.session_dir = session_dir or trainer.session_dir
        if follow is not None:
            self.session_dir = follow.directory
        self.sessions_root = sessions_root
        self.autostart = autostart and follow is None
        self.autosave_seconds = autosave_seconds
        self.offer_resume = offer_resume and self.session_dir is None and follow is None
        self._watch = RunWatch(self, trainer, _saved_at(self.session_dir))
        self.dashboard = DashboardScreen(trainer)
        self._follow_timer: Timer | None = None
        self._polling = False
        self._writer_alive = True
        self._followed_at = time.time()
        self._follow_error: str | None = None
        self._sweep_stop = threading.Event()  # set on exit: seeds being trained stop

    def get_default_screen(self) -> Screen:
        return self.dashboard

    def on_mount(self) -> None:
        # The training thread needs the GIL between torch ops; with CPython's default 5 ms
        # switch interval, each chart redraw on this thread stalls it for whole intervals.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self._apply_keymap()
        self._watch.attach()
        self.set_interval(1.0, self._show_session_mark)
        self._show_session_mark()
        if self.follower is not None:
            self._start_following()
        elif self.autostart:
            self.start_training()
        if self.offer_resume:
            self._look_for_interrupted(self.sessions_root)

    def on_unmount(self) -> None:
        # Thread workers can't be killed: without this, exiting would wait for the whole run.
        self.trainer.stop()
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

    def _refuse_read_only(self) -> bool:
        """Say why a training key does nothing while following; True if it must do nothing."""
        if self.follower is None:
            return False
        self.notify(READ_ONLY if self._writer_alive else WRITER_STOPPED, severity="warning")
        return True

    # -- training ------------------------------------------------------------------------------
    def start_training(self) -> None:
        self._watch.start_autosave(self.session_path(), self.autosave_seconds)
        self._train(self.trainer, self._watch)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, trainer: Trainer, watch: RunWatch) -> str:
        state = trainer.run()
        if state == DONE and (self.autosave_seconds > 0 or watch.marked_running):
            watch.final_save()
        return state

    def _training_thread_running(self) -> bool:
        return any(
            w.group == "training" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for w in self.workers
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        group, state = event.worker.group, event.state
        if group == "training" and state == WorkerState.ERROR:
            self.notify(f"training stopped by an error: {event.worker.error}", severity="error",
                        timeout=30)  # fmt: skip
        elif group == "export" and state == WorkerState.SUCCESS:
            self.notify(f"wrote {event.worker.result}", title="Exported")
        elif group == "export" and state == WorkerState.ERROR:
            self.notify(str(event.worker.error), title="Not exported", severity="error",
                        timeout=15)  # fmt: skip

    def on_training_progress(self, message: TrainingProgress) -> None:
        if message.trainer is self.trainer:
            self.dashboard.refresh_status()

    def on_trainer_state_changed(self, message: TrainerStateChanged) -> None:
        trainer = message.trainer
        if trainer is not self.trainer:
            return
        self.dashboard.refresh_status(force=True)
        if message.state == DIVERGED:
            self.dashboard.refresh_charts(force=True)
            self.notify(trainer.error or "training diverged", title="Diverged", severity="error",
                        timeout=30)  # fmt: skip
        elif message.state == DONE:
            saves = "" if self.autosave_seconds > 0 else ", s saves"
            self.notify(
                f"step {trainer.step:,} reached; + trains {self._extra_steps():,} more{saves}",
                title="Training done",
            )

    def _extra_steps(self) -> int:
        return self.trainer.config.steps or DEFAULT_EXTRA_STEPS

    def replace_trainer(
        self,
        trainer: Trainer,
        session_dir: Path | None,
        *,
        follower: Follower | None = None,
        saved_at: float | None = None,
        autostart: bool = True,
    ) -> None:
        """Show `trainer` instead of the current one (whose thread is told to stop)."""
        self._watch.detach()
        self.trainer.stop()
        if self._follow_timer is not None:
            self._follow_timer.stop()
            self._follow_timer = None
        self.trainer, self.session_dir, self.follower = trainer, session_dir, follower
        self.view_step, self._moment = None, None
        self._watch = RunWatch(self, trainer, saved_at)
        self._watch.attach()
        self.dashboard.show_trainer(trainer)
        if follower is not None:
            self._start_following()
        elif autostart:
            self.start_training()
        self._show_session_mark()

    # -- control actions --------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        t = self.trainer
        if self._refuse_read_only():
            return
        if t.state in (DONE, DIVERGED):
            self.notify(f"the run is {t.state}; nothing to pause", severity="warning")
        elif not self._training_thread_running():
            if t.step >= t.total_steps:
                self.notify(f"the run is finished at step {t.step:,}; + trains more steps")
                return
            t.resume()
            self.start_training()
        elif t.paused:
            t.resume()
        else:
            t.pause()

    def action_step_once(self) -> None:
        t = self.trainer
        if self._refuse_read_only():
            return
        if t.state in (DONE, DIVERGED) or t.step >= t.total_steps:
            self.notify(f"the run is {t.state}; + trains more steps", severity="warning")
            return
        if t.state == TRAINING and not t.paused:
            self.notify("pause first (p), then space steps once", severity="warning")
            return
        t.pause()
        t.step_once()  # its "log" event redraws the status
        if not self._training_thread_running():
            self.start_training()

    def action_train_more(self) -> None:
        t = self.trainer
        if self._refuse_read_only():
            return
        running = self._training_thread_running()
        if t.state == DIVERGED:
            self.notify(t.error or "the run diverged", severity="error")
        elif running and t.step < t.total_steps:
            self.notify("+ adds steps once the run is done", severity="warning")
        elif t.step < t.total_steps:
            t.resume()
            self.notify(f"continuing from step {t.step:,} to {t.total_steps:,}")
            self.start_training()
        else:
            n = self._extra_steps()
            t.extend(n)
            self.notify(f"training {n:,} more steps, to {t.total_steps:,}")
            self.start_training()

    # -- time travel (toygeom_tui.time_travel) --------------------------------------------------
    def action_travel(self, delta: int) -> None:
        """Show the geometry `delta` (±1) recorded steps from the one shown."""
        t = self.trainer
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
            step = self.trainer.snapshots.at_or_before(step)
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
        t = self.trainer
        if self._moment is None or self._moment.step not in t.snapshots.steps:
            step = t.snapshots.at_or_before(self.view_step)
            if step is None:
                self.view_step = None
                return None
            self.view_step, self._moment = step, moment_at(t, step)
        return self._moment

    # -- runs and sessions -------------------------------------------------------------------------
    def action_new_run(self) -> None:
        def start(chosen: RunConfig | SeedsRun | None) -> None:
            if isinstance(chosen, SeedsRun):
                self._start_seeds(chosen)
            elif chosen is not None:
                self._build_run(chosen)

        self.push_screen(NewRunScreen(self.trainer.config), start)

    def _start_seeds(self, request: SeedsRun) -> None:
        """Train the seeds as a local sweep in worker processes, and show the sweep screen,
        which fills in as they finish; Enter there opens a seed on the dashboard."""
        config = request.config
        directory = new_session_dir(f"{config.name}-seeds", self.sessions_root)
        try:
            sweep = Sweep.create(directory, seed_spec(config, request.seeds))
        except (ConfigError, SweepError) as err:
            self.notify(str(err), title="Cannot start the seeds", severity="error")
            return
        self._run_sweep(sweep, LocalExecutor())  # made here: its start needs the main thread

        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_session(path)

        self.push_screen(SweepScreen(directory), open_)

    @work(thread=True, exit_on_error=False, group="sweep")
    def _run_sweep(self, sweep: Sweep, executor: LocalExecutor) -> None:
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
        try:
            trainer = Trainer(config)
        except ConfigError as err:
            self.post_message(LoadFailed(str(err)))
            return
        self.post_message(RunLoaded(trainer, None, autostart=True, done=f"new run: {config.name}"))

    def action_open_session(self) -> None:
        def open_(path: Path | None) -> None:
            if path is not None:
                self.open_session(path)

        self.push_screen(SessionBrowserScreen(self.sessions_root, in_use=self.session_dir), open_)

    def open_session(self, path: Path) -> None:
        """Open a saved session to continue it, or follow it if another process writes it."""
        ours: set[Path] = set()
        if self.session_dir is not None and self._watch.marked_running:
            ours.add(self.session_dir.resolve())
        self._load_run(Path(path), frozenset(ours))

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _load_run(self, path: Path, ours: frozenset[Path]) -> None:
        try:
            info = session_info(path)
            if info.running and path.resolve() not in ours:
                follower = Follower(path)
                loaded = RunLoaded(
                    follower.trainer,
                    path,
                    follower=follower,
                    saved_at=info.saved_at,
                    done=f"following {path} (written by another process)",
                )
            else:
                trainer = load_session(path)
                where = "finished" if trainer.step >= trainer.total_steps else "p continues"
                loaded = RunLoaded(
                    trainer,
                    path,
                    saved_at=info.saved_at,
                    done=f"opened {path} at step {trainer.step:,} ({where})",
                )
        except SessionError as err:
            self.post_message(LoadFailed(str(err)))
            return
        self.post_message(loaded)

    def on_run_loaded(self, message: RunLoaded) -> None:
        def show() -> None:
            self.replace_trainer(
                message.trainer,
                message.session_dir,
                follower=message.follower,
                saved_at=message.saved_at,
                autostart=message.autostart,
            )
            self.notify(message.done)

        doing = f"open {message.session_dir.name}" if message.session_dir else "start a new run"
        self._leave_run(show, doing)

    def on_load_failed(self, message: LoadFailed) -> None:
        self.notify(message.error, title="Cannot open", severity="error", timeout=15)

    def _leave_run(self, then: Callable[[], None], doing: str) -> None:
        """Do `then` (quit, show another run) once the current run's training is saved, or the
        user chose to let the unsaved steps go."""
        watch = self._watch
        if self.follower is not None:
            then()
            return
        unsaved = self.trainer.step - watch.saved_step
        if unsaved <= 0:
            if watch.marked_running:  # all saved, but the record still says "running"
                self.trainer.pause()
                self._save(self.trainer, self.session_path(), running=False, then=then)
            else:
                then()
            return

        def decide(choice: str | None) -> None:
            if choice == SAVE_AND_QUIT:
                self.trainer.pause()  # the save holds exactly what the user saw
                self._save(self.trainer, self.session_path(), running=False, then=then)
            elif choice == QUIT:
                if watch.marked_running and self.session_dir is not None:
                    try:  # nobody writes it any more: don't list it as running
                        mark_stopped(self.session_dir)
                    except SessionError as err:
                        self.notify(str(err), severity="warning")
                then()

        self.push_screen(QuitConfirmScreen(unsaved, doing), decide)

    def session_path(self) -> Path:
        """Where this run saves: the session it came from, or a new timestamped folder."""
        if self.session_dir is None:
            self.session_dir = new_session_dir(self.trainer.config.name, self.sessions_root)
        return self.session_dir

    def action_save(self) -> None:
        if self._refuse_read_only():
            return
        running = self._training_thread_running() and self.trainer.state not in (DONE, DIVERGED)
        self._save(self.trainer, self.session_path(), running=running, then=None)

    @work(thread=True, group="save", exit_on_error=False)
    def _save(
        self, trainer: Trainer, directory: Path, running: bool, then: Callable[[], None] | None
    ) -> None:
        step = trainer.step
        try:
            save_session(trainer, directory, running=running)
        except SessionError as err:
            self.post_message(SaveFailed(trainer, str(err), autosave=False))
            return
        self.post_message(
            SessionSaved(trainer, directory, step, running=running, announce=True, then=then)
        )

    def on_session_saved(self, message: SessionSaved) -> None:
        if message.trainer is self.trainer:
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
        watch = self._watch if message.trainer is self.trainer else None
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
        """The status line's save state: ("saved 12 s ago" | "unsaved" | "following" |
        "writer stopped", a detail)."""
        now = time.time()
        if self.follower is not None:
            first = "[b]following[/b]" if self._writer_alive else "[b]writer stopped[/b]"
            return first, f"updated {_ago(now - self._followed_at)}"
        watch = self._watch
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
        found: list[tuple[float, Path, int]] = []
        try:
            children = sorted(p for p in root.iterdir() if p.is_dir())
        except OSError:
            return  # no sessions folder yet
        for child in children:
            try:
                record = read_record(child)
                info = session_info(child)
            except SessionError:
                continue
            writer = record.get("writer") or {}
            if (
                writer.get("running")
                and writer.get("host") == socket.gethostname()
                and not info.running
            ):
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

    # -- following a run another process writes ------------------------------------------------
    def _start_following(self) -> None:
        self._writer_alive, self._follow_error = True, None
        self._followed_at = time.time()
        self._follow_timer = self.set_interval(FOLLOW_POLL_SECONDS, self._poll_tick)
        self._poll_tick()

    def _poll_tick(self) -> None:
        if self.follower is not None and not self._polling:
            self._polling = True  # one poll at a time: two would reload the trainer at once
            self._poll(self.follower)

    @work(thread=True, exit_on_error=False, group="follow")
    def _poll(self, follower: Follower) -> None:
        changed = alive = False
        try:
            changed = follower.poll()
            alive = follower.writer_alive
        finally:  # whatever happened, the next tick may poll again
            self.post_message(FollowerPolled(follower, changed, alive))

    def on_follower_polled(self, message: FollowerPolled) -> None:
        self._polling = False
        follower = message.follower
        if follower is not self.follower:
            return
        if message.changed:
            self._followed_at = time.time()
            self.dashboard.refresh_status(force=True)
            self.dashboard.refresh_charts()
        if message.writer_alive != self._writer_alive:
            self._writer_alive = message.writer_alive
            if not message.writer_alive:
                self.notify(
                    f"the process writing {follower.directory} stopped at step "
                    f"{follower.trainer.step:,}; o opens the session to continue it",
                    title="Writer stopped",
                    timeout=15,
                )
        if follower.error is not None and follower.error != self._follow_error:
            self.notify(follower.error, title="Cannot refresh", severity="warning")
        self._follow_error = follower.error
        self._show_session_mark()

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
        t = self.trainer
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
                Path(f"{stem}-geometry.json"), lambda: document_json(trainer_geometry(t))
            )
        elif choice == GEOMETRY_CSV:
            self._write_export(
                Path(f"{stem}-geometry.csv"), lambda: document_csv(trainer_geometry(t))
            )

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
        self._leave_run(self.exit, "quit")

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pause or resume training", "p", self.action_toggle_pause)
        yield SystemCommand("Step once", "space, while paused", self.action_step_once)
        yield SystemCommand("Train more steps", "+, after the run is done", self.action_train_more)
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


def run_app(
    trainer: Trainer,
    *,
    session_dir: Path | None = None,
    mouse: bool = True,
    follow: Follower | None = None,
) -> None:
    """Run the app on `trainer` until the user quits (training stops with it).

    An opened session (`session_dir`) waits for `p`; a new run starts training at once, and
    an interrupted session in sessions/ is offered for resume.
    `follow`: show a run another process is writing, read-only (trainer is follow.trainer).
    """
    app = ToygeomApp(
        trainer,
        session_dir=session_dir,
        autostart=session_dir is None,
        follow=follow,
        offer_resume=session_dir is None and follow is None,
    )
    try:
        app.run(mouse=mouse)
    finally:
        app.trainer.stop()
