"""Messages from the training and saving threads to the UI.

A run (engine.run) calls its observers on its own thread (training, or a remote run's reader);
they only post these (post_message is thread-safe) and never touch widgets. While training
runs, the UI polls the run from a
refresh tick instead of being told about steps; progress is sent for single steps taken while
paused, and is coalescible: a newer progress message replaces an unprocessed older one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # engine.run imports torch, which the app loads only after its first paint
    from engine.run import Run


class TrainingProgress(Message):
    """A step taken while paused (space), to show at once."""

    def __init__(self, run: Run) -> None:
        super().__init__()
        self.run = run

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.run is self.run


class RunStateChanged(Message):
    """run.state became `state` (never coalesced: done or diverged must be seen)."""

    def __init__(self, run: Run, state: str) -> None:
        super().__init__()
        self.run = run
        self.state = state


class SessionSaved(Message):
    """`run` at `step` was saved to `directory` (by an autosave, `s`, or the final save).

    `running`: the record says the run is still being written. `announce`: tell the user (a
    manual or final save; autosaves only update the status line). `then`: what the user asked
    to happen once saved (quit, open another run).
    """

    def __init__(
        self,
        run: Run,
        directory: Path,
        step: int,
        *,
        running: bool,
        announce: bool,
        then: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self.run, self.directory, self.step = run, directory, step
        self.running, self.announce, self.then = running, announce, then


class SaveFailed(Message):
    """A save of `run` failed; `autosave` failures are told once until a save succeeds."""

    def __init__(self, run: Run, error: str, *, autosave: bool) -> None:
        super().__init__()
        self.run, self.error, self.autosave = run, error, autosave


class RunLoaded(Message):
    """A run made off the event loop (opened or attached session, new run), ready to be shown.

    `saved_at`: wall-clock time of the session's newest save, if any.
    """

    def __init__(
        self,
        run: Run,
        session_dir: Path | None,
        *,
        saved_at: float | None = None,
        autostart: bool = False,
        done: str = "",
    ) -> None:
        super().__init__()
        self.run, self.session_dir = run, session_dir
        self.saved_at, self.autostart, self.done = saved_at, autostart, done


class LoadFailed(Message):
    """Opening a session or building a run failed; `error` is one line naming the problem."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class InterruptedSessions(Message):
    """Sessions under the sessions folder whose writer died mid-run: (path, step), newest first."""

    def __init__(self, sessions: list[tuple[Path, int]]) -> None:
        super().__init__()
        self.sessions = sessions
