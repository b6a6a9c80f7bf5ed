"""Follow a session that another process (`toygeom-tui train`) is writing: read-only.

`Follower.trainer` is an ordinary Trainer that is never run; `poll()` refreshes it from disk when
the trainer process has saved again, so any view of a Trainer can show a remote run unchanged.
Saves are atomic, so a poll sees one whole save or the previous one, never a mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.session import (
    WEIGHTS_FILE,
    SessionError,
    config_from_record,
    load_session,
    load_tensors,
    read_record,
    restore_into,
    session_info,
)

FOLLOWING = "following"


class Follower:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.trainer: Any = load_session(self.directory, compiled=False)
        self.trainer.state = FOLLOWING  # a mirror: it never runs, so no other state applies
        self.error: str | None = None  # the last failed refresh, for the user
        self._stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.directory / WEIGHTS_FILE).stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    @property
    def writer_alive(self) -> bool:
        """True while the writing process says it runs and is alive on this host."""
        try:
            return session_info(self.directory).running
        except SessionError:
            return False

    def poll(self) -> bool:
        """Reload if the session changed on disk; True when the trainer was refreshed."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        try:
            record = read_record(self.directory)
            config = config_from_record(record, self.directory)
            if config != self.trainer.config:
                raise SessionError(f"{self.directory}: the session's config changed; reopen it")
            tensors = load_tensors(self.directory, config)
            restore_into(self.trainer, record, tensors, self.directory)
        except SessionError as err:
            self.error = str(err)
            return False
        self._stamp, self.error = stamp, None
        return True
