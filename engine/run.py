"""A run, wherever it trains: the one face views and controllers drive.

Two sides share it: `LocalRun` (a Trainer in a thread of this process) and
`engine.remote.client.RemoteRun` (a `toygeom-tui train` process, over its socket). Whether an
action may happen now is engine.policy's question, asked the same way for both.

Reading (any thread):
    config, session_dir, step, total_steps, state, error, paused, preparing,
    steps_per_second, latest_loss (inst,), latest_frobenius_sq (inst,), history (engine.history),
    snapshots (engine.history.Snapshots' reading face: steps, at, at_or_before, len), W (inst
    hidden feats), b_final (inst feats), feature_probability (inst feats), importance (inst
    feats), device, snapshot() -> (W, b_final, step), consistent() (a lock under which weights,
    step and history belong to one step).
Watching: on(event, fn) / off(event, fn) with the Trainer's events "log", "dims", "state";
    fn(run) runs on the run's own thread (training thread, or the remote reader thread).
Control: start() (train; a remote run already does), pause(), resume(), step_once(),
    extend(n), stop(), save() -> the session directory; close() lets go of the run (a local run
    stops; a remote one trains on). A refused control raises RunRefused with the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from engine.config import RunConfig
from engine.history import History
from engine.policy import decide
from engine.trainer import DIVERGED, DONE, EVENTS, STOPPED, Trainer

__all__ = ["EVENTS", "LocalRun", "Run", "RunRefused", "as_run"]


FINAL = (DONE, STOPPED, DIVERGED)  # states in which Trainer.run() returns


class RunRefused(Exception):
    """A control the run cannot take now; the message says why, in one line."""


@runtime_checkable
class Run(Protocol):
    config: RunConfig
    session_dir: Path | None
    step: int
    total_steps: int
    state: str
    error: str | None
    preparing: bool
    steps_per_second: float
    latest_loss: np.ndarray | None
    latest_frobenius_sq: np.ndarray | None
    history: History
    snapshots: Any  # engine.history.Snapshots, or a mirror with its reading interface
    W: torch.Tensor
    b_final: torch.Tensor
    feature_probability: torch.Tensor
    importance: torch.Tensor
    device: Any  # a torch.device here; for a remote run, a string naming its process
    remote: bool

    @property
    def paused(self) -> bool: ...
    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor, int]: ...
    def consistent(self) -> Any: ...
    def on(self, event: str, fn: Callable[[Any], None]) -> None: ...
    def off(self, event: str, fn: Callable[[Any], None]) -> None: ...
    def start(self) -> None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def step_once(self) -> None: ...
    def extend(self, n: int) -> None: ...
    def stop(self) -> None: ...
    def save(self) -> Path: ...
    def close(self) -> None: ...


class LocalRun:
    """A Trainer trained on a thread of this process, saved to `directory`."""

    remote = False

    def __init__(self, trainer: Trainer, directory: str | Path | None = None) -> None:
        self.trainer = trainer
        self.session_dir = Path(directory) if directory else trainer.session_dir
        self._thread: threading.Thread | None = None

    def __getattr__(self, name: str) -> Any:
        # The reading half of Run is the Trainer's own fields (config, step, history, ...).
        if name in _READ:
            return getattr(self.trainer, name)
        raise AttributeError(name)

    @property
    def training(self) -> bool:
        """True while the training thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def on(self, event: str, fn: Callable[[Any], None]) -> None:
        self.trainer.on(event, fn)

    def off(self, event: str, fn: Callable[[Any], None]) -> None:
        self.trainer.off(event, fn)

    def start(self) -> None:
        """Train on a thread until done, stopped or diverged (no-op while it trains)."""
        ending = self._thread if self.trainer.state in FINAL else None
        if ending is not None and ending is not threading.current_thread():
            ending.join()  # its run() is returning (done or stopped): a new one goes on from here
        if not self.training:
            self._thread = threading.Thread(target=self._train, name="train", daemon=True)
            self._thread.start()

    def _train(self) -> None:
        try:
            self.trainer.run()
        except Exception as err:  # the run's news (a "state" event), not a traceback on a thread
            self.trainer.error = f"training stopped by an error: {err}"
            self.trainer._set_state(STOPPED)

    def _allow(self, action: str) -> None:
        t = self.trainer
        verdict = decide(action, t.state, t.step, t.total_steps, t.error)
        if not verdict:
            raise RunRefused(verdict.reason)

    def pause(self) -> None:
        self._allow("pause")
        self.trainer.pause()

    def resume(self) -> None:
        self._allow("resume")
        self.trainer.resume()
        self.start()

    def step_once(self) -> None:
        self._allow("step")
        self.trainer.pause()
        self.trainer.step_once()
        self.start()

    def extend(self, n: int) -> None:
        self._allow("extend")
        self.trainer.extend(n)

    def stop(self) -> None:
        self._allow("stop")
        self.trainer.stop()

    def save(self) -> Path:
        from engine.session import save_session

        self._allow("save")
        if self.session_dir is None:
            raise RunRefused("this run has no session directory to save to")
        return save_session(self.trainer, self.session_dir, running=self.training)

    def close(self) -> None:
        self.trainer.stop()
        if self._thread is not None:
            self._thread.join()


def as_run(run: Run | Trainer) -> Run:
    """`run` itself, or a Trainer as a LocalRun (what a notebook or a test may hand over)."""
    return LocalRun(run) if isinstance(run, Trainer) else run


_READ = frozenset(
    (
        "config",
        "step",
        "total_steps",
        "state",
        "error",
        "paused",
        "preparing",
        "steps_per_second",
        "latest_loss",
        "latest_frobenius_sq",
        "history",
        "snapshots",
        "W",
        "b_final",
        "feature_probability",
        "importance",
        "snapshot",
        "consistent",
        "device",
        "log_every",
        "dims_every",
    )
)
