"""One writer per session: an flock on DIR/.writer.lock, held for as long as the writer lives.

The kernel drops an flock when its process dies, however it dies (SIGKILL included), so a held
lock means a live writer and a free one means none: no pid-file guessing. The holder writes its
pid into the file so a refusal can name it.

`train` takes the lock for its whole run (WriterLock); a writer that only autosaves (the app)
gets it from its first `save_session(running=True)` (hold) until its last save (let_go).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Any

LOCK_FILE = ".writer.lock"


class SessionBusy(Exception):
    """Another process is writing this session; `pid` names it (None if it could not be read)."""

    def __init__(self, directory: Path, pid: int | None) -> None:
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{directory}: is being trained by {who}; attach to it or stop it first")
        self.pid = pid


class WriterLock:
    """`WriterLock(directory).acquire()` or SessionBusy; released by `release()` or by dying."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._key = self.directory.resolve()
        self._fd: int | None = None

    def acquire(self) -> WriterLock:
        if self._key in _held:  # a second flock from this process would wait on itself
            raise SessionBusy(self.directory, os.getpid())
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = _open(self.directory)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise SessionBusy(self.directory, pid) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _held[self._key] = self
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None
            _held.pop(self._key, None)
            _taken.discard(self._key)


_held: dict[Path, WriterLock] = {}  # the locks this process holds, by resolved directory
_taken: set[Path] = set()  # those of them that hold() took, which let_go() releases


def hold(directory: str | Path) -> None:
    """This process writes `directory`: take its lock unless this process holds it already.

    SessionBusy if another process does; OSError if the lock file cannot be made."""
    key = Path(directory).resolve()
    if key not in _held:
        WriterLock(directory).acquire()
        _taken.add(key)


def let_go(directory: str | Path) -> None:
    """Release the lock that hold() took for `directory` (one taken by WriterLock stays)."""
    key = Path(directory).resolve()
    if key in _taken:
        _held[key].release()


def holder(directory: str | Path) -> int | None:
    """The pid of the live writer of `directory`, or None when nobody holds its lock.

    (0 when the lock is held but the pid cannot be read, e.g. in the instant before it is written.)
    """
    try:
        fd = os.open(Path(directory) / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def died_running(directory: str | Path, record: dict[str, Any]) -> bool:
    """Whether `record`, the session record of `directory`, is an autosave of a run still going
    on this host (its writer field) that no live process holds the lock of: that run died
    (killed, crashed, the machine rebooted) after the save. Another host's run cannot be told."""
    writer = record.get("writer") or {}
    if not isinstance(writer, dict) or not writer.get("running"):
        return False
    return writer.get("host") == socket.gethostname() and holder(directory) is None


def died_note(step: int) -> str:
    """What a session whose run died (`died_running`) says of it: loading it, and `ps`."""
    return f"its run stopped without saving after step {step:,} (killed or crashed)"


def _open(directory: Path) -> int:
    return os.open(
        directory / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
    )


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
