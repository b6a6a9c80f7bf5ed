"""The SSH workflow as a user types it, in a real terminal (tmux): train --detach, attach, p, +,
q (the run trains on), open DIR attaches again, the attached app killed (the run trains on).
Skipped without tmux."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_e2e_tmux import Terminal
from test_remote import wait_until

from engine.remote.client import RemoteRun
from engine.remote.listing import probe

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(300),
]

TOOL = f"{shlex.quote(sys.executable)} -m toygeom_tui"


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Terminal]:
    """A shell in tmp_path, in a 120×40 tmux pane named app."""
    term = Terminal(f"toygeom-attach-{os.getpid()}")
    env = "env -u COLUMNS -u LINES TEXTUAL_ANIMATIONS=none TERM=xterm-256color PS1='$ '"
    term.tmux("-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", "120", "-y", "40",
              "-c", str(tmp_path), f"{env} sh")  # fmt: skip
    term.tmux("set-option", "-s", "escape-time", "0")
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


def typed(term: Terminal, line: str) -> None:
    term.press("-l", line)
    term.press("Enter")


def app_pid(term: Terminal) -> int:
    """The pid of the program the pane's shell runs now."""
    shell_pid = term.tmux("display-message", "-p", "-t", "app", "#{pane_pid}").strip()
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", shell_pid], capture_output=True,
                         text=True).stdout.split()  # fmt: skip
    assert len(out) == 1, out
    return int(out[0])


def test_detach_attach_pause_extend_detach_reattach(shell: Terminal, tmp_path: Path) -> None:
    run_dir = tmp_path / "sessions" / "bg"
    pid = None
    try:
        typed(shell, f"{TOOL} train --preset pentagon --steps 100000000 --detach --out sessions/bg")
        wait_until(lambda: "sessions/bg" in [ln.strip() for ln in shell.screen().splitlines()], 120)
        pid = probe(run_dir)["pid"]  # served by the time the path is printed

        typed(shell, f"clear; {TOOL} attach")  # the one run under sessions/
        shell.wait_for("attached", timeout=60)
        shell.wait_for("▶ training", timeout=30)
        shell.press("p")
        shell.wait_for("‖ paused", timeout=30)
        shell.press("+")
        shell.wait_for("more steps, to 200,000,000", timeout=30)
        shell.press("q")
        shell.wait_for("Back with: toygeom-tui attach sessions/bg", timeout=30)

        watcher = RemoteRun.connect(run_dir)  # the run is alive, paused, extended
        try:
            assert watcher.pid == pid and watcher.state == "paused"
            assert watcher.total_steps == 200_000_000
        finally:
            watcher.close()

        typed(shell, f"clear; {TOOL} open sessions/bg")  # open on a running session attaches
        shell.wait_for("attached", timeout=60)
        shell.press("p")
        shell.wait_for("▶ training", timeout=30)
        os.kill(app_pid(shell), signal.SIGKILL)  # the viewer vanishes; the run does not
        watcher = RemoteRun.connect(run_dir)
        try:
            step = watcher.step
            assert watcher.wait_for(lambda r: r.step > step, 30) and watcher.pid == pid
        finally:
            watcher.close()
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: probe(run_dir) is None, 30)
