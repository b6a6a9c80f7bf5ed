"""Sweeps on a real Ray cluster: a head started here on loopback with token authentication
(see shared notes/ray.md: nothing may dial this machine's other address), shared by the module
and stopped at the end. The driver is the `toygeom-tui sweep --ray` a user runs."""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweeps import RUN_NAMES, SPEC, assert_same_session, cli, write_spec

from engine.sweep import DONE, SWEEP_FILE, read_record

if importlib.util.find_spec("ray") is None:
    if os.environ.get("CI"):
        raise RuntimeError('CI installs the ray extra (pip install -e ".[ray]"); ray is missing')
    pytest.skip('needs the ray extra: pip install -e ".[ray]"', allow_module_level=True)

RAY = str(Path(sys.executable).with_name("ray"))
# Long enough that a task is still running when the test looks for it: ~2 s a run here (a
# pentagon trains at ~20,000 steps/s, so 2,000 steps took 0.1 s and a task could end before the
# kill test found it).
LONG_SPEC = SPEC.replace("steps = 200", "steps = 30000")


def _free_port() -> int:
    """A free loopback port above Ray's default worker-port range (10002–19999)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[str, dict[str, str]]]:
    """(address, environment for a driver) of a one-node cluster with 2 CPUs on 127.0.0.1."""
    env = {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # Ray then keeps 127.0.0.1 as the node's IP
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
    }
    temp = tempfile.mkdtemp(prefix="tgray", dir="/tmp")  # short: Ray puts sockets in it
    port = _free_port()
    start = [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
             "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
             f"--dashboard-agent-listen-port={_free_port()}", f"--temp-dir={temp}"]  # fmt: skip
    try:
        started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
        assert started.returncode == 0, started.stderr[-2000:]
        yield f"127.0.0.1:{port}", env
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def local_long(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """LONG_SPEC swept on this machine, the reference the Ray sweeps must match bit for bit."""
    folder = tmp_path_factory.mktemp("local")
    result = cli("sweep", str(write_spec(folder, LONG_SPEC)), "--out", str(folder / "out"),
                 "--jobs", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder / "out"


def _ray_sweep(spec: Path, out: Path, cluster: tuple[str, dict[str, str]]) -> subprocess.Popen:
    address, env = cluster
    return subprocess.Popen(
        [sys.executable, "-m", "toygeom_tui", "sweep", str(spec), "--out", str(out),
         "--ray", address],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _task_processes() -> list[int]:
    """Ray worker processes executing a sweep run right now (Ray titles them ray::FUNCTION)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::train_run"):
                pids.append(int(entry.name))
    return pids


def _wait(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the sweep ended before {what}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_sweep_on_ray_writes_the_same_sessions_bit_for_bit(
    tmp_path: Path, cluster: tuple[str, dict[str, str]], local_long: Path
) -> None:
    proc = _ray_sweep(write_spec(tmp_path, LONG_SPEC), tmp_path / "out", cluster)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    record = read_record(tmp_path / "out")
    assert [run["status"] for run in record["runs"]] == [DONE] * 4
    reference = {run["name"]: run["figures"] for run in read_record(local_long)["runs"]}
    for run in record["runs"]:
        assert run["figures"] == reference[run["name"]]
    for name in RUN_NAMES:
        assert_same_session(local_long / name, tmp_path / "out" / name)


def test_a_worker_killed_mid_sweep_is_retried_and_the_sweep_completes(
    tmp_path: Path, cluster: tuple[str, dict[str, str]], local_long: Path
) -> None:
    proc = _ray_sweep(write_spec(tmp_path, LONG_SPEC), tmp_path / "out", cluster)
    _wait(lambda: bool(_task_processes()), proc, "a task started")
    time.sleep(0.3)  # well inside a run of a few seconds
    victims = _task_processes()  # still running its task now: the kill loses that task
    assert victims, "the tasks finished before the test could kill one"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    assert [run["status"] for run in read_record(tmp_path / "out")["runs"]] == [DONE] * 4
    for name in RUN_NAMES:
        assert_same_session(local_long / name, tmp_path / "out" / name)


def test_ctrl_c_cancels_the_tasks_and_keeps_finished_runs(
    tmp_path: Path, cluster: tuple[str, dict[str, str]], local_long: Path
) -> None:
    out = tmp_path / "out"
    proc = _ray_sweep(write_spec(tmp_path, LONG_SPEC), out, cluster)
    _wait(
        lambda: (
            (out / SWEEP_FILE).exists()
            and any(run["status"] == DONE for run in read_record(out)["runs"])
        ),
        proc,
        "a run finished",
    )
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert f"toygeom-tui sweep --resume {out}" in stderr and "Traceback" not in stderr
    deadline = time.monotonic() + 60
    while _task_processes():  # cancelled tasks' workers go away
        assert time.monotonic() < deadline, "a cancelled task kept running"
        time.sleep(0.1)
    done = [run["name"] for run in read_record(out)["runs"] if run["status"] == DONE]
    for name in done:
        assert_same_session(local_long / name, out / name)
    address, env = cluster
    resumed = cli("sweep", "--resume", str(out), "--ray", address, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name in RUN_NAMES:
        assert_same_session(local_long / name, out / name)


def test_a_driver_with_another_token_is_refused(
    tmp_path: Path, cluster: tuple[str, dict[str, str]]
) -> None:
    address, env = cluster
    wrong = {**env, "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    result = cli("sweep", str(write_spec(tmp_path)), "--out", str(tmp_path / "out"),
                 "--ray", address, env=wrong)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(
        f"toygeom-tui: cannot reach the Ray cluster at {address}"
    )
