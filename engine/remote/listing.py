"""Which runs are training now (`toygeom-tui ps`): the hello of each, nothing more; and which
sessions' runs died (their last save says running, nobody holds their lock). No torch here."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from engine.paths import MAX_RECORD_BYTES, RECORD_FILE
from engine.remote.address import SOCKET_FILE, connect
from engine.remote.lock import died_running, holder
from engine.remote.protocol import LineReader, ProtocolError
from engine.safe_read import UnsafeFile, read_regular


def probe(directory: str | Path, timeout: float = 10.0) -> dict[str, Any] | None:
    """The hello of the run serving `directory` (pid, step, total, rate, state, ...), or None
    when nobody serves it. A socket left by a killed run (its writer lock free) is removed;
    a writer that holds the lock but does not answer in `timeout` is {"pid": PID, "state":
    "not answering"}."""
    directory = Path(directory)
    path = directory / SOCKET_FILE
    try:
        seen = os.lstat(path)
    except OSError:
        return None
    pid = holder(directory)
    if pid is None:
        with contextlib.suppress(OSError):
            if os.lstat(path).st_ino == seen.st_ino:  # not one a new writer just bound
                os.unlink(path)  # stale: the process that bound it is gone
        return None
    try:
        sock = connect(path, timeout)
    except OSError:
        return {"pid": pid, "state": "not answering"}
    try:
        return LineReader(sock).read("hello")
    except (OSError, ProtocolError, EOFError):
        return {"pid": pid, "state": "not answering"}
    finally:
        sock.close()


def _candidates(root: str | Path) -> list[Path]:
    """`root` and its immediate subdirectories: where sessions are looked for."""
    root = Path(root)
    try:
        return [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]
    except OSError:
        return []


def running(root: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(directory, hello) of every served run in `root` or its immediate subdirectories."""
    found = []
    for directory in _candidates(root):
        hello = probe(directory)
        if hello is not None:
            found.append((directory, hello))
    return found


def died(root: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(directory, session record) of every session in `root` or its immediate subdirectories
    whose run died after its last save (engine.remote.lock.died_running). The record is read
    from session.json alone; an unreadable one is skipped (the app's browser says why)."""
    found = []
    for directory in _candidates(root):
        try:
            record = json.loads(read_regular(directory / RECORD_FILE, MAX_RECORD_BYTES))
        except (OSError, UnsafeFile, ValueError):
            continue
        if not isinstance(record, dict) or not all(
            type(record.get(key)) is int for key in ("step", "total_steps")
        ):
            continue  # not a session record (the browser says what it is)
        if died_running(directory, record):
            found.append((directory, record))
    return found
