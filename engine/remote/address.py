"""Where a served run listens: DIR/run.sock, and an address for it that fits sun_path."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

SOCKET_FILE = "run.sock"


def socket_address(path: Path) -> tuple[str, int | None]:
    """An address for `path` that fits sun_path (108 bytes): the path itself, or, for a long
    one, the same file through /proc/self/fd of its folder (the folder's fd, to close after)."""
    if len(os.fsencode(path)) < 100:
        return str(path), None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{path.name}", fd


def connect(path: Path, timeout: float) -> socket.socket:
    """A stream socket connected to the run listening at `path` (OSError if none is).

    With a timeout, connect() on a Unix socket whose backlog is full fails at once (EAGAIN)
    instead of waiting; a busy server is not an absent one, so that is retried until `timeout`.
    """
    deadline = time.monotonic() + timeout
    address, dir_fd = socket_address(path)
    try:
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(address)
                return sock
            except BlockingIOError:
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
            except OSError:
                sock.close()
                raise
    finally:
        if dir_fd is not None:
            os.close(dir_fd)
