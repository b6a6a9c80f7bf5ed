"""Where a served run listens: DIR/run.sock, and an address for it that fits sun_path."""

from __future__ import annotations

import os
from pathlib import Path

SOCKET_FILE = "run.sock"


def socket_address(path: Path) -> tuple[str, int | None]:
    """An address for `path` that fits sun_path (108 bytes): the path itself, or, for a long
    one, the same file through /proc/self/fd of its folder (the folder's fd, to close after)."""
    if len(os.fsencode(path)) < 100:
        return str(path), None
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{path.name}", fd
