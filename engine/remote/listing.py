"""Which runs are training now (`toygeom-tui ps`): the hello of each, nothing more."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from engine.remote.address import SOCKET_FILE, connect
from engine.remote.lock import holder
from engine.remote.protocol import LineReader, ProtocolError


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


def running(root: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """(directory, hello) of every served run in `root` or its immediate subdirectories."""
    root = Path(root)
    try:
        candidates = [root, *sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())]
    except OSError:
        return []
    found = []
    for directory in candidates:
        hello = probe(directory)
        if hello is not None:
            found.append((directory, hello))
    return found
