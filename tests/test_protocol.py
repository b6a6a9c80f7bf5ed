"""The wire format: every field's type is checked, limits hold, arrays survive the trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.remote import protocol
from engine.remote.protocol import VERSION, ProtocolError, decode, encode, pack, unpack

CONTROL = {"v": VERSION, "type": "control", "op": "extend", "n": 10, "id": 3}
METRICS = {
    "v": VERSION,
    "type": "metrics",
    "steps": [10, 20],
    "total": 100,
    "loss": [[0.5, None], [0.4, 0.3]],
    "frob": [[1.0, 2.0], [1.1, 2.1]],
    "rate": 12.5,
    "eta": None,
    "state": "training",
    "time": 1.5e9,
}


def line(message: dict) -> bytes:
    return json.dumps(message).encode()


def test_a_valid_message_round_trips():
    assert decode(encode("control", op="extend", n=10, id=3)[:-1], ("control",), 4096) == CONTROL
    assert decode(line(METRICS), protocol.SERVER_TYPES, 4096) == METRICS


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("v", VERSION + 1),
        ("v", VERSION - 1),  # a version this side no longer speaks
        ("v", str(VERSION)),
        ("v", True),
        ("type", "hello"),  # a server message, from a client
        ("type", None),
        ("op", "format"),
        ("n", 0),
        ("n", 1.5),
        ("n", True),
        ("n", 2**60),
        ("id", "3"),
        ("id", -1),
        ("id", [3]),
        ("extra", 1),
    ],
)
def test_a_control_with_any_wrong_field_is_refused(field, value):
    with pytest.raises(ProtocolError):
        decode(line({**CONTROL, field: value}), protocol.CLIENT_TYPES, 4096)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("steps", [-1]),
        ("steps", [1.0]),
        ("steps", []),  # a batch holds one record or more
        ("steps", 10),
        ("loss", [[float("inf")]]),
        ("loss", "0.5"),
        ("loss", [0.5]),  # a record's values, not a batch of them
        ("frob", [[[1.0]]]),
        ("rate", None),
        ("eta", "soon"),
        ("state", 3),
        ("time", float("nan")),
    ],
)
def test_a_metrics_line_with_a_wrong_field_is_refused(field, value):
    raw = json.dumps({**METRICS, field: value}).encode()  # NaN/inf as JSON extensions
    with pytest.raises(ProtocolError):
        decode(raw, protocol.SERVER_TYPES, 4096)


def test_missing_fields_and_n_without_extend_are_refused():
    without_id = {k: v for k, v in CONTROL.items() if k != "id"}
    for message in (without_id, {**CONTROL, "op": "pause"}, {**CONTROL, "n": None}):
        with pytest.raises(ProtocolError):
            decode(line(message), protocol.CLIENT_TYPES, 4096)
    ok = {"v": VERSION, "type": "control", "op": "pause", "id": 1}
    assert decode(line(ok), protocol.CLIENT_TYPES, 4096) == ok


@pytest.mark.parametrize(
    "raw", [b"", b"\xff\xfe", b"[" * 200_000, b"{" * 10, b"[]", b"1", b'"x"', b"null"]
)
def test_garbage_is_a_protocol_error_never_another_exception(raw):
    with pytest.raises(ProtocolError):
        decode(raw, protocol.CLIENT_TYPES, 10**6)


def test_a_line_over_the_limit_is_refused_before_parsing():
    raw = line(CONTROL)
    with pytest.raises(ProtocolError, match="over the limit"):
        decode(raw, protocol.CLIENT_TYPES, len(raw) - 1)


def test_encode_refuses_what_decode_would():
    with pytest.raises(ProtocolError):
        encode("control", op="pause", id="x")


def test_arrays_round_trip_and_must_fit_their_shape():
    W = np.random.default_rng(0).standard_normal((3, 2, 5)).astype(np.float32)
    assert np.array_equal(unpack(pack(W)), W)
    steps = np.arange(7, dtype=np.int64) * 10
    assert np.array_equal(unpack(pack(steps)), steps)
    lying = {**pack(W), "shape": [3, 2, 6]}
    with pytest.raises(ProtocolError):
        unpack(lying)
    with pytest.raises(ProtocolError):
        unpack({**pack(W), "data": "not base64!"})


FETCH = {"v": VERSION, "type": "fetch", "step": 120, "id": 4}


def test_a_fetch_round_trips_and_any_wrong_field_is_refused():
    assert decode(encode("fetch", step=120, id=4)[:-1], protocol.CLIENT_TYPES, 4096) == FETCH
    wrong = [("step", "120"), ("step", -1), ("step", 2**60), ("step", 1.5), ("step", True),
             ("step", None), ("id", "4"), ("n", 3), ("op", "pause"), ("W", [])]  # fmt: skip
    for field, value in wrong:
        with pytest.raises(ProtocolError):
            decode(line({**FETCH, field: value}), protocol.CLIENT_TYPES, 4096)
    with pytest.raises(ProtocolError):
        decode(line({k: v for k, v in FETCH.items() if k != "step"}), protocol.CLIENT_TYPES, 4096)


def test_snapshot_messages_are_the_servers_alone():
    W = pack(np.zeros((2, 1, 3), np.float32))
    answer = {"v": VERSION, "type": "snapshot", "id": 4, "step": 120, "W": W}
    steps = pack(np.arange(3))
    listed = {"v": VERSION, "type": "snapshot_steps", "steps": steps, "unrecorded_until": 0}
    for message in (answer, listed):
        assert decode(line(message), protocol.SERVER_TYPES, 4096) == message
        with pytest.raises(ProtocolError):  # a client may not send them
            decode(line(message), protocol.CLIENT_TYPES, 4096)
    with pytest.raises(ProtocolError):
        decode(line({**answer, "W": [0.0, 1.0]}), protocol.SERVER_TYPES, 4096)
