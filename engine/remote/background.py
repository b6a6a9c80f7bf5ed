"""Start a headless `toygeom-tui train` that serves its session, and send a run there.

    start_headless(["train", "--resume", "sessions/fg"], "sessions/fg")   # returns once served
    keep_training(local_run)            # pause, save exactly, train on in the background

`train --detach` and the app's "keep training in the background" both start the run this way:
a fresh interpreter (forking after torch started its thread pools can hang) in a session of its
own (logging out does not stop it), its output in DIR/train.log.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from engine.remote.listing import probe

LOG_FILE = "train.log"
WAIT_SECONDS = 300.0  # for the new process to serve before giving up on watching it


class BackgroundError(Exception):
    """The headless run could not start; the message is its last word, one line."""


def start_headless(argv: list[str], directory: str | Path, wait: float = WAIT_SECONDS) -> int:
    """Run `python -m toygeom_tui ARGV` detached, logging to DIR/train.log; its pid once it
    serves `directory` (or is still starting after `wait` s). BackgroundError if it failed."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        log = open(directory / LOG_FILE, "ab")  # noqa: SIM115 (handed to the child)
    except OSError as err:
        raise BackgroundError(f"{directory}: cannot write ({err.strerror or err})") from None
    with log:
        child = subprocess.Popen(
            [sys.executable, "-m", "toygeom_tui", *argv],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + wait
    while child.poll() is None:
        hello = probe(directory)
        if (hello is not None and hello["pid"] == child.pid) or time.monotonic() > deadline:
            return child.pid
        time.sleep(0.05)
    lines = (directory / LOG_FILE).read_text(errors="replace").strip().splitlines()
    raise BackgroundError(lines[-1].removeprefix("toygeom-tui: ") if lines else "training failed")


def resume_headless(directory: str | Path, wait: float = WAIT_SECONDS) -> int:
    """Train the saved session in `directory` on, headless (`train --resume DIR`); its pid."""
    return start_headless(["train", "--resume", str(directory)], directory, wait)


def keep_training(run: Any, directory: str | Path, wait: float = WAIT_SECONDS) -> int:
    """Move a LocalRun into a headless process: pause it at its step, save it exactly (weights,
    optimizer state, history), let go of it, and resume the session there; the new pid.
    The numbers are those of a run that never moved (resume is exact on CPU)."""
    from engine.session import SessionError, save_session

    trainer = run.trainer
    trainer.pause()
    run.close()  # joins the training thread: the step is final, nothing here writes again
    try:
        save_session(trainer, directory, running=False)
    except SessionError as err:
        raise BackgroundError(str(err)) from None
    return resume_headless(directory, wait)
