"""Messages from the training and saving threads to the UI.

A run (engine.run) calls its observers on its own thread (training, or a remote run's reader);
they only post these (post_message is thread-safe) and never touch widgets. While training
runs, the UI polls the run from a
refresh tick instead of being told about steps; progress is sent for single steps taken while
paused, and is coalescible: a newer progress message replaces an unprocessed older one.

Each is a dataclass (Textual's Message initialises in __post_init__); eq=False keeps messages
compared by identity, as Textual's queues expect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:  # engine.run imports torch, which the app loads only after its first paint
    from engine.run import Run


@dataclass(eq=False)
class TrainingProgress(Message):
    """A step taken while paused (space), to show at once."""

    run: Run

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TrainingProgress) and message.run is self.run


@dataclass(eq=False)
class RunStateChanged(Message):
    """run.state became `state` (never coalesced: done or diverged must be seen)."""

    run: Run
    state: str


@dataclass(eq=False)
class SessionSaved(Message):
    """`run` at `step` was saved to `directory` (by an autosave, `s`, or the final save).

    `running`: the record says the run is still being written. `announce`: tell the user (a
    manual or final save; autosaves only update the status line). `then`: what the user asked
    to happen once saved (quit, open another run).
    """

    run: Run
    directory: Path
    step: int
    _: KW_ONLY
    running: bool
    announce: bool
    then: Callable[[], None] | None = None


@dataclass(eq=False)
class SaveFailed(Message):
    """A save of `run` failed; `autosave` failures are told once until a save succeeds."""

    run: Run
    error: str
    _: KW_ONLY
    autosave: bool


@dataclass(eq=False)
class RunLoaded(Message):
    """A run made off the event loop (opened or attached session, new run), ready to be shown.

    `saved_at`: wall-clock time of the session's newest save, if any.
    """

    run: Run
    session_dir: Path | None
    _: KW_ONLY
    saved_at: float | None = None
    autostart: bool = False
    done: str = ""


@dataclass(eq=False)
class LoadFailed(Message):
    """Opening a session or building a run failed; `error` is one line naming the problem."""

    error: str


@dataclass(eq=False)
class InterruptedSessions(Message):
    """Sessions under the sessions folder whose writer died mid-run: (path, step), newest first."""

    sessions: list[tuple[Path, int]]
