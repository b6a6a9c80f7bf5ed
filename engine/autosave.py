"""Autosave: a "log" observer that saves the run every `interval` seconds, atomically.

The session is marked as still running, so a viewer can tell a live run from a finished one,
and a crash or `kill -9` loses at most one interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.session import SessionError, save_session


class Autosaver:
    """Attach with `trainer.on("log", Autosaver(directory))`.

    After each save `on_saved(running)` is called; errors go to `on_error` (raised without one).
    """

    def __init__(
        self,
        directory: str | Path,
        interval: float = 30.0,
        on_error: Callable[[SessionError], None] | None = None,
        on_saved: Callable[[bool], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.interval = interval
        self.on_error = on_error
        self.on_saved = on_saved
        self.last = time.monotonic()

    def __call__(self, trainer: Any) -> None:
        if time.monotonic() - self.last >= self.interval:
            self.save(trainer, running=True)

    def save(self, trainer: Any, *, running: bool) -> None:
        try:
            save_session(trainer, self.directory, running=running)
        except SessionError as err:
            if self.on_error is None:
                raise
            self.on_error(err)
        else:
            if self.on_saved is not None:
                self.on_saved(running)
        self.last = time.monotonic()
