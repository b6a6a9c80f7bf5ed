"""Sessions: a run saved as data in a directory, never as code.

    DIR/weights.safetensors   W (inst hidden feats), b_final (inst feats), float32; the optimizer
                              moments and the history; its header metadata carries a copy of the
                              session record below.
    DIR/snapshots/STEP-DIGEST.safetensors
                              a weight snapshot W (inst hidden feats) each, named by its step
                              and the digest of its content (engine.snapshot_files).
    DIR/session.json          the session record: format, version, config, step, timestamps,
                              device, engine version, history thinning, the snapshot schedule and
                              the snapshot files of this save ([step, digest] pairs).

Format 2 added the weight snapshots, all in weights.safetensors (snapshots.steps (n,),
snapshots.W (n inst hidden feats)); a format 1 session loads without them (nothing to travel
back through before its saved step, which `Snapshots.unrecorded_until` remembers). Format 3 gave
each snapshot its own file, written once: an autosave late in a run rewrites the weights and the
history (~5 MB for the default run) instead of every snapshot as well (~44 MB). Both still load.

The random state is the seed plus the step (engine.rng is counter-based), so nothing else is
needed to resume exactly. Each file is written atomically (temp, fsync, rename), in this order:
the new snapshots' files, the weights, the record; then the snapshot files the record no longer
lists are removed. The rename of weights.safetensors commits a save: before it, the previous
save's files are all there, untouched; after it, all of the new one's are. If a crash falls
between the last two renames, the weights' embedded record is newer than session.json, and
loading trusts the weights file. A listed snapshot file that cannot be read back as what its
name says (missing, damaged, a link) is left out, and the load says so in one line.

A save has two halves: `capture` copies the state under the trainer's lock (milliseconds, on
the training thread), `write_session` writes it, from any thread (engine.autosave writes on one
of its own). Writes to one directory take turns, and a capture older than the save already
written there is not written: a session never goes back in time.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from engine import __version__
from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.config import ConfigError, RunConfig
from engine.history import History, Snapshots
from engine.jumps import Jump, jump_from_dict
from engine.paths import MAX_RECORD_BYTES, RECORD_FILE, SESSIONS_ROOT
from engine.policy import STATES
from engine.remote.lock import SessionBusy, died_note, died_running, hold, holder, let_go
from engine.safe_read import UnsafeFile, read_regular, read_safetensors, safetensors_header
from engine.snapshot_files import DIGEST, read_listed, remove_unlisted, write_missing

FORMAT = "toygeom-session"
FORMAT_VERSION = 3
FIRST_SNAPSHOT_VERSION = 2  # sessions saved before this kept no weight snapshots
SNAPSHOT_FILES_VERSION = 3  # from this one on each snapshot has its own file (snapshot_files)
WEIGHTS_FILE = "weights.safetensors"
_MAX_WEIGHTS_BYTES = 1 << 34  # 16 GiB: far beyond any model this tool trains


class SessionError(Exception):
    """A session that cannot be saved or loaded; the message is one line naming file and problem."""


@dataclass(frozen=True)
class SessionInfo:
    """What a session browser shows, read from session.json alone (cheap)."""

    path: Path
    config: RunConfig
    step: int
    total_steps: int
    saved_at: float
    final_loss: float | None
    running: bool  # a live process holds the session's writer lock (engine.remote.lock)
    # Its last save says a run was still going, on this host, and no process holds its lock:
    # the run died (killed, crashed, the machine rebooted) after that save.
    interrupted: bool
    state: str | None  # the run's state at that save (engine.policy), None if not one of them


def new_session_dir(name: str, root: Path = SESSIONS_ROOT) -> Path:
    """A fresh directory for a new run: root/NAME-YYYYmmdd-HHMMSS."""
    return root / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def save_session(trainer: Any, directory: str | Path, *, running: bool = False) -> Path:
    """Save `trainer` (an engine.trainer.Trainer) to `directory`, atomically; return the path.

    `running=True` marks an autosave of a run that is still going. Raises SessionError (full
    disk, read-only folder, non-finite weights): the previous save, if any, is left intact.
    `capture` then `write_session` is the same in two halves, for a write on another thread.
    """
    return write_session(capture(trainer, running=running), directory)


@dataclass(frozen=True)
class SessionImage:
    """A run's session as of one step, copied out of its Trainer by `capture`: written by
    `write_session`, from any thread, while the run trains on."""

    tensors: dict[str, torch.Tensor]  # W, b_final, optimizer moments, history arrays (copies)
    snapshots: list[tuple[int, str, torch.Tensor]]  # (step, digest, W); a kept W never changes
    record: dict[str, Any]
    running: bool
    order: int  # captures are numbered: a write never replaces the save of a later capture


_captures = itertools.count(1)


def capture(trainer: Any, *, running: bool = False) -> SessionImage:
    """Copy what a save of `trainer` holds, at one step (under its lock): the weights, the
    optimizer moments and the history; the snapshots by reference. Milliseconds, no disk."""
    trainer.created_at = trainer.created_at or time.time()
    with trainer.consistent():
        tensors = trainer.state_tensors()
        arrays, history_state = trainer.history.to_arrays()
        snapshots, snapshot_state = trainer.snapshots.entries()
        snapshot_state["files"] = [[step, digest] for step, digest, _ in snapshots]
        record = _record(trainer, history_state, snapshot_state, running)
        record["jumps"] = [jump.as_dict() for jump in trainer.history.kept_jumps()]
        order = next(_captures)
    for name, array in arrays.items():
        tensors[name] = torch.from_numpy(np.ascontiguousarray(array))
    return SessionImage(tensors, snapshots, record, running, order)


def write_session(image: SessionImage, directory: str | Path) -> Path:
    """Write a captured session to `directory` (see the module's docstring for the order);
    return the path. Writes to one directory take turns, and one whose capture is older than
    the save already there is skipped (that save is newer). Raises SessionError as
    save_session does, the previous save left intact."""
    from safetensors.torch import save

    directory = Path(directory)
    with _turn(directory) as turn:
        if image.order < turn.newest:
            return directory
        if image.running:  # the writer holds the session's lock while it runs: what running means
            _hold(directory)
        tensors = image.tensors
        if not all(bool(torch.isfinite(tensors[k]).all()) for k in ("W", "b_final")):
            raise SessionError(
                f"{directory}: weights are not finite (the run diverged); not saved, previous "
                "save kept"
            )
        text = json.dumps(image.record, indent=2, allow_nan=False)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            names = write_missing(directory, image.snapshots)  # before the weights: they commit
            blob = save({k: v.contiguous() for k, v in tensors.items()}, metadata={"session": text})
            write_bytes_atomic(directory / WEIGHTS_FILE, blob)
            write_text_atomic(directory / RECORD_FILE, text + "\n")
        except OSError as err:
            raise SessionError(
                f"{directory}: cannot save ({err.strerror or err}); previous save kept"
            ) from None
        remove_unlisted(directory, set(names))  # only once nothing can still list them
        turn.newest = image.order
        if not image.running:  # the last save of this writer
            let_go(directory)
    return directory


@dataclass
class _Turn:
    lock: threading.Lock = field(default_factory=threading.Lock)
    newest: int = 0  # the capture order of the newest save written (or mark_stopped)


_turns: dict[str, _Turn] = {}
_turns_lock = threading.Lock()


@contextmanager
def _turn(directory: Path) -> Iterator[_Turn]:
    """Hold `directory`'s turn to write: one write at a time in this process (another process
    is kept out by its writer lock), so two saves' files never interleave."""
    with _turns_lock:
        turn = _turns.setdefault(os.path.realpath(directory), _Turn())
    with turn.lock:
        yield turn


def _hold(directory: Path) -> None:
    try:
        hold(directory)
    except SessionBusy as err:
        raise SessionError(f"{err}; not saved") from None
    except OSError as err:
        raise SessionError(
            f"{directory}: cannot save ({err.strerror or err}); previous save kept"
        ) from None


def _record(
    trainer: Any, history_state: dict, snapshot_state: dict, running: bool
) -> dict[str, Any]:
    loss = trainer.latest_loss
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "engine_version": __version__,
        "config": trainer.config.to_dict(),
        "step": int(trainer.step),
        "total_steps": int(trainer.total_steps),
        "state": trainer.state,
        "created_at": trainer.created_at,
        "saved_at": time.time(),
        "device": str(trainer.device),
        "rng": {"kind": "splitmix64-counter", "seed": trainer.config.seed},
        "final_loss": _finite_list(loss),
        "history": history_state,
        "snapshots": snapshot_state,
        "writer": {"pid": os.getpid(), "host": socket.gethostname(), "running": running},
    }


def _finite_list(values: np.ndarray | None) -> list[float] | None:
    if values is None:
        return None
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def mark_stopped(directory: str | Path) -> None:
    """Record that nobody writes `directory` any more (a run discarded after an autosave).

    Only session.json changes (atomically); the saved step and weights stay as they are.
    """
    directory = Path(directory)
    with _turn(directory) as turn:
        turn.newest = next(_captures)  # an autosave captured before must not say running again
        record = read_record(directory)
        record["writer"] = {**(record.get("writer") or {}), "running": False}
        try:
            write_text_atomic(directory / RECORD_FILE, json.dumps(record, indent=2) + "\n")
        except OSError as err:
            raise SessionError(f"{directory}: cannot write ({err.strerror or err})") from None
        let_go(directory)


# -- loading --------------------------------------------------------------------------------------
def read_record(directory: str | Path) -> dict[str, Any]:
    """The validated session record of `directory` (the newer of session.json and the weights')."""
    directory = Path(directory)
    if not directory.exists():
        raise SessionError(f"{directory}: no such session directory")
    if not directory.is_dir():
        raise SessionError(f"{directory}: not a directory; a session is a directory")
    record_path = directory / RECORD_FILE
    if not record_path.exists():
        raise SessionError(f"{directory}: not a session (no {RECORD_FILE})")
    record = _parse_record(_read_small(record_path), record_path)
    weights_path = directory / WEIGHTS_FILE
    if weights_path.exists():
        embedded = _embedded_record(weights_path)
        if embedded is not None and (embedded.get("saved_at") or 0) > (record.get("saved_at") or 0):
            record = embedded  # a crash fell between the two renames; the weights are newer
    return record


def _read_small(path: Path) -> bytes:
    try:
        return read_regular(path, MAX_RECORD_BYTES)
    except UnsafeFile as err:
        raise SessionError(str(err)) from None


def _parse_record(raw: bytes, where: Path) -> dict[str, Any]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SessionError(f"{where}: not valid JSON ({err})") from None
    except RecursionError:
        raise SessionError(f"{where}: JSON nested too deeply for a session record") from None
    if not isinstance(record, dict):
        raise SessionError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if record.get("format") != FORMAT:
        raise SessionError(f"{where}: not a toygeom session (format is {record.get('format')!r})")
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SessionError(f"{where}: format_version {version!r} is not an integer")
    if version > FORMAT_VERSION:
        raise SessionError(
            f"{where}: format version {version} is newer than this toygeom-tui reads "
            f"({FORMAT_VERSION}); upgrade toygeom-tui"
        )
    if version < 1:
        raise SessionError(f"{where}: unknown format version {version}")
    for key, kind in (("step", int), ("total_steps", int), ("config", dict)):
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise SessionError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
    if not 0 <= record["step"] <= record["total_steps"] or record["total_steps"] > 10**12:
        raise SessionError(
            f"{where}: step {record['step']} / total_steps {record['total_steps']} are inconsistent"
        )
    _check_optional_fields(record, where)
    return record


def _check_optional_fields(record: dict[str, Any], where: Path) -> None:
    """Fields a load reads beyond the required ones: absent, null, or of their own type."""
    for key in ("saved_at", "created_at"):
        value = record.get(key)
        if value is not None and (type(value) not in (int, float) or not math.isfinite(value)):
            raise SessionError(f"{where}: field {key!r} is not a number")
    for key in ("history", "writer", "snapshots"):
        if not isinstance(record.get(key) or {}, dict):
            raise SessionError(f"{where}: field {key!r} is not an object")
    for series in (record.get("history") or {}).values():
        if not isinstance(series, dict) or not all(type(v) is int for v in series.values()):
            raise SessionError(f"{where}: field 'history' holds a malformed thinning state")
    if not isinstance(record.get("final_loss") or [], list):
        raise SessionError(f"{where}: field 'final_loss' is not a list")
    if not isinstance(record.get("jumps") or [], list):
        raise SessionError(f"{where}: field 'jumps' is not a list")
    if record["format_version"] >= SNAPSHOT_FILES_VERSION:
        _check_snapshot_files(record, where)


def _check_snapshot_files(record: dict[str, Any], where: Path) -> None:
    """Format 3 lists its snapshot files as [step, digest] pairs: steps ascending, none after
    the saved step (file names are made from them, so nothing else may pass)."""
    files = (record.get("snapshots") or {}).get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, list)
        and len(f) == 2
        and type(f[0]) is int
        and isinstance(f[1], str)
        and DIGEST.fullmatch(f[1])
        for f in files
    ):
        raise SessionError(f"{where}: field 'snapshots' has no valid list of its snapshot files")
    steps = [step for step, _ in files]
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)) or (
        steps and not 0 <= steps[0] <= steps[-1] <= record["step"]
    ):
        raise SessionError(f"{where}: field 'snapshots' lists steps that are not steps of this run")


def _embedded_record(path: Path) -> dict[str, Any] | None:
    header = _safetensors_header(path)
    metadata = header.get("__metadata__")
    text = metadata.get("session") if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        return None
    return _parse_record(text.encode("utf-8"), path)


def _safetensors_header(path: Path) -> dict[str, Any]:
    try:
        return safetensors_header(path, _MAX_WEIGHTS_BYTES)
    except UnsafeFile as err:
        raise SessionError(str(err)) from None


def config_from_record(record: dict[str, Any], where: Path) -> RunConfig:
    try:
        return RunConfig.from_dict(record["config"], where=str(where))
    except ConfigError as err:
        raise SessionError(f"{where}: invalid config: {err}") from None
    except TypeError as err:
        raise SessionError(f"{where}: invalid config ({err})") from None


def load_tensors(directory: str | Path, config: RunConfig) -> dict[str, torch.Tensor]:
    """The validated tensors of a session whose config is `config`."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(directory) / WEIGHTS_FILE
    if not path.exists():
        raise SessionError(f"{path}: missing; the session has no weights")
    try:
        _, data = read_safetensors(path, _MAX_WEIGHTS_BYTES)
        tensors = load(data)
    except UnsafeFile as err:
        raise SessionError(str(err)) from None
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise SessionError(f"{path}: not a valid safetensors file ({err})") from None
    except OSError as err:
        raise SessionError(f"{path}: cannot read ({err.strerror or err})") from None
    expected = {
        "W": (config.n_inst, config.d_hidden, config.n_features),
        "b_final": (config.n_inst, config.n_features),
    }
    for name, shape in expected.items():
        if name not in tensors:
            raise SessionError(f"{path}: tensor {name!r} is missing")
        tensor = tensors[name]
        if tuple(tensor.shape) != shape or tensor.dtype != torch.float32:
            raise SessionError(
                f"{path}: {name} is {tensor.dtype} {tuple(tensor.shape)}, but the config needs "
                f"float32 {shape}"
            )
        if not bool(torch.isfinite(tensor).all()):
            raise SessionError(f"{path}: {name} contains NaN or infinite values")
    for name, tensor in tensors.items():
        if name.startswith("optimizer.") and tensor.dtype != torch.float32:
            raise SessionError(f"{path}: {name} has dtype {tensor.dtype}, expected float32")
    return tensors


@dataclass(frozen=True)
class SavedSession:
    """A saved session as a plain value: what it holds, without a Trainer (no optimizer, no
    step kernel), for export, compare and viewing. `load_session` is the one to train it on."""

    directory: Path
    config: RunConfig
    step: int
    total_steps: int
    W: torch.Tensor  # (inst hidden feats)
    b_final: torch.Tensor  # (inst feats)
    history: History
    snapshots: Snapshots
    latest_loss: np.ndarray | None  # (inst,) the final loss when saved, NaN where unknown
    created_at: float | None
    note: str | None = None  # a line for the user about what loading found, if any

    @property
    def latest_frobenius_sq(self) -> np.ndarray:
        """‖W‖²_F per instance (inst,)."""
        return self.W.square().sum(dim=(1, 2)).numpy()


def load_saved(directory: str | Path) -> SavedSession:
    """The session in `directory` as a SavedSession. Raises SessionError with a one-line
    message for anything wrong, as load_session does; nothing is written."""
    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    tensors = load_tensors(directory, config)
    history = History(config.n_inst, config.n_features)
    snapshots = Snapshots(every=1)  # `every` paces recording, and a saved session records none
    note = _restore_records(history, snapshots, record, tensors, directory)
    return SavedSession(
        directory=directory,
        config=config,
        step=record["step"],
        total_steps=record["total_steps"],
        W=tensors["W"],
        b_final=tensors["b_final"],
        history=history,
        snapshots=snapshots,
        latest_loss=_final_loss(record, config),
        created_at=record.get("created_at"),
        note=note,
    )


def load_session(
    directory: str | Path, *, device: str | None = None, compiled: bool | None = None
) -> Any:
    """A Trainer restored from `directory`, ready to `run()` on exactly where it stopped.

    `device` overrides the saved config's device (e.g. open a CUDA session on a CPU box).
    Raises SessionError with a one-line message for anything wrong; nothing is written.
    """
    from engine.trainer import Trainer

    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    if device is not None:
        try:
            config = config.replace(device=device)
        except ConfigError as err:
            raise SessionError(f"{directory}: {err}") from None
    tensors = load_tensors(directory, config)
    trainer = Trainer(config, compiled=compiled)
    snapshots_note = restore_into(trainer, record, tensors, directory)
    trainer.created_at = record.get("created_at")
    trainer.session_dir = directory
    died = died_note(trainer.step) if died_running(directory, record) else None
    notes = (died, batches_note(record), snapshots_note)
    trainer.load_note = "; ".join(n for n in notes if n) or None
    return trainer


# Engine versions that drew other batches than this one, and the data variants they did so for
# (None: every variant): 0.2.0 takes two uniforms a hash, 0.3.0 normal magnitudes from
# engine.data's own log, cos and square root instead of torch's.
OTHER_BATCHES: dict[str, tuple[str, ...] | None] = {"0.1.0": None, "0.2.0": ("normal",)}


def batches_note(record: dict[str, Any]) -> str | None:
    """One line if the session's own engine drew other batches: training it on continues with
    this engine's draws (same distribution), not bit for bit what its engine would have done."""
    version = record.get("engine_version")
    if version not in OTHER_BATCHES:
        return None
    variants = OTHER_BATCHES[version]
    config = record.get("config")
    data = config.get("data", "uniform") if isinstance(config, dict) else None
    if variants is not None and data not in variants:
        return None
    return (
        f"trained by engine {version}, which drew other batches; training on continues with "
        f"{__version__}'s (same distribution, other draws)"
    )


def restore_into(
    trainer: Any, record: dict[str, Any], tensors: dict[str, torch.Tensor], directory: Path
) -> str | None:
    """Put a validated record and its tensors (and snapshot files) into a Trainer built from
    the same config; return a line on snapshot files that could not be read, if any."""
    trainer.total_steps = record["total_steps"]
    try:
        trainer.load_state_tensors(tensors, record["step"])
    except (KeyError, ValueError, RuntimeError) as err:
        raise SessionError(
            f"{directory / WEIGHTS_FILE}: optimizer state does not fit ({err})"
        ) from None
    note = _restore_records(trainer.history, trainer.snapshots, record, tensors, directory)
    loss = _final_loss(record, trainer.config)
    if loss is not None:
        trainer.latest_loss = loss
    trainer.latest_frobenius_sq = tensors["W"].square().sum(dim=(1, 2)).numpy()
    return note


def _restore_records(
    history: History,
    snapshots: Snapshots,
    record: dict[str, Any],
    tensors: dict[str, torch.Tensor],
    directory: Path,
) -> str | None:
    """Fill `history` and `snapshots` from a validated record, its tensors and its snapshot
    files; return a line on snapshot files that could not be read, if any."""
    try:
        arrays = {k: v.numpy() for k, v in tensors.items() if k.startswith("history.")}
        if arrays:
            history.restore(arrays, record.get("history") or {})
        history.restore_jumps(kept_jumps(record, directory))
        saved = saved_snapshots(directory, record, tensors)
        if saved is None:
            snapshots.start_after(record["step"])
            return None
        state = record.get("snapshots") or {}
        snapshots.restore(saved.steps, saved.W, state, tuple(tensors["W"].shape), saved.digests)
    except (KeyError, ValueError, RuntimeError) as err:
        raise SessionError(
            f"{directory / WEIGHTS_FILE}: optimizer or history state does not fit ({err})"
        ) from None
    return saved.note


def kept_jumps(record: dict[str, Any], directory: Path) -> list[Jump]:
    """The jumps a session's history kept from records it thinned away (engine.history), checked
    against its config; SessionError naming the record for one that does not fit."""
    config = config_from_record(record, directory / RECORD_FILE)
    try:
        return [
            jump_from_dict(d, config.n_inst, config.n_features) for d in record.get("jumps") or []
        ]
    except ValueError as err:
        raise SessionError(f"{directory / RECORD_FILE}: field 'jumps': {err}") from None


def _final_loss(record: dict[str, Any], config: RunConfig) -> np.ndarray | None:
    """The record's final loss per instance (inst,), NaN where it was not finite; None if absent."""
    loss = record.get("final_loss")
    if isinstance(loss, list) and len(loss) == config.n_inst:
        return np.array([np.nan if v is None else v for v in loss], np.float32)
    return None


class SavedSnapshots(NamedTuple):
    """A session's weight snapshots as read back (none after its saved step)."""

    steps: torch.Tensor  # (n,) int64, ascending
    W: torch.Tensor  # (n inst hidden feats) float32
    digests: list[str] | None  # each one's weights_digest, when its file was checked against it
    unreadable: dict[int, str]  # step -> one line on why its listed file could not be read
    listed: int  # how many snapshots the session lists

    @property
    def note(self) -> str | None:
        """One line on the listed snapshot files that could not be read, if any."""
        if not self.unreadable:
            return None
        first = next(iter(self.unreadable.values()))
        return (
            f"{len(self.unreadable)} of {self.listed} weight snapshots could not be read and are "
            f"left out ({first}{'; …' if len(self.unreadable) > 1 else ''})"
        )


def saved_snapshots(
    directory: Path, record: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> SavedSnapshots | None:
    """The weight snapshots of a session whose validated record and tensors these are: format
    3's from their files (one that cannot be read is left out, in `unreadable`), format 2's
    from its tensors; None for a session saved without them (format 1)."""
    shape = tuple(tensors["W"].shape)
    if record["format_version"] >= SNAPSHOT_FILES_VERSION:
        listed = [(step, digest) for step, digest in record["snapshots"]["files"]]
        steps, weights, digests, unreadable = read_listed(directory, listed, shape)
        W = torch.stack(weights) if weights else torch.zeros((0, *shape))
        steps_tensor = torch.tensor(steps, dtype=torch.int64)
        return SavedSnapshots(steps_tensor, W, digests, unreadable, len(listed))
    if record["format_version"] < FIRST_SNAPSHOT_VERSION or "snapshots.steps" not in tensors:
        return None
    steps = tensors["snapshots.steps"]
    if steps.dtype != torch.int64 or steps.ndim != 1 or bool((steps > record["step"]).any()):
        raise ValueError("snapshot steps are not steps of this run")
    return SavedSnapshots(steps, tensors["snapshots.W"], None, {}, len(steps))


def session_info(directory: str | Path) -> SessionInfo:
    """Summary of a session for listings; raises SessionError like load_session."""
    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    loss = record.get("final_loss")
    final = None
    if isinstance(loss, list) and loss and all(isinstance(v, int | float) for v in loss):
        final = float(sum(loss))
    return SessionInfo(
        path=directory,
        config=config,
        step=record["step"],
        total_steps=record["total_steps"],
        saved_at=float(record.get("saved_at") or 0.0),
        final_loss=final,
        running=holder(directory) is not None,
        interrupted=died_running(directory, record),
        state=record.get("state") if record.get("state") in STATES else None,
    )
