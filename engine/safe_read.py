"""Read a file of a session directory without trusting it: regular files only, bounded.

A session directory may hold anything (a symlink to /dev/zero, a FIFO that would block open()
forever, a file of many gigabytes), so every session read goes through `read_regular`: opened
with O_NOFOLLOW | O_NONBLOCK (a FIFO opens at once, a link is refused), checked with fstat to be
a regular file of at most `limit` bytes, then read whole. A safetensors file's header is parsed
here first (`safetensors_header`), so a foreign, truncated or huge file fails with one line.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

MAX_HEADER_BYTES = 1 << 24  # a safetensors header of a session: a few kB of JSON


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


def safetensors_header(path: Path, limit: int) -> dict:
    """The parsed JSON header of the safetensors file `path` (a regular file of at most `limit`
    bytes), after checking that its declared tensors end exactly where the file does. Reads
    the header alone: for a file whose metadata is all that is wanted."""
    with open_regular(path, limit) as f:
        try:
            return _checked_header(path, os.fstat(f.fileno()).st_size, f.read)
        except OSError as err:
            raise UnsafeFile(f"{path}: cannot read ({err.strerror or err})") from None


def read_safetensors(path: Path, limit: int) -> tuple[dict, bytes]:
    """The header (checked as `safetensors_header` checks it) and the bytes of the safetensors
    file `path`, from one read: the check holds for the very bytes loaded, however the file
    changes meanwhile."""
    data = read_regular(path, limit)
    return _checked_header(path, len(data), io.BytesIO(data).read), data


def _checked_header(path: Path, size: int, read: Callable[[int], bytes]) -> dict:
    """The header of a safetensors file of `size` bytes whose start `read` gives."""
    not_ours = UnsafeFile(f"{path}: not a safetensors file (corrupt, truncated or foreign)")
    prefix = read(8)
    if len(prefix) < 8:
        raise UnsafeFile(f"{path}: truncated ({size} bytes); not a safetensors file")
    (n,) = struct.unpack("<Q", prefix)
    if n > min(size - 8, MAX_HEADER_BYTES):
        raise not_ours
    try:
        header = json.loads(read(n).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise not_ours from None
    if not isinstance(header, dict):
        raise not_ours
    offsets = [
        v.get("data_offsets")
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict)
    ]
    ends = [o[1] for o in offsets if isinstance(o, list) and len(o) == 2]
    if not all(type(e) is int for e in ends):
        raise not_ours
    end = max(ends, default=0)
    if 8 + n + end != size:
        raise UnsafeFile(f"{path}: truncated or corrupt ({size} bytes, expected {8 + n + end})")
    return header
