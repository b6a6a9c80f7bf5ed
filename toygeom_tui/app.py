"""The Textual app: wiring between one engine Trainer and the screens.

The trainer runs in a thread worker; its observers only post messages (toygeom_tui.messages).
Everything the user commands goes through the trainer's thread-safe controls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from engine.config import ConfigError, RunConfig
from engine.session import SessionError, load_session, save_session
from engine.trainer import DIVERGED, DONE, TRAINING, Trainer
from toygeom_tui.messages import TrainerStateChanged, TrainingProgress
from toygeom_tui.screens.dashboard import DashboardScreen
from toygeom_tui.screens.help import HelpScreen
from toygeom_tui.screens.quit_confirm import SAVE_AND_QUIT, QuitConfirmScreen
from toygeom_tui.screens.session_picker import SessionPickerScreen

PROGRESS_INTERVAL = 0.15  # seconds between progress messages from the training thread
DEFAULT_EXTRA_STEPS = 1_000  # `+` on a run configured with steps = 0


class TrainerWatch:
    """The app's observers on one trainer (called on the training thread: post, never touch UI)."""

    def __init__(self, app: App, trainer: Trainer) -> None:
        self.app, self.trainer = app, trainer
        self._last = 0.0

    def progress(self, trainer: Trainer) -> None:
        now = time.monotonic()
        if now - self._last >= PROGRESS_INTERVAL:
            self._last = now
            self.app.post_message(TrainingProgress(trainer))

    def state(self, trainer: Trainer) -> None:
        self.app.post_message(TrainerStateChanged(trainer, trainer.state))

    def attach(self) -> None:
        self.trainer.on("log", self.progress)
        self.trainer.on("dims", self.progress)
        self.trainer.on("state", self.state)

    def detach(self) -> None:
        self.trainer.off("log", self.progress)
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
        Binding("o", "open_session", "Open", id="app.open_session"),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        trainer: Trainer,
        *,
        session_dir: Path | None = None,
        sessions_root: Path = Path("sessions"),
        autostart: bool = True,
    ) -> None:
        super().__init__()
        self.trainer = trainer
        self.session_dir = session_dir or trainer.session_dir
        self.sessions_root = sessions_root
        self.autostart = autostart
        self.saved_step = _saved_step(trainer)  # training beyond this step is in no save
        self._watch = TrainerWatch(self, trainer)
        self.dashboard = DashboardScreen(trainer)

    def get_default_screen(self) -> Screen:
        return self.dashboard

    def on_mount(self) -> None:
        self._watch.attach()
        if self.autostart:
            self.start_training()

    def on_unmount(self) -> None:
        # Thread workers can't be killed: without this, exiting would wait for the whole run.
        self.trainer.stop()

    # -- training ------------------------------------------------------------------------------
    def start_training(self) -> None:
        self._train(self.trainer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="training")
    def _train(self, trainer: Trainer) -> str:
        return trainer.run()

    def _training_thread_running(self) -> bool:
        return any(
            w.group == "training" and w.state in (WorkerState.PENDING, WorkerState.RUNNING)
            for w in self.workers
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "training" and event.state == WorkerState.ERROR:
            self.notify(f"training stopped by an error: {event.worker.error}", severity="error",
                        timeout=30)  # fmt: skip

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
            self.notify(
                f"step {trainer.step:,} reached; + trains {self._extra_steps():,} more, s saves",
                title="Training done",
            )

    def _extra_steps(self) -> int:
        return self.trainer.config.steps or DEFAULT_EXTRA_STEPS

    def replace_trainer(self, trainer: Trainer, session_dir: Path | None) -> None:
        """Show and train `trainer` instead of the current one (whose thread is told to stop)."""
        self._watch.detach()
        self.trainer.stop()
        self.trainer, self.session_dir, self.saved_step = trainer, session_dir, _saved_step(trainer)
        self._watch = TrainerWatch(self, trainer)
        self._watch.attach()
        self.dashboard.show_trainer(trainer)
        self.start_training()

    # -- control actions --------------------------------------------------------------------------
    def action_toggle_pause(self) -> None:
        t = self.trainer
        if t.state in (DONE, DIVERGED):
            self.notify(f"the run is {t.state}; nothing to pause", severity="warning")
        elif not self._training_thread_running():
            t.resume()
            self.start_training()
        elif t.paused:
            t.resume()
        else:
            t.pause()

    def action_step_once(self) -> None:
        t = self.trainer
        if t.state in (DONE, DIVERGED) or t.step >= t.total_steps:
            self.notify(f"the run is {t.state}; + trains more steps", severity="warning")
            return
        if t.state == TRAINING and not t.paused:
            self.notify("pause first (p), then space steps once", severity="warning")
            return
        before = t.step
        t.pause()
        t.step_once()
        if not self._training_thread_running():
            self.start_training()
        self._show_step_after(before)

    def _show_step_after(self, before: int) -> None:
        """Redraw the status as soon as the single step lands (no log event marks it)."""
        deadline = time.monotonic() + 5.0
        trainer = self.trainer

        def check() -> None:
            if trainer.step != before or time.monotonic() > deadline:
                timer.stop()
                self.dashboard.refresh_status()

        timer = self.set_interval(0.01, check)

    def action_train_more(self) -> None:
        t = self.trainer
        if t.state == DIVERGED:
            self.notify(t.error or "the run diverged", severity="error")
        elif self._training_thread_running() and t.step < t.total_steps:
            self.notify("+ adds steps once the run is done", severity="warning")
        else:
            n = self._extra_steps()
            t.extend(n)
            self.notify(f"training {n:,} more steps, to {t.total_steps:,}")
            self.start_training()

    # -- runs and sessions -------------------------------------------------------------------------
    def action_new_run(self) -> None:
        try:
            from toygeom_tui.screens.new_run import NewRunScreen
        except ImportError:
            self.notify("the new-run form is not available in this build", severity="warning")
            return

        def start(config: RunConfig | None) -> None:
            if config is not None:
                self._open_trainer(lambda: Trainer(config), None, f"new run: {config.name}")

        self.push_screen(NewRunScreen(self.trainer.config), start)

    def action_open_session(self) -> None:
        def open_(path: Path | None) -> None:
            if path is not None:
                self._open_trainer(lambda: load_session(path), path, f"opened {path}")

        self.push_screen(SessionPickerScreen(self.sessions_root), open_)

    @work(thread=True, exclusive=True, exit_on_error=False, group="open")
    def _open_trainer(
        self, make: Callable[[], Trainer], session_dir: Path | None, done: str
    ) -> None:
        """Build a Trainer off the event loop (loading, compiling); show it or say why not."""
        try:
            trainer = make()
        except (SessionError, ConfigError) as err:
            self.call_from_thread(self.notify, str(err), title="Cannot open", severity="error",
                                  timeout=15)  # fmt: skip
            return
        self.call_from_thread(self.replace_trainer, trainer, session_dir)
        self.call_from_thread(self.notify, done)

    def session_path(self) -> Path:
        """Where `s` saves: the session this run came from, or a new timestamped folder."""
        if self.session_dir is None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            self.session_dir = self.sessions_root / f"{self.trainer.config.name}-{stamp}"
        return self.session_dir

    def action_save(self) -> None:
        self._save(self.trainer, self.session_path(), then_exit=False)

    @work(thread=True, group="save", exit_on_error=False)
    def _save(self, trainer: Trainer, directory: Path, then_exit: bool) -> None:
        step = trainer.step
        try:
            path = save_session(trainer, directory)
        except SessionError as err:
            self.call_from_thread(self.notify, str(err), title="Not saved", severity="error",
                                  timeout=15)  # fmt: skip
            return
        self.call_from_thread(self._saved, trainer, path, step, then_exit)

    def _saved(self, trainer: Trainer, path: Path, step: int, then_exit: bool) -> None:
        if trainer is self.trainer:
            self.saved_step = max(self.saved_step, step)
        self.notify(f"saved step {step:,} to {path}", title="Saved")
        if then_exit:
            self.exit()

    # -- app ----------------------------------------------------------------------------------
    async def action_quit(self) -> None:
        unsaved = self.trainer.step - self.saved_step
        if unsaved <= 0:
            self.exit()
            return

        def decide(choice: str | None) -> None:
            if choice == SAVE_AND_QUIT:
                self.trainer.pause()  # the save holds exactly what the user saw
                self._save(self.trainer, self.session_path(), then_exit=True)
            elif choice is not None:
                self.exit()

        self.push_screen(QuitConfirmScreen(unsaved), decide)

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
        yield SystemCommand("Open session", "o: pick a saved session", self.action_open_session)
        yield SystemCommand("Toggle EMA smoothing", "e", self.dashboard.action_toggle_smoothing)
        yield SystemCommand("Instance detail", "enter", self.dashboard.action_open_detail)
        yield SystemCommand("Keys", "? or F1: every key", self.action_help)


def _saved_step(trainer: Trainer) -> int:
    """The step the newest save holds: a loaded session's own step, else nothing saved yet."""
    return trainer.step if trainer.session_dir is not None else 0


def run_app(trainer: Trainer, *, session_dir: Path | None = None, mouse: bool = True) -> None:
    """Run the app on `trainer` until the user quits (training stops with it)."""
    app = ToygeomApp(trainer, session_dir=session_dir)
    try:
        app.run(mouse=mouse)
    finally:
        app.trainer.stop()
