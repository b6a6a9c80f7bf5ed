"""The wire format between a served run and its clients: JSON lines, version 3.

Every line is one JSON object `{"v": 3, "type": T, ...}` ending in "\n". Each side checks every
field's type against the schema below and drops the connection on anything else: a wrong
version, an unknown type or field, a line over its size limit. Arrays travel as
`{"dtype": "f4"|"i8", "shape": [...], "data": base64}` (little-endian), which is compact and
cheap to encode: a whole history is one line.

Client to server (at most CLIENT_LINE_LIMIT bytes a line):
    control  {op: pause|resume|step|stop|save|extend, n: int >= 1 (extend only), id: int}
    fetch    {step, id}       the weight snapshot recorded at `step`
Server to client (at most SERVER_LINE_LIMIT bytes a line), in this order on connect:
    hello    {pid, session, config, step, total, state, rate, log_every, dims_every}
    history  {steps (n,), loss (n inst), frob (n inst), dims_steps (m,), dims (m inst feats),
              jumps (list of engine.jumps.Jump.as_dict: kept from records thinned away)}
    weights  {step, W (inst hidden feats), b_final (inst feats)}
    snapshot_steps {steps (k,), unrecorded_until}      the steps with a weight snapshot
then, live:
    metrics  {step, total, loss, frob (lists of float|null), rate, eta (float|null), state, time}
    dims     {step, dims (inst feats)}                  every dims interval
    weights  as above                                   at most about once a second
    snapshot_steps as above                             whenever the run keeps a new snapshot
    state    {state, step, total, error (str|null)}     whenever the run's state changes
    ack      {id, ok, error (str|null)}                 the answer to a control, or a refused fetch
    snapshot {id, step, W (inst hidden feats)}          the answer to a fetch
"""

from __future__ import annotations

import base64
import json
import math
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

VERSION = 5  # 2: fetch, snapshot and snapshot_steps (the greeting ends with the latter); 3: jumps;
# 4: the history's thinning state, every D_i record the run offers, and metrics in batches;
# 5: D_i records in batches too
CLIENT_LINE_LIMIT = 4096  # a control is a few dozen bytes
SERVER_LINE_LIMIT = 256 << 20  # a history of a large model; the client trusts only its own server
OPS = ("pause", "resume", "step", "stop", "save", "extend")
_DTYPES = {"f4": "<f4", "i8": "<i8"}  # numpy dtypes, named: numpy is imported where arrays are
_MAX_INT = 1 << 53  # every integer a JSON number holds exactly


class ProtocolError(Exception):
    """A line that breaks the protocol; the connection that sent it is dropped."""


# -- field kinds: each a (name, check) pair; check(value) -> bool --------------------------------
def _int(lo: int = 0):
    return lambda v: type(v) is int and lo <= v < _MAX_INT


def _num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _opt(check):
    return lambda v: v is None or check(v)


def _str(v: Any) -> bool:
    return type(v) is str and len(v) <= 4096


def _floats(v: Any) -> bool:
    return type(v) is list and len(v) <= 1 << 20 and all(x is None or _num(x) for x in v)


def _records(each: Callable[[Any], bool]) -> Callable[[Any], bool]:
    # A batch's per-record values: one or more.
    return lambda v: type(v) is list and 1 <= len(v) <= 1 << 16 and all(each(x) for x in v)


def _array(v: Any) -> bool:
    if type(v) is not dict or set(v) != {"dtype", "shape", "data"}:
        return False
    shape = v["shape"]
    return (
        v["dtype"] in _DTYPES
        and type(shape) is list
        and len(shape) <= 4
        and all(_int()(n) for n in shape)
        and type(v["data"]) is str
    )


def _jumps(v: Any) -> bool:
    # Each one's fields are checked by the client against its run (engine.jumps.jump_from_dict).
    return type(v) is list and len(v) <= 1 << 20 and all(type(j) is dict for j in v)


def _thinning(v: Any) -> bool:
    # Each series' Series.state; checked against its records by the client.
    return (
        type(v) is dict
        and set(v) == {"metrics", "dims"}
        and all(type(s) is dict and all(type(n) is int for n in s.values()) for s in v.values())
    )


def _config(v: Any) -> bool:
    return type(v) is dict  # validated in full by RunConfig.from_dict on the client


SCHEMA: dict[str, dict[str, Any]] = {
    "control": {"op": lambda v: v in OPS, "n": _opt(_int(1)), "id": _int()},
    "fetch": {"step": _int(), "id": _int()},
    "hello": {
        "pid": _int(1),
        "session": _str,
        "config": _config,
        "step": _int(),
        "total": _int(),
        "state": _str,
        "rate": _num,
        "log_every": _int(1),
        "dims_every": _int(1),
    },
    "history": {
        "steps": _array,
        "loss": _array,
        "frob": _array,
        "dims_steps": _array,
        "dims": _array,
        "jumps": _jumps,
        "thinning": _thinning,
    },
    "weights": {"step": _int(), "W": _array, "b_final": _array},
    "metrics": {
        "steps": _records(_int()),
        "total": _int(),
        "loss": _records(_floats),
        "frob": _records(_floats),
        "rate": _num,
        "eta": _opt(_num),
        "state": _str,
        "time": _num,
    },
    "dims": {"steps": _records(_int()), "dims": _array},  # dims: (records, inst, feats)
    "state": {"state": _str, "step": _int(), "total": _int(), "error": _opt(_str)},
    "ack": {"id": _int(), "ok": lambda v: type(v) is bool, "error": _opt(_str)},
    "snapshot_steps": {"steps": _array, "unrecorded_until": _int()},
    "snapshot": {"id": _int(), "step": _int(), "W": _array},
}
CLIENT_TYPES = ("control", "fetch")
SERVER_TYPES = tuple(t for t in SCHEMA if t not in CLIENT_TYPES)


def encode(kind: str, **fields: Any) -> bytes:
    """One line of the protocol (checked against the schema, so a bug cannot send garbage)."""
    message = {"v": VERSION, "type": kind, **fields}
    validate(message, (kind,))
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes, allowed: tuple[str, ...], limit: int) -> dict[str, Any]:
    """The message on `line` (without its "\\n"), checked; ProtocolError for anything else."""
    if len(line) > limit:
        raise ProtocolError(f"line of {len(line)} bytes is over the limit of {limit}")
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ProtocolError(f"not a JSON line ({type(err).__name__})") from None
    validate(message, allowed)
    return message


def validate(message: Any, allowed: tuple[str, ...]) -> None:
    """Check version, type, and every field's presence and type; extra fields are refused."""
    if type(message) is not dict:
        raise ProtocolError("a message is a JSON object")
    if message.get("v") != VERSION or type(message.get("v")) is not int:
        raise ProtocolError(f"protocol version {message.get('v')!r}; this side speaks {VERSION}")
    kind = message.get("type")
    if kind not in allowed:
        raise ProtocolError(f"unexpected message type {kind!r}")
    schema = SCHEMA[kind]
    fields = {k: v for k, v in message.items() if k not in ("v", "type")}
    missing = [k for k in schema if k not in fields and k != "n"]
    extra = [k for k in fields if k not in schema]
    if missing or extra:
        raise ProtocolError(f"{kind}: missing {missing} or unknown {extra} fields")
    for name, value in fields.items():
        if not schema[name](value):
            raise ProtocolError(f"{kind}: field {name!r} has a wrong type or value")
    if kind == "control" and (message["op"] == "extend") != (fields.get("n") is not None):
        raise ProtocolError("control: n goes with extend, and only with extend")


def pack(array: np.ndarray) -> dict[str, Any]:
    """An int64 or float32 array as a protocol array."""
    import numpy as np

    kind = "i8" if np.issubdtype(array.dtype, np.integer) else "f4"
    data = np.ascontiguousarray(array, dtype=_DTYPES[kind])
    return {"dtype": kind, "shape": list(data.shape), "data": base64.b64encode(data).decode()}


def unpack(field: dict[str, Any]) -> np.ndarray:
    """The array a protocol array holds; ProtocolError if its data does not fit its shape."""
    import numpy as np

    dtype = np.dtype(_DTYPES[field["dtype"]])
    try:
        raw = base64.b64decode(field["data"], validate=True)
    except ValueError:
        raise ProtocolError("array data is not base64") from None
    count = math.prod(field["shape"])
    if len(raw) != count * dtype.itemsize:
        raise ProtocolError(f"array of shape {field['shape']} holds {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype).reshape(field["shape"]).copy()


def floats(values: np.ndarray | None) -> list[float | None]:
    """A float vector as JSON numbers, non-finite as null."""
    if values is None:
        return []
    import numpy as np

    return [v if math.isfinite(v) else None for v in np.asarray(values, np.float64).tolist()]


class LineReader:
    """Server lines from a socket, one checked message at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def read(self, kind: str | None = None) -> dict[str, Any]:
        """The next message (of type `kind` if given); EOFError when the server has gone."""
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > SERVER_LINE_LIMIT:
                raise ProtocolError("line over the limit")
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                raise EOFError
            self.buffer += chunk
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        message = decode(line, SERVER_TYPES, SERVER_LINE_LIMIT)
        if kind is not None and message["type"] != kind:
            raise ProtocolError(f"expected {kind}, got {message['type']}")
        return message
