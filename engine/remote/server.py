"""Serve a training run over a Unix socket in its session directory: DIR/run.sock.

`RunServer(trainer, directory, save=...)` listens from `start()` until `close()` on a thread of
its own; the Trainer never waits for it. Its observers only copy a few numbers (and W once a
second) and wake that thread; encoding and sending happen there, and only while someone is
connected.

Who may connect: the socket is mode 0600 and every peer's uid (SO_PEERCRED) must be ours.
What a connection may do: send control and fetch lines (engine.remote.protocol); a fetch is
answered from the trainer's weight snapshots. Anything else — garbage, a line over the limit,
half a line left hanging, a client too slow to read what it is sent or asking faster than it
reads (more than `out_limit` bytes queued for it) — drops that connection; the run trains on.
The caller holds the session's WriterLock, so a socket file left by a killed run is stale and
is replaced.
"""

from __future__ import annotations

import contextlib
import os
import queue
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine import policy
from engine.remote import protocol
from engine.remote.address import SOCKET_FILE, socket_address
from engine.remote.protocol import ProtocolError

if TYPE_CHECKING:
    import torch

MAX_CLIENTS = 64
PARTIAL_LINE_TIMEOUT = 5.0  # seconds half a line may hang before the connection is dropped
OUT_LIMIT = 64 << 20  # bytes queued for one client before it counts as too slow and is dropped
WEIGHTS_EVERY = 1.0  # seconds between weight updates to viewers
# Live metrics leave in batches, at most this many seconds apart: one message a log, ~1,400 a
# second from a pentagon run, took 20% of a core on the server thread (and the GIL from the
# training thread) and 17% in the viewer, and the run lost 18% of its rate to one viewer.
METRICS_EVERY = 0.02


class _Log:
    """One log record, as the training thread copied it; consecutive ones are encoded as one
    metrics message on the server thread."""

    __slots__ = ("step", "total", "loss", "frob", "rate", "eta", "state", "time")

    def __init__(self, trainer: Any) -> None:
        rate = trainer.steps_per_second
        self.step, self.total = trainer.step, trainer.total_steps
        self.loss, self.frob = trainer.latest_loss, trainer.latest_frobenius_sq
        self.rate = rate
        self.eta = (trainer.total_steps - trainer.step) / rate if rate > 0 else None
        self.state, self.time = trainer.state, time.time()


class _DimsRecord:
    """One D_i record the run offered (step, inst × feats); consecutive ones are encoded as one
    dims message on the server thread."""

    __slots__ = ("step", "dims")

    def __init__(self, step: int, dims: np.ndarray) -> None:
        self.step, self.dims = step, dims


_Batched = _Log | _DimsRecord


def peer_allowed(sock: socket.socket, uid: int) -> bool:
    """True if the process at the other end of the Unix socket `sock` runs as `uid`."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, peer_uid, _gid = struct.unpack("3i", creds)
    return peer_uid == uid


class _Client:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbuf = bytearray()
        self.partial_since: float | None = None
        self.out: bytearray = bytearray()


class RunServer:
    def __init__(
        self,
        trainer: Any,
        directory: str | Path,
        save: Callable[[], None],
        *,
        uid: int | None = None,
        partial_line_timeout: float = PARTIAL_LINE_TIMEOUT,
        out_limit: int = OUT_LIMIT,
    ) -> None:
        """`save()` saves the session now (the train command's autosaver); `uid`: who may
        connect (default: the user running this process)."""
        self.partial_line_timeout = partial_line_timeout
        self.out_limit = out_limit
        self.trainer = trainer
        self.directory = Path(directory)
        self.path = self.directory / SOCKET_FILE
        self.save = save
        self.uid = os.getuid() if uid is None else uid
        self.dropped = 0  # connections dropped for breaking the protocol or the rules
        self._events: queue.SimpleQueue[Callable[[], bytes] | _Log | None] = queue.SimpleQueue()
        self._woken_at = 0.0  # when a log or D_i record last woke the server thread
        self._clients: dict[int, _Client] = {}
        self._any = False  # someone is connected: only then do observers do anything
        self._close_seen = False  # the server thread took close()'s sentinel off the queue
        self._weights_at = 0.0
        self._snapshot_steps: list[int] = []  # the snapshot steps viewers were last told of
        self._history_line = (-1, b"")  # (history.version, its encoded line): a burst of
        # connections within one log interval encodes the history (MBs) once
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._listener = self._listen()
        self._thread = threading.Thread(target=self._serve, name="run-server", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------
    def _listen(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # stale: the caller holds the writer lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, dir_fd = socket_address(self.path)
        old = os.umask(0o177)  # created 0600: no window in which others could connect
        try:
            sock.bind(address)
        finally:
            os.umask(old)
            if dir_fd is not None:
                os.close(dir_fd)
        os.chmod(self.path, 0o600)
        sock.listen(128)  # a burst of connections waits here; MAX_CLIENTS is enforced on accept
        sock.setblocking(False)
        return sock

    def start(self) -> RunServer:
        for event in ("log", "dims", "state"):
            self.trainer.on(event, getattr(self, f"_on_{event}"))
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()
        return self

    def close(self) -> None:
        """Send what is queued (the final state), close every connection, remove the socket."""
        for event in ("log", "dims", "state"):
            with contextlib.suppress(ValueError):
                self.trainer.off(event, getattr(self, f"_on_{event}"))
        self._events.put(None)
        self._wake()
        self._thread.join(timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @property
    def clients(self) -> int:
        return len(self._clients)

    @property
    def native_id(self) -> int | None:
        """The server thread's id in the kernel (/proc/self/task/ID), for measuring its CPU."""
        return self._thread.native_id

    # -- observers: in the training thread, cheap ------------------------------------------------
    # Each queues a function that encodes its message later, on the server thread: the training
    # thread only copies what it must (the few numbers, and W once a second), never encodes.
    def _on_log(self, trainer: Any) -> None:
        if not self._any:
            return
        self._queue_soon(_Log(trainer))
        now = time.monotonic()
        if now - self._weights_at >= WEIGHTS_EVERY:
            self._weights_at = now
            weights = trainer.snapshot()
            self._queue(lambda: _weights(*weights))
        steps = trainer.snapshots.steps
        if steps != self._snapshot_steps:
            self._snapshot_steps = steps
            self._queue(lambda: _snapshot_steps(steps, trainer.snapshots.unrecorded_until))

    def _on_dims(self, trainer: Any) -> None:
        if not self._any:
            return
        # The record the run offered, not its history's latest kept one: thinned out, that
        # repeated an older step, and the viewer recorded it again.
        record = trainer.dims_record
        if record is not None:
            self._queue_soon(_DimsRecord(*record))

    def _on_state(self, trainer: Any) -> None:
        if self._any:
            state = (trainer.state, trainer.step, trainer.total_steps, trainer.error)
            self._queue(lambda: _state(*state))

    def _queue(self, message: Callable[[], bytes]) -> None:
        self._events.put(message)
        self._wake()

    def _queue_soon(self, message: _Batched) -> None:
        """Queue a log or D_i record; wake the server thread only if it has not been woken in
        METRICS_EVERY (else its next turn, at most that far off, takes it), so a fast run's
        records leave in batches."""
        self._events.put(message)
        now = time.monotonic()
        if now - self._woken_at >= METRICS_EVERY:
            self._woken_at = now
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"!")

    # -- messages ----------------------------------------------------------------------------------
    def _state(self) -> bytes:
        t = self.trainer
        return _state(t.state, t.step, t.total_steps, t.error)

    def _greeting(self) -> bytes:
        """hello, history, weights and snapshot steps of one and the same step."""
        t = self.trainer
        with t.consistent():
            version = t.history.version  # copied under the lock, encoded after it
            copied = None if version == self._history_line[0] else _history_arrays(t.history)
            hello = protocol.encode(
                "hello",
                pid=os.getpid(),
                session=str(self.directory),
                config=t.config.to_dict(),
                step=t.step,
                total=t.total_steps,
                state=t.state,
                rate=t.steps_per_second,
                log_every=t.log_every,
                dims_every=t.dims_every,
            )
            weights = t.snapshot()
            snapshot_steps = t.snapshots.steps
        if copied is not None:
            self._history_line = (version, _history(*copied))
        listed = _snapshot_steps(snapshot_steps, t.snapshots.unrecorded_until)
        return hello + self._history_line[1] + _weights(*weights) + listed

    def _fetch(self, message: dict[str, Any]) -> bytes:
        """The snapshot asked for, or a refusal naming the step (it may have been thinned out)."""
        step = message["step"]
        try:
            W = self.trainer.snapshots.at(step)  # Snapshots is thread-safe: no trainer lock
        except KeyError:
            error = f"no weight snapshot at step {step}"
            return protocol.encode("ack", id=message["id"], ok=False, error=error)
        packed = protocol.pack(W.numpy())
        return protocol.encode("snapshot", id=message["id"], step=step, W=packed)

    # -- the server thread -------------------------------------------------------------------------
    def _serve(self) -> None:
        while True:
            # With viewers, a turn at least every METRICS_EVERY: logs queued without a wake
            # leave within it.
            for key, mask in self._selector.select(timeout=METRICS_EVERY if self._any else 1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_r, 4096)
                elif mask & selectors.EVENT_READ:
                    self._receive(key.data)
                if mask & selectors.EVENT_WRITE and key.data in self._clients.values():
                    self._flush(key.data)
            self._close_seen |= self._broadcast()
            if self._close_seen:
                break
            self._drop_hanging()
        for client in list(self._clients.values()):
            client.sock.setblocking(True)
            client.sock.settimeout(1.0)
            with contextlib.suppress(OSError):
                client.sock.sendall(client.out)
            self._drop(client, counted=False)
        self._selector.close()
        self._listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. out of descriptors: refuse this one, keep serving
                return
            try:
                if len(self._clients) >= MAX_CLIENTS or not peer_allowed(sock, self.uid):
                    raise ConnectionRefusedError
                sock.setblocking(False)
                client = _Client(sock)
                # The run's records are queued from before the greeting copies its history:
                # one logged while a long history is encoded (a fast run logs every ms) was
                # in neither, and the viewer's thinning drifted from the run's. Those queued
                # before it go to the viewers that were there; what this one gets twice, the
                # greeting's and the queue's, it drops by step.
                self._any = True
                self._close_seen |= self._broadcast()
                client.out += self._greeting()
            except OSError:
                self._any = bool(self._clients)
                self.dropped += 1
                sock.close()
                continue
            self._clients[sock.fileno()] = client
            self._selector.register(sock, selectors.EVENT_READ, client)
            self._flush(client)

    def _receive(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the viewer left; the run goes on
            self._drop(client, counted=False)
            return
        client.inbuf += data
        try:
            while b"\n" in client.inbuf:
                line, _, rest = client.inbuf.partition(b"\n")
                client.inbuf = bytearray(rest)
                message = protocol.decode(
                    bytes(line), protocol.CLIENT_TYPES, protocol.CLIENT_LINE_LIMIT
                )
                if message["type"] == "fetch":
                    client.out += self._fetch(message)
                else:
                    client.out += self._control(client, message)
                if len(client.out) > self.out_limit:  # asks faster than it reads: checked per
                    self._flush(client)  # line, so a flood of fetches costs at most out_limit
                    if client not in self._clients.values():
                        return
            if len(client.inbuf) > protocol.CLIENT_LINE_LIMIT:
                raise ProtocolError("line over the limit")
        except ProtocolError:
            self._drop(client)
            return
        client.partial_since = (client.partial_since or time.monotonic()) if client.inbuf else None
        self._flush(client)

    def _control(self, client: _Client, message: dict[str, Any]) -> bytes:
        t, op = self.trainer, message["op"]
        verdict = policy.decide(op, t.state, t.step, t.total_steps, t.error)
        error = verdict.reason or None
        if verdict:
            try:
                if op == "pause":
                    t.pause()
                elif op == "resume":
                    t.resume()
                elif op == "step":
                    t.pause()
                    t.step_once()
                elif op == "stop":
                    t.stop()
                elif op == "extend":
                    t.extend(message["n"])
                else:
                    self.save()
            except Exception as err:  # a failed save is an answer, not the server's end
                error = str(err).splitlines()[0] if str(err) else type(err).__name__
            else:  # every viewer hears what changed (a paused run logs nothing), before the ack
                state = self._state()
                for other in list(self._clients.values()):
                    other.out += state
                    if other is not client:
                        self._flush(other)
        return protocol.encode("ack", id=message["id"], ok=error is None, error=error)

    def _broadcast(self) -> bool:
        """Queue every pending event to every client; True once close() was asked."""
        closing = False
        lines = []
        while True:
            try:
                line = self._events.get_nowait()
            except queue.Empty:
                break
            if line is None:
                closing = True
            else:
                lines.append(line)
        if lines:
            blob = _encode_events(lines)
            for client in list(self._clients.values()):
                client.out += blob
                self._flush(client)
        return closing

    def _flush(self, client: _Client) -> None:
        try:
            while client.out:
                sent = client.sock.send(client.out)
                del client.out[:sent]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(client, counted=False)
            return
        if len(client.out) > self.out_limit:
            self._drop(client)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.modify(client.sock, events, client)

    def _drop_hanging(self) -> None:
        now = time.monotonic()
        for client in list(self._clients.values()):
            since = client.partial_since
            if since is not None and now - since > self.partial_line_timeout:
                self._drop(client)

    def _drop(self, client: _Client, *, counted: bool = True) -> None:
        if self._clients.pop(client.sock.fileno(), None) is None:
            return
        self.dropped += counted
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        client.sock.close()
        self._any = bool(self._clients)


# -- encoding, on the server thread ---------------------------------------------------------------
def _encode_events(events: list[Callable[[], bytes] | _Batched]) -> bytes:
    """The queued events in order; the log and D_i records between two other events (a state
    change, weights) leave as one metrics and one dims message. (Each series stays in order,
    and a viewer's history is the same whichever of the two comes first.)"""
    out: list[bytes] = []
    logs: list[_Log] = []
    dims: list[_DimsRecord] = []

    def flush() -> None:
        if logs:
            out.append(_metrics(logs))
            logs.clear()
        if dims:
            out.append(_dims(dims))
            dims.clear()

    for event in events:
        if isinstance(event, _Log):
            logs.append(event)
        elif isinstance(event, _DimsRecord):
            dims.append(event)
        else:
            flush()
            out.append(event())
    flush()
    return b"".join(out)


def _dims(records: list[_DimsRecord]) -> bytes:
    """Consecutive D_i records: their steps and their D_i, stacked (records, inst, feats)."""
    stacked = np.stack([record.dims for record in records])
    return protocol.encode("dims", steps=[r.step for r in records], dims=protocol.pack(stacked))


def _metrics(logs: list[_Log]) -> bytes:
    """Consecutive log records: each one's step, loss and ‖W‖²_F; the newest one's total, rate,
    ETA and state; and the run's clock at the oldest (how stale the batch's oldest record is)."""
    newest = logs[-1]
    return protocol.encode(
        "metrics",
        steps=[log.step for log in logs],
        loss=[protocol.floats(log.loss) for log in logs],
        frob=[protocol.floats(log.frob) for log in logs],
        total=newest.total,
        rate=newest.rate,
        eta=newest.eta,
        state=newest.state,
        time=logs[0].time,
    )


def _weights(W: torch.Tensor, b_final: torch.Tensor, step: int) -> bytes:
    W, b = protocol.pack(W.numpy()), protocol.pack(b_final.numpy())
    return protocol.encode("weights", step=step, W=W, b_final=b)


def _history_arrays(history: Any) -> tuple[Any, ...]:
    """Copies of steps (n,), loss (n inst), frob (n inst), dims_steps (m,), dims (m inst feats),
    the jumps kept from thinned records (as dicts) and the thinning state (History.thinning)."""
    kept = [jump.as_dict() for jump in history.kept_jumps()]
    return (*history.metrics_arrays(), *history.dims_arrays(), kept, history.thinning())


def _history(
    steps: np.ndarray,
    loss: np.ndarray,
    frob: np.ndarray,
    dims_steps: np.ndarray,
    dims: np.ndarray,
    jumps: list[dict[str, Any]],
    thinning: dict[str, dict[str, int]],
) -> bytes:
    return protocol.encode(
        "history",
        steps=protocol.pack(steps),
        loss=protocol.pack(loss),
        frob=protocol.pack(frob),
        dims_steps=protocol.pack(dims_steps),
        dims=protocol.pack(dims),
        jumps=jumps,
        thinning=thinning,
    )


def _snapshot_steps(steps: list[int], unrecorded_until: int) -> bytes:
    listed = protocol.pack(np.array(steps, dtype=np.int64))
    return protocol.encode("snapshot_steps", steps=listed, unrecorded_until=unrecorded_until)


def _state(state: str, step: int, total: int, error: str | None) -> bytes:
    return protocol.encode("state", state=state, step=step, total=total, error=error)
