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

import numpy as np
import pytest
import torch

from engine.remote import protocol
from engine.remote.address import SOCKET_FILE
from engine.remote.client import RemoteError, RemoteRun
from engine.remote.listing import probe, running
from engine.remote.lock import LOCK_FILE, holder
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
    # --detach returns once the socket serves, which may be before the first step (a loaded
    # box, a kernel still building): the tests below want a run that trains.
    wait_until(lambda: (probe(directory) or {}).get("state") == "training")
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


def test_ps_names_a_run_killed_after_its_autosave(tmp_path, capsys):
    """`kill -9` of a `train` after an autosave: `ps` lists its session as interrupted, with the
    step it keeps and the command that resumes it, and the app's browser would say the same."""
    directory = tmp_path / "killed"
    proc = subprocess.Popen(
        [*TRAIN, "--steps", str(10**9), "--autosave", "0.2", "--out", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (directory / "session.json").exists() or proc.poll() is not None)
        assert proc.poll() is None
        assert main(["ps", str(tmp_path), "--json"]) == 0
        assert [r["state"] for r in json.loads(capsys.readouterr().out)] == ["training"]
    finally:
        proc.kill()
        proc.wait()
    saved = json.loads((directory / "session.json").read_text())
    assert saved["writer"]["running"], "an autosave of a run still going"
    assert main(["ps", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "directory": str(directory),
            "pid": None,
            "step": saved["step"],
            "total": 10**9,
            "steps_per_second": None,
            "state": "interrupted",
        }
    ]
    assert main(["ps", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[1].split() == [str(directory), "—", f"{saved['step']}/{10**9}", "—",
                                          "interrupted"]  # fmt: skip
    assert f"toygeom-tui train --resume {directory} --detach resumes it" in err


def test_ps_imports_no_torch_nor_numpy(served):
    """`ps` answers from the sockets alone; torch costs ~2 s to import and numpy ~0.1 s."""
    directory, pid = served
    script = (
        "import sys\nfrom toygeom_tui.cli import main\n"
        "code = main(['ps', sys.argv[1], '--json'])\n"
        "print('torch' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(directory.parent)], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr.split() == ["False", "False"], done.stderr
    assert [r["pid"] for r in json.loads(done.stdout)] == [pid]


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
        json.dumps({**valid, "v": protocol.VERSION + 1}).encode() + b"\n",
        json.dumps({**valid, "v": protocol.VERSION - 1}).encode() + b"\n",
        json.dumps({**valid, "v": str(protocol.VERSION)}).encode() + b"\n",
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


def test_snapshots_are_read_as_the_trainers_and_kept_current(in_process, tmp_path):
    trainer = in_process().trainer
    wait_until(lambda: len(trainer.snapshots) >= 5)  # 4 fetched below, and one never
    run = RemoteRun.connect(tmp_path)
    try:
        first = run.snapshots.steps
        assert first == sorted(first) and len(run.snapshots) == len(first) >= 5
        assert set(first) <= set(trainer.snapshots.steps)  # the same steps (none thinned yet)
        fetched = (first[0], first[len(first) // 2], first[-1], first[1])
        never = next(step for step in first if step not in fetched)
        for step in fetched[:3]:
            assert torch.equal(run.snapshots.at(step), trainer.snapshots.at(step))
            assert run.snapshots.at_or_before(step + 1) == step
        assert run.snapshots.at_or_before(-1) is None
        assert run.snapshots.unrecorded_until == trainer.snapshots.unrecorded_until == 0
        with pytest.raises(KeyError):
            run.snapshots.at(first[-1] + 1)
        assert run.wait_for(lambda r: r.snapshots.steps[-1] > first[-1], 60)  # as the run keeps
        assert torch.equal(run.feature_probability, trainer.feature_probability)
        assert torch.equal(run.importance, trainer.importance)
        assert run.feature_probability.shape == run.importance.shape == (8, 5)  # inst feats
        cached = run.snapshots.at(first[1])
    finally:
        run.close()
    # Fetched once, a snapshot stays readable; one never fetched needs the (gone) connection.
    assert torch.equal(run.snapshots.at(first[1]), cached)
    with pytest.raises(RunRefused):
        run.snapshots.at(never)


def test_a_snapshot_asked_for_from_an_observer_is_refused_not_deadlocked(in_process, tmp_path):
    in_process()
    run = RemoteRun.connect(tmp_path)
    seen: list[BaseException] = []

    def observer(r: RemoteRun) -> None:
        if not seen:
            try:
                r.snapshots.at(0)
            except BaseException as err:  # noqa: BLE001 (the test reads which one)
                seen.append(err)

    run.on("log", observer)
    try:
        assert run.wait_for(lambda r: bool(seen))
        assert isinstance(seen[0], RuntimeError) and "observer" in str(seen[0])
        assert torch.equal(run.snapshots.at(0), run.snapshots.at(0))  # from this thread: fine
    finally:
        run.close()


def test_bad_fetches_drop_the_connection_and_an_unknown_step_is_refused(in_process, tmp_path):
    server = in_process()
    valid = json.loads(protocol.encode("fetch", step=0, id=1))
    bad = [{**valid, "step": "0"}, {**valid, "step": -1}, {**valid, "step": 2**70},
           {**valid, "step": 0.0}, {**valid, "id": None}, {**valid, "op": "save"},
           {k: v for k, v in valid.items() if k != "step"}]  # fmt: skip
    for message in bad:
        with raw_connect(tmp_path) as sock:
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = read_until_closed(sock)
            assert b'"type":"snapshot"' not in data and b'"type":"ack"' not in data
    assert server.dropped == len(bad)
    with raw_connect(tmp_path) as sock:  # a step never recorded: answered, and still connected
        lines = protocol.LineReader(sock)
        sock.sendall(protocol.encode("fetch", step=10**15, id=7))
        sock.sendall(protocol.encode("fetch", step=0, id=8))
        answers = {}
        while len(answers) < 2:
            m = lines.read()
            if m["type"] in ("ack", "snapshot"):
                answers[m["id"]] = m
    assert answers[7]["type"] == "ack" and not answers[7]["ok"]
    assert "step 1000000000000000" in answers[7]["error"]
    assert answers[8]["type"] == "snapshot" and answers[8]["step"] == 0
    assert server.dropped == len(bad)


def test_a_flood_of_fetches_is_dropped_and_the_run_trains_on(in_process, tmp_path):
    server = in_process(out_limit=64 << 10)
    watcher = RemoteRun.connect(tmp_path)
    try:
        flood = protocol.encode("fetch", step=0, id=1) * 20_000  # answers: ~10 MB, never read
        with raw_connect(tmp_path) as sock:
            with contextlib.suppress(OSError):  # the server hangs up mid-flood
                sock.sendall(flood)
            wait_until(lambda: server.dropped == 1)
        at = watcher.step
        assert watcher.wait_for(lambda r: r.step > at)  # live metrics still come
        assert server.trainer.state == "training" and server.clients == 1
    finally:
        watcher.close()


def test_a_reader_that_never_reads_is_dropped_and_others_keep_watching(in_process, tmp_path):
    server = in_process(out_limit=64 << 10)
    watcher = RemoteRun.connect(tmp_path)
    try:
        with raw_connect(tmp_path):  # connected, reads nothing: its queue grows until dropped
            wait_until(lambda: server.dropped == 1)
        at = watcher.step
        assert watcher.wait_for(lambda r: r.step > at)
        assert server.trainer.state == "training" and server.clients == 1
    finally:
        watcher.close()


def test_a_viewer_killed_with_sigkill_leaves_the_run_training(in_process, tmp_path):
    server = in_process()
    script = (
        "import sys, time\nfrom engine.remote.client import RemoteRun\n"
        "RemoteRun.connect(sys.argv[1])\nprint('attached', flush=True)\ntime.sleep(600)\n"
    )
    viewer = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert viewer.stdout.readline().strip() == "attached"
        assert server.clients == 1
        viewer.kill()
        viewer.wait(timeout=30)
        wait_until(lambda: server.clients == 0)
        at = server.trainer.step
        wait_until(lambda: server.trainer.step > at)
        assert server.trainer.state == "training" and server.dropped == 0  # left, not dropped
    finally:
        viewer.kill()
        viewer.wait(timeout=30)


@pytest.mark.parametrize("kind", ["fifo", "directory", "symlink"])
def test_a_lock_file_that_is_no_file_neither_hangs_nor_counts_as_a_writer(tmp_path, kind):
    lock = tmp_path / LOCK_FILE
    {"fifo": lambda: os.mkfifo(lock), "directory": lock.mkdir,
     "symlink": lambda: lock.symlink_to("/dev/zero")}[kind]()  # fmt: skip
    assert holder(tmp_path) is None
    assert probe(tmp_path) is None


def test_a_client_names_the_version_of_a_run_that_speaks_another(tmp_path):
    """A run started before a protocol change: the viewer says which versions differ."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / SOCKET_FILE))
    listener.listen()
    old = protocol.VERSION - 1

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(json.dumps({"v": old, "type": "hello", "pid": 1}).encode() + b"\n")
            conn.recv(1)  # until the client hangs up

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    with listener, pytest.raises(RemoteError, match=f"protocol version {old}; this side speaks"):
        RemoteRun.connect(tmp_path, timeout=10)
    server.join(timeout=10)


def test_running_means_a_held_writer_lock_not_a_pid_in_the_record(tmp_path):
    from engine import Trainer, preset
    from engine.session import mark_stopped, read_record, save_session, session_info

    trainer = Trainer(preset("pentagon").replace(steps=20))
    trainer.run()
    ours, copy = tmp_path / "ours", tmp_path / "copy"
    save_session(trainer, ours, running=True)  # an autosave: this process is the writer now
    assert session_info(ours).running and holder(ours) == os.getpid()
    refused = cli("train", "--resume", str(ours))  # so another writer is turned away
    assert refused.returncode == 2 and f"pid {os.getpid()}" in refused.stderr
    shutil.copytree(ours, copy)  # its record names a live pid that "runs", but holds no lock
    assert read_record(copy)["writer"] == {**read_record(ours)["writer"], "running": True}
    assert not session_info(copy).running
    mark_stopped(ours)  # the writer is done: the lock goes with it
    assert holder(ours) is None and not session_info(ours).running


def test_a_viewer_gets_the_jumps_kept_from_thinned_records(in_process, tmp_path):
    from engine.jumps import Jump, history_jumps

    trainer = in_process().trainer  # the pentagon: 8 instances of 5 features
    kept = [Jump(40, 20, 7, 4, "1/2", "2/5", 0.25, None)]
    trainer.history.restore_jumps(kept)
    run = RemoteRun.connect(tmp_path)
    try:
        assert run.history.kept_jumps() == kept
        assert kept[0] in history_jumps(run.history, 7)
    finally:
        run.close()


def test_a_jump_that_does_not_fit_the_run_is_refused():
    from engine.jumps import jump_from_dict

    bad = {"step": 40, "left_step": 20, "instance": 8, "feature": 4, "before": "1/2",
           "after": "2/5", "loss_before": None, "loss_after": None}  # fmt: skip
    with pytest.raises(ValueError, match="does not fit"):
        jump_from_dict(bad, 8, 5)
    assert jump_from_dict({**bad, "instance": 7}, 8, 5).instance == 7


def test_a_viewer_attached_after_thinning_mirrors_the_runs_history_record_for_record(
    in_process, tmp_path
):
    """Both series have halved before the viewer attaches; after more live records the
    mirror's history is the run's own, step for step: the server sends every D_i record the
    run offered (not its latest kept one, which repeated a step when the offer was thinned out)
    and its thinning state, so the mirror keeps exactly what the run keeps."""
    trainer = in_process().trainer
    wait_until(lambda: trainer.history.dims.stride >= 4 and trainer.history.metrics.stride >= 2)
    run = RemoteRun.connect(tmp_path)
    try:
        attached_at = run.step
        assert run.wait_for(lambda r: r.step > attached_at + 40 * trainer.dims_every, 60)
        trainer.pause()  # takes effect after the call under way: wait for the state it sets
        wait_until(lambda: trainer.state == "paused")
        # The state message leaves after the logs queued before it, so once the mirror has it
        # every record up to the pause is in.
        assert run.wait_for(lambda r: r.state == "paused" and r.step == trainer.step, 30)
        pairs = [(run.history.dims_arrays(), trainer.history.dims_arrays()),
                 (run.history.metrics_arrays(), trainer.history.metrics_arrays())]  # fmt: skip
        for mine, theirs in pairs:
            steps = mine[0]
            assert len(set(steps.tolist())) == len(steps), "no record twice"
            assert np.array_equal(steps, theirs[0]), "the run's records, no more, no fewer"
            for a, b in zip(mine[1:], theirs[1:], strict=True):
                np.testing.assert_allclose(a, b, rtol=1e-6)
    finally:
        run.close()


def test_a_thinning_state_that_does_not_fit_its_records_is_refused():
    from engine.remote.client import _thinning_state

    good = {"count": 3, "stride": 4, "since": 1}
    assert _thinning_state(good, 3) == good
    for bad in ({**good, "count": 2}, {**good, "since": 4}, {**good, "stride": 0},
                {**good, "since": True}, {"count": 3, "stride": 4}, [3, 4, 1]):  # fmt: skip
        assert _thinning_state(bad, 3) is None, bad


def test_consecutive_logs_leave_as_one_metrics_message_in_order():
    from types import SimpleNamespace

    from engine.remote.server import _encode_events, _Log

    def log(step: int) -> _Log:
        trainer = SimpleNamespace(step=step, total_steps=100, steps_per_second=50.0,
                                  latest_loss=np.array([0.5, np.inf], np.float32),
                                  latest_frobenius_sq=np.array([1.0, 2.0], np.float32),
                                  state="training")  # fmt: skip
        return _Log(trainer)

    state = lambda: protocol.encode("state", state="paused", step=30, total=100, error=None)  # noqa: E731
    blob = _encode_events([log(10), log(20), state, log(30)])
    messages = [protocol.decode(line, protocol.SERVER_TYPES, 1 << 20) for line in blob.splitlines()]
    assert [m["type"] for m in messages] == ["metrics", "state", "metrics"]
    first, _, last = messages
    assert first["steps"] == [10, 20] and last["steps"] == [30]
    assert first["loss"] == [[0.5, None], [0.5, None]]  # non-finite as null, per record
    assert first["eta"] == (100 - 20) / 50.0  # the newest record's


def test_consecutive_dims_records_leave_as_one_dims_message_in_order():
    from types import SimpleNamespace

    from engine.remote.server import _DimsRecord, _encode_events, _Log

    trainer = SimpleNamespace(step=10, total_steps=100, steps_per_second=50.0,
                              latest_loss=np.zeros(2, np.float32), state="training",
                              latest_frobenius_sq=np.ones(2, np.float32))  # fmt: skip
    records = [_DimsRecord(step, np.full((2, 3), step / 100, np.float32)) for step in (10, 20, 30)]
    state = lambda: protocol.encode("state", state="paused", step=30, total=100, error=None)  # noqa: E731
    blob = _encode_events([_Log(trainer), records[0], _Log(trainer), records[1], state, records[2]])
    messages = [protocol.decode(line, protocol.SERVER_TYPES, 1 << 20) for line in blob.splitlines()]
    assert [m["type"] for m in messages] == ["metrics", "dims", "state", "dims"]
    assert messages[1]["steps"] == [10, 20] and messages[3]["steps"] == [30]
    stacked = protocol.unpack(messages[1]["dims"])
    assert stacked.shape == (2, 2, 3)
    np.testing.assert_array_equal(stacked, np.stack([records[0].dims, records[1].dims]))
