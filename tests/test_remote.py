"""A served run, driven by real processes: `train` subprocesses, clients, ps, SIGKILL, fuzz.

Every wait is for a condition with a timeout (a loaded 2-core box may be slow, never wrong).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.remote import protocol
from engine.remote.address import SOCKET_FILE
from engine.remote.client import RemoteError, RemoteRun
from engine.remote.listing import probe, running
from engine.remote.lock import holder
from engine.remote.server import RunServer, peer_allowed
from engine.run import RunRefused
from toygeom_tui.cli import main

TRAIN = [sys.executable, "-m", "toygeom_tui", "train", "--preset", "pentagon"]
FOREVER = ["--steps", str(10**9), "--autosave", "0"]
NOBODY = 65534


def wait_until(condition: Callable[[], object], timeout: float = 60.0) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met in {timeout} s")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toygeom_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_train(directory: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [*TRAIN, *FOREVER, "--out", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: probe(directory) is not None or proc.poll() is not None)
    assert proc.poll() is None, proc.stderr.read()
    return proc


def read_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (fails on timeout)."""
    sock.settimeout(timeout)
    data = bytearray()
    with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread: a reset
        while chunk := sock.recv(1 << 16):
            data += chunk
    return bytes(data)


def raw_connect(directory: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(directory / SOCKET_FILE))
    return sock


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Path, int]]:
    """A `train --detach` run (session in a folder others may enter: the socket's own mode is
    what keeps them out). Yields (directory, pid); the last test stops it."""
    root = Path(tempfile.mkdtemp(prefix="toygeom-remote-"))
    root.chmod(0o755)
    directory = root / "run"
    done = cli("train", "--preset", "pentagon", *FOREVER, "--out", str(directory), "--detach")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(directory)
    pid = probe(directory)["pid"]
    yield directory, pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def test_socket_is_private_and_ps_lists_the_run(served, capsys):
    directory, pid = served
    assert (directory / SOCKET_FILE).stat().st_mode & 0o777 == 0o600
    assert holder(directory) == pid
    assert main(["ps", str(directory.parent), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["directory"], r["pid"], r["state"]) for r in listed] == [
        (str(directory), pid, "training")
    ]
    assert 0 < listed[0]["step"] < listed[0]["total"] == 10**9
    assert main(["ps", str(directory.parent)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["directory", "pid", "step/total", "steps/s", "state"]
    assert table[1].split()[:2] == [str(directory), str(pid)]


def test_a_second_train_is_refused_naming_the_pid(served, capsys):
    directory, pid = served
    for args in (["--resume", str(directory)], ["--preset", "pentagon", "--out", str(directory)]):
        assert main(["train", *args]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"pid {pid}" in err
    assert holder(directory) == pid


def test_two_clients_see_history_then_live_metrics(served):
    directory, _ = served
    a, b = RemoteRun.connect(directory), RemoteRun.connect(directory)
    try:
        for run in (a, b):
            steps, loss, _ = run.history.metrics_arrays()
            assert len(steps) > 0 and loss.shape == (len(steps), 8)  # caught up
            start = run.step
            assert run.wait_for(lambda r, s=start: r.step > s and r.metric_time is not None)
            assert run.history.metrics_arrays()[0][-1] == run.step
            assert time.time() - run.metric_time < 10  # live, not a replay of the past
            assert run.W.abs().sum() > 0
    finally:
        a.close()
        b.close()
    c = RemoteRun.connect(directory)  # viewers that left changed nothing
    assert c.state == "training"
    c.close()


def test_other_users_are_kept_out(served):
    """By the socket's mode, and (with the mode opened up) by the peer-uid check itself."""
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another uid")
    directory, _ = served
    script = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "try:\n    s.connect(sys.argv[1])\n"
        "except PermissionError:\n    print('denied'); sys.exit()\n"
        "s.settimeout(10)\nprint('closed' if s.recv(100) == b'' else 'served')\n"
    )
    path = str(directory / SOCKET_FILE)

    def as_nobody() -> str:
        return subprocess.run(
            ["/usr/bin/python3", "-c", script, path], user=NOBODY, capture_output=True, text=True
        ).stdout.strip()

    assert as_nobody() == "denied"
    os.chmod(path, 0o666)
    try:
        assert as_nobody() == "closed"
    finally:
        os.chmod(path, 0o600)


def test_fuzz_drops_bad_connections_and_the_run_trains_on(served):
    directory, _ = served
    rng = random.Random(0)
    valid = json.loads(protocol.encode("control", op="save", id=1))
    bad_lines = [
        b"\xff\xfe garbage\n",
        b"[" * 100_000 + b"\n",  # deeply nested
        b"x" * (protocol.CLIENT_LINE_LIMIT + 10),  # oversized, no newline
        b'{"v": 1, "type": "control", "op": "save", "id": 1}' + b" " * 5000 + b"\n",
        json.dumps({**valid, "v": 2}).encode() + b"\n",
        json.dumps({**valid, "v": "1"}).encode() + b"\n",
        json.dumps({**valid, "type": "hello"}).encode() + b"\n",
        json.dumps({**valid, "op": "rm -rf"}).encode() + b"\n",
        json.dumps({**valid, "id": "1"}).encode() + b"\n",
        json.dumps({**valid, "id": True}).encode() + b"\n",
        json.dumps({**valid, "extra": 1}).encode() + b"\n",
        json.dumps({**valid, "op": "extend", "n": -5}).encode() + b"\n",
        json.dumps({**valid, "op": "extend", "n": 2**70}).encode() + b"\n",
        json.dumps({**valid, "op": "pause", "n": 5}).encode() + b"\n",
        b"null\n",
        b"\n",
    ] + [
        bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000))) + b"\n" for _ in range(30)
    ]
    for line in bad_lines:
        with raw_connect(directory) as sock:
            sock.sendall(line)
            data = read_until_closed(sock)  # the server hangs up on it
            assert b'"type":"ack"' not in data
    for _ in range(1000):  # connections that come and go, half a line, or nothing at all
        with raw_connect(directory) as sock:
            sock.sendall(b'{"v":1,"type":"con')
    run = RemoteRun.connect(directory)
    try:
        start = run.step
        assert run.wait_for(lambda r: r.step > start)
        assert run.state == "training"
    finally:
        run.close()


def test_controls_then_stop(served):
    """Last in this file: it ends the served run."""
    directory, pid = served
    run = RemoteRun.connect(directory)
    run.pause()
    assert run.wait_for(lambda r: r.state == "paused")
    at = run.step
    run.step_once()
    assert run.wait_for(lambda r: r.step == at + 1)
    with pytest.raises(RunRefused, match="pause first|nothing to pause"):
        run.pause()
    total = run.total_steps
    run.extend(500)
    assert run.wait_for(lambda r: r.total_steps == total + 500)
    assert run.save() == directory
    record = json.loads((directory / "session.json").read_text())
    assert record["step"] == at + 1 and record["total_steps"] == total + 500
    run.resume()
    assert run.wait_for(lambda r: r.step > at + 1 and r.state == "training")
    run.stop()
    assert run.wait_for(lambda r: not r.alive)
    assert run.state == "stopped"
    wait_until(lambda: holder(directory) is None)
    assert not (directory / SOCKET_FILE).exists()
    assert running(directory.parent) == []
    with pytest.raises(RunRefused):
        run.pause()
    run.close()


def test_sigkill_while_attached_leaves_nothing_stale(tmp_path):
    directory = tmp_path / "run"
    proc = start_train(directory)
    run = RemoteRun.connect(directory)
    lost = threading.Event()
    run.on("state", lambda r: r.state == "lost" and lost.set())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert lost.wait(30) and run.state == "lost" and str(proc.pid) in run.error
    assert (directory / SOCKET_FILE).exists()  # left behind by the killed process ...
    assert running(tmp_path) == []  # ... seen as stale by ps, and removed
    assert not (directory / SOCKET_FILE).exists()
    with pytest.raises(RemoteError, match="no run is serving"):
        RemoteRun.connect(directory)
    run.close()


# -- in-process server: the peer check and the limits, without a subprocess -----------------------
@pytest.fixture
def in_process(tmp_path: Path) -> Iterator[Callable[..., RunServer]]:
    from engine import Trainer, preset

    servers, trainers, threads = [], [], []

    def serve(directory: Path = tmp_path, **kwargs) -> RunServer:
        trainer = Trainer(preset("pentagon").replace(steps=10**9))
        server = RunServer(trainer, directory, save=lambda: None, **kwargs).start()
        thread = threading.Thread(target=trainer.run, daemon=True)
        thread.start()
        servers.append(server), trainers.append(trainer), threads.append(thread)
        return server

    yield serve
    for trainer, thread, server in zip(trainers, threads, servers, strict=True):
        trainer.stop()
        thread.join()
        server.close()


def test_peer_allowed_reads_the_real_peer_uid():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_allowed(a, os.getuid())
        assert not peer_allowed(a, os.getuid() + 1)


def test_a_peer_of_another_uid_gets_nothing(in_process, tmp_path):
    server = in_process(uid=os.getuid() + 1)  # as if we were someone else
    with raw_connect(tmp_path) as sock:
        assert read_until_closed(sock) == b""
    assert server.dropped == 1


def test_half_a_line_left_hanging_is_dropped(in_process, tmp_path):
    server = in_process(partial_line_timeout=0.2)
    with raw_connect(tmp_path) as sock:
        sock.sendall(b'{"v":1,"type":"control"')
        assert b'"type":"hello"' in read_until_closed(sock)
    assert server.dropped == 1


def test_a_session_path_too_long_for_a_socket_address_still_serves(in_process, tmp_path):
    directory = tmp_path / ("d" * 60) / ("e" * 60)
    directory.mkdir(parents=True)
    in_process(directory)
    run = RemoteRun.connect(directory)
    assert run.wait_for(lambda r: r.metric_time is not None)
    run.close()
