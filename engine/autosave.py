"""Autosave: a "log" observer that saves the run every `interval` seconds, atomically.

The session is marked as still running, so a viewer can tell a live run from a finished one,
and a crash or `kill -9` loses at most one interval (plus the write under way).

The training thread only copies the run's state (engine.session.capture: a few ms under the
trainer's lock); the files are written on a thread of the autosaver's own, so the loop never
waits for the disk. One write at a time: while one is under way, no other starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.session import SessionError, SessionImage, capture, write_session


class Autosaver:
    """Attach with `trainer.on("log", Autosaver(directory))`.

    After each save `on_saved(running)` is called, and errors go to `on_error`, both from the
    thread that wrote (without `on_error`, an error is raised by the next call, `save` or
    `wait`). `save()` saves now, after any write under way, and returns once it is written;
    `finish()` is the last save of a process, unmarked, and any save asked for after it (a
    viewer's, from the run's server thread) is unmarked too.
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
        self._writer: threading.Thread | None = None
        self._failed: Exception | None = None  # from a write on the writer thread, to re-raise
        # save() and finish() take turns, so a save that comes after the last one cannot mark
        # the session running again (the record would say so after the process has gone).
        self._saving = threading.Lock()
        self._finished = False

    def __call__(self, trainer: Any) -> None:
        self._raise_failed()
        if time.monotonic() - self.last < self.interval or self.writing:
            return  # not yet, or the last write is still under way: try again next log
        image = capture(trainer, running=True)
        self.last = time.monotonic()
        # Not a daemon: a process that ends while a write is under way finishes it first.
        self._writer = threading.Thread(target=self._write_here, args=(image,), name="autosave")
        self._writer.start()

    @property
    def writing(self) -> bool:
        """A write started by a call is still under way."""
        return self._writer is not None and self._writer.is_alive()

    def save(self, trainer: Any, *, running: bool) -> None:
        """Save now, on this thread, once any write under way is done (its callbacks too)."""
        with self._saving:
            self.wait()
            image = capture(trainer, running=running and not self._finished)
            self.last = time.monotonic()
            self._write(image)

    def finish(self, trainer: Any) -> None:
        """The process's last save: unmarked, as is every save after it."""
        with self._saving:
            self._finished = True
        self.save(trainer, running=False)

    def wait(self) -> None:
        """Return once the write under way, if any, is done; raise what it failed with if
        there is no `on_error`."""
        writer = self._writer
        if writer is not None:
            writer.join()
        self._raise_failed()

    def _write(self, image: SessionImage) -> None:
        try:
            write_session(image, self.directory)
        except SessionError as err:
            if self.on_error is None:
                raise
            self.on_error(err)
        else:
            if self.on_saved is not None:
                self.on_saved(image.running)

    def _write_here(self, image: SessionImage) -> None:
        """The writer thread's body: what would have been raised on the training thread is
        kept for it (the next call raises it)."""
        try:
            self._write(image)
        except Exception as err:
            self._failed = err

    def _raise_failed(self) -> None:
        failed, self._failed = self._failed, None
        if failed is not None:
            raise failed
