"""RemoteRun: a run served by another process (engine.remote.server), with a local run's face.

    run = RemoteRun.connect("sessions/fg")     # hello, history and weights, then live updates
    run.on("log", lambda r: print(r.step, r.steps_per_second))
    run.pause(); run.step_once(); run.extend(1000); run.save(); run.resume()
    run.snapshots.at(run.snapshots.steps[-1])   # W of a snapshot, fetched once, then cached
    run.close()                                 # detach: the run trains on

Besides the Run face (engine.run) it reads as a Trainer does: `W`, `b_final`, `snapshots`
(RemoteSnapshots: the steps kept current, each W fetched on demand), `feature_probability` and
`importance` (inst feats, from the config), and `eta`, `metric_time` from the run's clock.
A reader thread applies each message to the mirror (history, latest loss and ‖W‖²_F, weights,
snapshot steps, state) under `consistent()` and then calls the observers, as a Trainer does
from its thread.
If the connection ends without the run saying it finished, `state` becomes policy.LOST.
Controls wait for the server's answer and raise RunRefused with its reason (so call them from
any thread but an observer: observers run on the reader thread, which reads that answer).
"""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine.config import (
    ConfigError,
    RunConfig,
    resolve_feature_probability,
    resolve_importance,
)
from engine.history import History, SnapshotSteps
from engine.jumps import jump_from_dict
from engine.policy import LOST
from engine.remote import protocol
from engine.remote.address import SOCKET_FILE, connect
from engine.remote.protocol import LineReader, ProtocolError
from engine.run import EVENTS, RunRefused
from engine.trainer import DIVERGED, DONE, PAUSED, STOPPED

FINAL = (DONE, STOPPED, DIVERGED)
SNAPSHOT_CACHE_BYTES = 64 << 20  # fetched snapshots kept; the newest always (one may be larger)


class RemoteError(Exception):
    """No run to attach to at that directory, or it spoke nonsense; one line for the user."""


class RemoteRun:
    remote = True

    def __init__(self, sock: socket.socket, directory: Path, hello: dict[str, Any]) -> None:
        try:
            self.config = RunConfig.from_dict(hello["config"], where="the run's hello")
        except (ConfigError, TypeError) as err:
            raise RemoteError(f"{directory}: the run sent an invalid config ({err})") from None
        self._sock = sock
        self.session_dir = directory
        self.pid: int = hello["pid"]
        self.step: int = hello["step"]
        self.total_steps: int = hello["total"]
        self.state: str = hello["state"]
        self.log_every: int = hello["log_every"]
        self.dims_every: int = hello["dims_every"]
        self.device = f"pid {self.pid}"
        self.error: str | None = None
        self.preparing = False
        self.steps_per_second: float = hello["rate"]
        self.eta: float | None = None
        self.metric_time: float | None = None  # the run's clock at the latest batch's oldest log
        self.history = History(self.config.n_inst, self.config.n_features)
        self.latest_loss: np.ndarray | None = None
        self.latest_frobenius_sq: np.ndarray | None = None
        c = self.config
        self.W = torch.zeros(c.n_inst, c.d_hidden, c.n_features)
        self.b_final = torch.zeros(c.n_inst, c.n_features)
        self.feature_probability = resolve_feature_probability(c)  # (inst feats), as the run's
        self.importance = resolve_importance(c)  # (inst feats)
        self.snapshots = RemoteSnapshots(self)
        self._lock = threading.RLock()
        self._observers: dict[str, list[Callable[[Any], None]]] = {e: [] for e in EVENTS}
        self._ids = itertools.count(1)
        self._acks: dict[int, dict[str, Any]] = {}
        self._acked = threading.Condition()
        self._send_lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._lines = LineReader(sock)
        # Records up to these steps are in the mirror, and an older or repeated one is dropped:
        # the greeting's history holds every record the run offered up to the greeting's step,
        # kept or thinned out (its thinning state counts those). Not the last kept record's
        # step: a mirror that took a thinned-out one again from the queue kept every other
        # record out of step with the run's from there on.
        self._history_step = self._dims_step = self.step
        self._closed = False

    # -- connecting ----------------------------------------------------------------------------
    @classmethod
    def connect(cls, directory: str | Path, timeout: float = 30.0) -> RemoteRun:
        """Attach to the run serving `directory`: its history so far, then live updates."""
        directory = Path(directory)
        try:
            sock = connect(directory / SOCKET_FILE, timeout)
        except OSError as err:
            raise RemoteError(
                f"{directory}: no run is serving this session ({err.strerror or err})"
            ) from None
        try:
            lines = LineReader(sock)
            run = cls(sock, directory, lines.read("hello"))
            run._lines = lines
            run._apply(lines.read("history"))
            run._apply(lines.read("weights"))
            run._apply(lines.read("snapshot_steps"))
        except (OSError, ProtocolError, EOFError) as err:
            sock.close()
            raise RemoteError(f"{directory}: the run did not greet properly ({err})") from None
        sock.settimeout(None)
        run._reader = threading.Thread(target=run._read_loop, name="remote-run", daemon=True)
        run._reader.start()
        return run

    # -- the face of a run ----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self.state == PAUSED

    @property
    def alive(self) -> bool:
        """True while connected to the serving process."""
        return self._reader is not None and self._reader.is_alive()

    def on(self, event: str, fn: Callable[[Any], None]) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; choose one of {', '.join(EVENTS)}")
        self._observers[event].append(fn)

    def off(self, event: str, fn: Callable[[Any], None]) -> None:
        self._observers[event].remove(fn)

    def consistent(self) -> threading.RLock:
        return self._lock

    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        with self._lock:
            return self.W.clone(), self.b_final.clone(), self.step

    def start(self) -> None:
        """A served run already trains (or waits paused); resuming is `resume()`."""

    def pause(self) -> None:
        self._control("pause")

    def resume(self) -> None:
        self._control("resume")

    def step_once(self) -> None:
        self._control("step")

    def extend(self, n: int) -> None:
        if n < 1:
            raise ValueError("extend: n must be a positive number of steps")
        self._control("extend", n)

    def stop(self) -> None:
        self._control("stop")

    def save(self) -> Path:
        self._control("save")
        return self.session_dir

    def close(self) -> None:
        """Detach; the run trains on."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if self._reader is not None:
            self._reader.join(timeout=5)
        self._sock.close()

    def wait_for(self, condition: Callable[[RemoteRun], bool], timeout: float = 10.0) -> bool:
        """Block until `condition(self)` holds after some message (True) or `timeout` (False)."""
        deadline = time.monotonic() + timeout
        with self._acked:
            while not condition(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked.wait(min(left, 0.1))
        return True

    # -- control ----------------------------------------------------------------------------------
    def _control(self, op: str, n: int | None = None, timeout: float = 30.0) -> None:
        fields: dict[str, Any] = {"op": op} if n is None else {"op": op, "n": n}
        ack = self._request("control", op, timeout, **fields)
        if not ack["ok"]:
            raise RunRefused(ack["error"] or f"{op} refused")

    def _fetch(self, step: int, timeout: float = 30.0) -> torch.Tensor:
        """W (inst hidden feats) of the snapshot at `step`, from the server; KeyError if none."""
        if threading.current_thread() is self._reader:
            raise RuntimeError("snapshots.at() waits for the reader thread; not from an observer")
        answer = self._request("fetch", f"the snapshot at step {step}", timeout, step=step)
        if answer["type"] == "ack":
            raise KeyError(answer["error"])
        W = protocol.unpack(answer["W"])
        _check(W, tuple(self.W.shape))
        return torch.from_numpy(W)

    def _request(self, kind: str, what: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for the answer carrying its id (RunRefused if none comes)."""
        if not self.alive:
            raise RunRefused(f"{self.session_dir}: the run's process is gone")
        ident = next(self._ids)
        try:
            with self._send_lock:
                self._sock.sendall(protocol.encode(kind, id=ident, **fields))
        except OSError:
            raise RunRefused(f"{self.session_dir}: the run's process is gone") from None
        if not self.wait_for(lambda r: ident in r._acks or not r.alive, timeout):
            raise RunRefused(f"{self.session_dir}: the run did not answer {what} in {timeout:g} s")
        answer = self._acks.pop(ident, None)
        if answer is None:
            raise RunRefused(f"{self.session_dir}: the run's process is gone")
        return answer

    # -- the reader thread -----------------------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while True:
                message = self._lines.read()
                events = self._apply(message)
                with self._acked:
                    self._acked.notify_all()
                for event in events:
                    for fn in list(self._observers[event]):
                        fn(self)
        except (OSError, ProtocolError, EOFError):
            pass
        if self.state not in FINAL and not self._closed:
            self.state = LOST
            self.error = f"the run's process (pid {self.pid}) is gone"
            for fn in list(self._observers["state"]):
                fn(self)
        with self._acked:
            self._acked.notify_all()

    def _apply(self, m: dict[str, Any]) -> tuple[str, ...]:
        """Fold one message into the mirror; the observer events it means."""
        kind = m["type"]
        with self._lock:
            if kind == "metrics":  # a batch of consecutive log records
                steps, losses, frobs = m["steps"], m["loss"], m["frob"]
                if not len(steps) == len(losses) == len(frobs):
                    raise ProtocolError("metrics: steps, loss and frob of different lengths")
                if steps[-1] <= self._history_step:
                    return ()  # already in the history this viewer caught up with
                self.step, self.total_steps, self.state = steps[-1], m["total"], m["state"]
                self.steps_per_second, self.eta, self.metric_time = m["rate"], m["eta"], m["time"]
                for step, loss_list, frob_list in zip(steps, losses, frobs, strict=True):
                    loss, frob = _vector(loss_list), _vector(frob_list)
                    if len(loss) != self.config.n_inst or len(frob) != self.config.n_inst:
                        raise ProtocolError("metrics for another number of instances")
                    if step > self._history_step:
                        self.history.record_metrics(step, loss, frob)
                self.latest_loss, self.latest_frobenius_sq = loss, frob
                return ("log",)
            if kind == "dims":  # a batch of consecutive D_i records
                steps, dims = m["steps"], protocol.unpack(m["dims"])
                _check(dims, (len(steps), self.config.n_inst, self.config.n_features))
                newer = False
                for step, record in zip(steps, dims, strict=True):
                    if step > self._dims_step:  # older: in the history caught up with
                        self.history.record_dims(step, record)
                        self._dims_step, newer = step, True
                return ("dims",) if newer else ()
            if kind == "weights":
                W, b = protocol.unpack(m["W"]), protocol.unpack(m["b_final"])
                _check(W, tuple(self.W.shape))
                _check(b, tuple(self.b_final.shape))
                self.W.copy_(torch.from_numpy(W))
                self.b_final.copy_(torch.from_numpy(b))
                return ()
            if kind == "state":
                self.state, self.step, self.total_steps = m["state"], m["step"], m["total"]
                self.error = m["error"]
                return ("state",)
            if kind == "history":
                self._restore_history(m)
                return ("log",)
            if kind == "ack" or kind == "snapshot":
                self._acks[m["id"]] = m
                return ()
            if kind == "snapshot_steps":
                steps = protocol.unpack(m["steps"])
                _check(steps, (len(steps),))
                self.snapshots._listed(steps.tolist(), m["unrecorded_until"])
                return ()
        raise ProtocolError(f"unexpected {kind} after the greeting")

    def _restore_thinned(self, thinning: dict[str, Any], steps, loss, frob, dims_steps, dims):
        """The run's history as it holds it, thinning state included, so the live records
        that follow are kept or dropped as the run keeps them: the mirror stays the run's own
        history record for record (replayed through record_*, it thinned the run's already
        thinned records again)."""
        metrics = _thinning_state(thinning["metrics"], len(steps))
        dims_state = _thinning_state(thinning["dims"], len(dims_steps))
        if metrics is None or dims_state is None:
            raise ProtocolError("history: a thinning state that does not fit its records")
        arrays = {
            "history.metrics.steps": steps,
            "history.metrics.values": np.stack([loss, frob], axis=1),
            "history.dims.steps": dims_steps,
            "history.dims.values": dims,
        }
        try:
            self.history.restore(arrays, {"metrics": metrics, "dims": dims_state})
        except ValueError as err:  # more records than this mirror holds
            raise ProtocolError(f"history: {err}") from None

    def _restore_history(self, m: dict[str, Any]) -> None:
        c = self.config
        steps, loss, frob = (protocol.unpack(m[k]) for k in ("steps", "loss", "frob"))
        dims_steps, dims = protocol.unpack(m["dims_steps"]), protocol.unpack(m["dims"])
        n, k = len(steps), len(dims_steps)
        _check(loss, (n, c.n_inst))
        _check(frob, (n, c.n_inst))
        _check(dims, (k, c.n_inst, c.n_features))
        try:  # the jumps kept from records the run has halved away
            kept = [jump_from_dict(d, c.n_inst, c.n_features) for d in m.get("jumps") or []]
        except ValueError as err:
            raise ProtocolError(f"history: {err}") from None
        self.history.restore_jumps(kept)
        self._restore_thinned(m["thinning"], steps, loss, frob, dims_steps, dims)
        if n:
            self.latest_loss, self.latest_frobenius_sq = loss[-1], frob[-1]


def _thinning_state(state: object, count: int) -> dict[str, int] | None:
    """A series' thinning state from the wire (Series.state), or None if it is not one."""
    if not isinstance(state, dict) or set(state) != {"count", "stride", "since"}:
        return None
    if not all(type(v) is int for v in state.values()) or state["count"] != count:
        return None
    if state["stride"] < 1 or not 0 <= state["since"] < state["stride"]:
        return None
    return state


def _vector(values: list[float | None]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float32)


def _check(array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise ProtocolError(f"array of shape {array.shape}, expected {shape}")


class RemoteSnapshots(SnapshotSteps):
    """The served run's weight snapshots, read as engine.history.Snapshots is.

    `steps`, `len()`, `at_or_before()` and `unrecorded_until` answer from the list of steps the
    server sends whenever the run keeps a new snapshot. `at(step)` fetches W (inst hidden feats)
    from the server and caches it (bounded, SNAPSHOT_CACHE_BYTES): it blocks for the answer, so
    call it from a worker thread, never from an observer (observers run on the reader thread,
    the one that reads that answer; RuntimeError there).
    """

    def __init__(self, run: RemoteRun) -> None:
        self._run = run
        self._steps: list[int] = []
        self.unrecorded_until = 0
        self._cache: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    def at(self, step: int) -> torch.Tensor:
        """W (inst hidden feats) recorded at exactly `step` (KeyError if none): a copy."""
        with self._lock:
            if step not in self._steps:
                raise KeyError(f"no snapshot at step {step}")
            cached = self._cache.get(step)
            if cached is not None:
                self._cache.move_to_end(step)
                return cached.clone()
        W = self._run._fetch(step)
        with self._lock:
            self._cache[step] = W
            size = sum(w.nbytes for w in self._cache.values())
            while size > SNAPSHOT_CACHE_BYTES and len(self._cache) > 1:
                size -= self._cache.popitem(last=False)[1].nbytes
        return W.clone()

    def _listed(self, steps: list[int], unrecorded_until: int) -> None:
        """The server's current list (reader thread); forget W of steps the run has dropped."""
        if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
            raise ProtocolError("snapshot steps are not ascending")
        with self._lock:
            self._steps, self.unrecorded_until = steps, unrecorded_until
            for gone in set(self._cache) - set(steps):
                del self._cache[gone]
