"""Read a file of a session directory without trusting it: regular files only, bounded.

A session directory may hold anything (a symlink to /dev/zero, a FIFO that would block open()
forever, a file of many gigabytes), so every session read goes through `read_regular`: opened
with O_NOFOLLOW | O_NONBLOCK (a FIFO opens at once, a link is refused), checked with fstat to be
a regular file of at most `limit` bytes, then read whole.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class UnsafeFile(Exception):
    """The file is a link, not a regular file, too large, or unreadable; one line for the user."""


def open_regular(path: Path, limit: int) -> BinaryIO:
    """`path` opened for reading, if it is a regular file of at most `limit` bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as err:
        if os.path.islink(path):
            raise UnsafeFile(
                f"{path}: a symbolic link; a session holds regular files only"
            ) from None
        raise UnsafeFile(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path}: not a regular file; a session holds regular files only")
        if st.st_size > limit:
            raise UnsafeFile(f"{path}: {st.st_size} bytes is far too large for a session file")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_regular(path: Path, limit: int) -> bytes:
    """The bytes of the regular file `path`, if it holds at most `limit` of them."""
    with open_regular(path, limit) as f:
        try:
            data = f.read(limit + 1)
        except OSError as err:
            raise UnsafeFile(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) > limit:  # it grew while we read it
        raise UnsafeFile(f"{path}: more than {limit} bytes; far too large for a session file")
    return data
