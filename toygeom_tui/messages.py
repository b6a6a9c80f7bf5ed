"""Messages from the training and saving threads to the UI.

The trainer calls its observers on the training thread; they only post these (post_message is
thread-safe) and never touch widgets. While training runs, the UI polls the trainer from a
refresh tick instead of being told about steps; progress is sent for single steps taken while
paused, and is coalescible: a newer progress message replaces an unprocessed older one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.message import Message

from engine.follow import Follower
from engine.trainer import Trainer


class TrainingProgress(Message):
    """A step taken while paused (space), to show at once."""

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.trainer is self.trainer


class TrainerStateChanged(Message):
    """trainer.state became `state` (never coalesced: done or diverged must be seen)."""

    def __init__(self, trainer: Trainer, state: str) -> None:
        super().__init__()
        self.trainer = trainer
        self.state = state


class SessionSaved(Message):
    """`trainer` at `step` was saved to `directory` (by an autosave, `s`, or the final save).

    `running`: the record says the run is still being written. `announce`: tell the user (a
    manual or final save; autosaves only update the status line). `then`: what the user asked
    to happen once saved (quit, open another run).
    """

    def __init__(
        self,
        trainer: Trainer,
        directory: Path,
        step: int,
        *,
        running: bool,
        announce: bool,
        then: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.trainer, self.directory, self.step = trainer, directory, step
        self.running, self.announce, self.then = running, announce, then


class SaveFailed(Message):
    """A save of `trainer` failed; `autosave` failures are told once until a save succeeds."""

    def __init__(self, trainer: Trainer, error: str, *, autosave: bool) -> None:
        super().__init__()
        self.trainer, self.error, self.autosave = trainer, error, autosave


class RunLoaded(Message):
    """A run built off the event loop (opened session, follower, new run), ready to be shown.

    `follower`: an engine.follow.Follower when the session is being written by another process
    (show it read-only). `saved_at`: wall-clock time of the session's newest save, if any.
    """

    def __init__(
        self,
        trainer: Trainer,
        session_dir: Path | None,
        *,
        follower: Follower | None = None,
        saved_at: float | None = None,
        autostart: bool = False,
        done: str = "",
    ) -> None:
        super().__init__()
        self.trainer, self.session_dir, self.follower = trainer, session_dir, follower
        self.saved_at, self.autostart, self.done = saved_at, autostart, done


class LoadFailed(Message):
    """Opening a session or building a run failed; `error` is one line naming the problem."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FollowerPolled(Message):
    """One poll of a followed session: `changed` (new save loaded), whether its writer lives."""

    def __init__(self, follower: Follower, changed: bool, writer_alive: bool) -> None:
        super().__init__()
        self.follower, self.changed, self.writer_alive = follower, changed, writer_alive


class InterruptedSessions(Message):
    """Sessions under the sessions folder whose writer died mid-run: (path, step), newest first."""

    def __init__(self, sessions: list[tuple[Path, int]]) -> None:
        super().__init__()
        self.sessions = sessions
