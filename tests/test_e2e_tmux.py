"""End to end in a real terminal: tmux runs `python -m toygeom_tui --preset pentagon`, the test
reads the screen with capture-pane and types with send-keys. Skipped without tmux."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(180),
]


class Terminal:
    def __init__(self, socket: str) -> None:
        self.socket = socket

    def tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True
        )
        return result.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "app")

    def wait_for(self, text: str, timeout: float = 60.0) -> str:
        """Poll the screen until `text` shows; fail with the last screen otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not show in {timeout:.0f} s; screen:\n{screen}")
            time.sleep(0.1)

    def press(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "app", *keys)


def open_terminal(tmp_path: Path, *args: str) -> Terminal:
    """`python -m toygeom_tui ARGS` in a fresh tmux server (120×40), in `tmp_path`; when the app
    ends, the pane says APP-EXITED and its exit status."""
    term = Terminal(f"toygeom-e2e-{os.getpid()}-{tmp_path.name}")
    command = (
        f"cd {shlex.quote(str(tmp_path))} && {shlex.quote(sys.executable)} -m toygeom_tui "
        f"{shlex.join(args)}; echo APP-EXITED $?; sleep 60"
    )
    # Under pytest the pane inherits COLUMNS=80/LINES=24, which Textual would trust over the
    # terminal's real size: drop them so the app sizes (and resizes) from the tty.
    env = "env -u COLUMNS -u LINES TEXTUAL_ANIMATIONS=none TERM=xterm-256color"
    term.tmux("-f", "/dev/null", "new-session", "-d", "-s", "app", "-x", "120", "-y", "40",
              f"{env} sh -c {shlex.quote(command)}")  # fmt: skip
    term.tmux("set-option", "-s", "escape-time", "0")  # Esc reaches the app at once
    return term


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = open_terminal(tmp_path, "--preset", "pentagon", "--steps", "1000000")
    try:
        yield term
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)


def test_train_step_through_inspect_pause_save_quit(terminal: Terminal, tmp_path: Path) -> None:
    terminal.wait_for("loss (log)")
    terminal.wait_for("D* (line) and D_i (dots)")
    terminal.wait_for("▶ training")
    screen = terminal.wait_for("instance 0 of 0–7")
    assert "terminal too small" not in screen

    terminal.press("j")
    terminal.wait_for("instance 1 of 0–7", timeout=5)
    terminal.press("Enter")
    terminal.wait_for("D_i histogram", timeout=15)
    terminal.press("Escape")
    terminal.wait_for("loss (log)", timeout=10)

    terminal.press("p")
    terminal.wait_for("‖ paused", timeout=20)
    terminal.press("s")
    terminal.wait_for("saved step", timeout=20)
    saved = list((tmp_path / "sessions").iterdir())
    assert len(saved) == 1 and (saved[0] / "session.json").exists()

    terminal.tmux("resize-window", "-t", "app", "-x", "50", "-y", "15")
    terminal.wait_for("need ≥ 60×18, have 50×15", timeout=10)
    terminal.tmux("resize-window", "-t", "app", "-x", "80", "-y", "24")
    terminal.wait_for("loss (log)", timeout=10)

    terminal.press("q")  # everything is saved: no question
    terminal.wait_for("APP-EXITED 0", timeout=20)


def test_the_start_screen_paints_before_torch_is_loaded(terminal: Terminal) -> None:
    # Importing torch takes seconds: the start screen is up well before the dashboard.
    screen = terminal.wait_for("opening a new run: pentagon", timeout=30)
    assert "loss (log)" not in screen
    assert "loading PyTorch and the engine" in screen or "building the model" in screen
    terminal.wait_for("loss (log)")
    terminal.wait_for("▶ training")


def test_bad_input_ends_the_start_screen_with_one_line(tmp_path: Path) -> None:
    # Steps are checked with the rest of the config, which needs torch: after the start screen.
    term = open_terminal(tmp_path, "--preset", "pentagon", "--steps", "-5")
    try:
        screen = term.wait_for("APP-EXITED", timeout=60)
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)
    printed, exited = screen.split("APP-EXITED")
    assert exited.split()[0] == "2", screen
    # All the app left on the terminal is the error (wrapped at 120 columns, so rejoined).
    assert printed.strip().replace("\n", "").startswith("toygeom-tui: steps: -5 is out of range")
    assert printed.count("toygeom-tui:") == 1 and "Traceback" not in screen


def test_open_on_a_sweep_shows_its_table_over_its_best_run(tmp_path: Path) -> None:
    from engine.sweep import sweep_info

    seeds = subprocess.run(
        [sys.executable, "-m", "toygeom_tui", "train", "--preset", "pentagon", "--steps", "200",
         "--seeds", "2", "--jobs", "1", "--out", str(tmp_path / "seeds")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert seeds.returncode == 0, seeds.stderr
    best = sweep_info(tmp_path / "seeds").best
    term = open_terminal(tmp_path, "open", "seeds")
    try:
        screen = term.wait_for("sweep seeds: 2/2 runs done")
        starred = next(line for line in screen.splitlines() if "★" in line)
        assert starred.split()[1] == str(best.values["seed"])  # the best run is the one shown
        term.press("Escape")  # back to the dashboard under it: the best run's
        term.wait_for(f"seed {best.values['seed']} · 2/2 seeds done")
        term.press("q")
        term.wait_for("APP-EXITED 0")
    finally:
        subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True)
