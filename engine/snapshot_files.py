"""A session's weight snapshots on disk (format 3 on): one safetensors file each, in a folder of
their own beside the weights (up to 128 of them: the session folder itself stays three entries).

    DIR/snapshots/STEP-DIGEST.safetensors  "W" (inst hidden feats) float32: the snapshot at STEP
                                           (12 digits), DIGEST its engine.history.weights_digest

A file's name says what it holds, so a file once written never needs writing again: a save
writes the files of its new snapshots only (a few hundred kB, not every snapshot each time; and
any listed file whose length is not the one its header gives, as one cut short) and,
once it is committed, removes the files it does not list (dropped snapshots, and any a save left
when it crashed before committing). A load reads the listed files and checks each against its
digest, so a stale, foreign or damaged file is never taken for a snapshot of this session.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
from pathlib import Path

import torch

from engine.atomic import write_bytes_atomic
from engine.history import weights_digest
from engine.safe_read import MAX_HEADER_BYTES, UnsafeFile, read_safetensors

FOLDER = "snapshots"
DIGEST = re.compile(r"[0-9a-f]{16}")
NAME = re.compile(r"\d{12,}-[0-9a-f]{16}\.safetensors")  # a file's name in FOLDER


def file_name(step: int, digest: str) -> str:
    """The snapshot's path, relative to the session folder."""
    return f"{FOLDER}/{step:012d}-{digest}.safetensors"


def _folder(directory: Path) -> Path | None:
    """DIR/snapshots if it is a real folder (not a link, not a file), else None."""
    folder = directory / FOLDER
    return folder if _is(folder, stat.S_ISDIR) else None


def write_missing(directory: Path, entries: list[tuple[int, str, torch.Tensor]]) -> list[str]:
    """Write the file of each (step, digest, W) that `directory` lacks or holds cut short (each
    atomically); return every entry's file name, in order. OSError (full disk, read-only folder)
    propagates."""
    from safetensors.torch import save

    if entries and _folder(directory) is None:
        if os.path.lexists(directory / FOLDER):  # a link or a file where the folder goes: not
            os.unlink(directory / FOLDER)  # followed, replaced (what it held is no snapshot)
        (directory / FOLDER).mkdir()
    names = []
    for step, digest, W in entries:
        name = file_name(step, digest)
        if not _whole(directory / name, W.numel() * W.element_size()):
            metadata = {"step": str(step), "digest": digest}
            write_bytes_atomic(directory / name, save({"W": W.contiguous()}, metadata=metadata))
        names.append(name)
    return names


def _whole(path: Path, data_bytes: int) -> bool:
    """Whether `path` itself is a regular file of the length its header says for `data_bytes` of
    tensor data. Anything else there (nothing, a link, a folder, a file cut short or grown, as a
    full disk or an interrupted copy leaves it) is written again; a file damaged inside is left
    out when loaded (its digest). One 8-byte read a file: a save looks at every listed one."""
    if not _is(path, stat.S_ISREG):  # before opening: a FIFO would block the open
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        size = os.fstat(fd).st_size
        header = int.from_bytes(os.pread(fd, 8, 0), "little") if size >= 8 else -1
    except OSError:
        return False
    finally:
        os.close(fd)
    return size == 8 + header + data_bytes


def _is(path: Path, kind) -> bool:
    """Whether `path` itself (a link is not followed) is of `kind` (stat.S_ISREG, S_ISDIR)."""
    try:
        return kind(os.lstat(path).st_mode)
    except OSError:
        return False


def remove_unlisted(directory: Path, listed: set[str]) -> None:
    """Remove every snapshot file in `directory` not in `listed` (best effort: one that cannot
    be removed now is removed by a later save)."""
    folder = _folder(directory)
    if folder is None:
        return
    with contextlib.suppress(OSError), os.scandir(folder) as found:
        for entry in found:
            if NAME.fullmatch(entry.name) and f"{FOLDER}/{entry.name}" not in listed:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def read_listed(
    directory: Path, listed: list[tuple[int, str]], shape: tuple[int, ...]
) -> tuple[list[int], list[torch.Tensor], list[str], dict[int, str]]:
    """The listed (step, digest) snapshots of one W shape that read back whole: (steps, Ws,
    digests, unreadable), the last giving, for each step whose file did not, one line on why
    (missing, a link, not a safetensors file, the wrong shape, not what its digest says)."""
    steps, weights, digests, unreadable = [], [], [], {}
    limit = 8 + MAX_HEADER_BYTES + 4 * math.prod(shape)
    if listed and _folder(directory) is None and os.path.lexists(directory / FOLDER):
        why = f"{directory / FOLDER}: not a folder (a link or a file)"
        return [], [], [], {step: why for step, _ in listed}
    for step, digest in listed:
        path = directory / file_name(step, digest)
        try:
            W = _read_one(path, limit, shape, digest)
        except UnsafeFile as err:
            unreadable[step] = str(err)
            continue
        steps.append(step)
        weights.append(W)
        digests.append(digest)
    return steps, weights, digests, unreadable


def _read_one(path: Path, limit: int, shape: tuple[int, ...], digest: str) -> torch.Tensor:
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not os.path.lexists(path):
        raise UnsafeFile(f"{path}: missing")
    _, data = read_safetensors(path, limit)
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise UnsafeFile(f"{path}: not a valid safetensors file ({err})") from None
    W = tensors.get("W")
    if set(tensors) != {"W"} or W.dtype != torch.float32 or tuple(W.shape) != shape:
        raise UnsafeFile(f"{path}: does not hold one float32 W of shape {shape}")
    if not bool(torch.isfinite(W).all()):
        raise UnsafeFile(f"{path}: W contains NaN or infinite values")
    if weights_digest(W) != digest:
        raise UnsafeFile(f"{path}: its content is not the snapshot its name says (damaged)")
    return W
