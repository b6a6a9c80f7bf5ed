"""The training loop: owns parameters and optimizer, knows nothing of who watches it.

Observers subscribe with `trainer.on(event, fn)`; `fn(trainer)` is called from the training
thread. Events:
    "log"    every `log_every` steps and after each `step_once()`, after history got the
             step's loss and ‖W‖²_F (the trainer's own first observer keeps weight snapshots);
    "dims"   every `dims_every` steps, after history got every feature's D_i;
    "state"  whenever `trainer.state` changes.
A UI, an autosaver or a recorder is an observer; none of them is part of the loop.

Control (thread-safe, callable from any thread while `run()` runs in another):
`pause()`, `resume()`, `step_once()` (one step while paused), `stop()`, `extend(n)`.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path
from time import perf_counter

import numpy as np
import torch

from engine.config import RunConfig, resolve_feature_probability, resolve_importance
from engine.history import History, Snapshots
from engine.model import init_params, lr_factor
from engine.optim import Adam
from engine.policy import DIVERGED, DONE, PAUSED, READY, STOPPED, TRAINING
from engine.step import make_step, torch_threads_for

EVENTS = ("log", "dims", "state")
# D_i is recorded about 200 times a run, but at least every DIMS_EVERY_MAX steps: jumps come
# early (the default's within its first few thousand steps), and a long run recorded only every
# steps/200 would show none of them for its first tens of thousands. The history's D_i series
# thins itself evenly once full, so a long run keeps the same memory.
DIMS_EVERY_MAX = 100
# steps_per_second: the window keeps one (time, step) sample per RATE_SAMPLE_SECONDS, RATE_SAMPLES
# of them, so it spans ~3 s whatever the log rate; one per log spanned 64 logs, 45 ms of a
# pentagon run, and `ps`, the status line and an attached viewer read 6,900–15,500 steps/s
# off a run that trained at 14,000.
RATE_SAMPLE_SECONDS = 0.05
RATE_SAMPLES = 64

Observer = Callable[["Trainer"], None]


class Trainer:
    """Trains `config.n_inst` toy models at once. Usable from a notebook:

    >>> trainer = Trainer(preset("pentagon").replace(steps=200))
    >>> trainer.run()
    'done'
    >>> trainer.W.shape
    torch.Size([8, 2, 5])
    """

    def __init__(
        self,
        config: RunConfig,
        *,
        compiled: bool | None = None,
        log_every: int = 10,
        dims_every: int | None = None,
    ) -> None:
        self.config = config
        self.device = config.resolve_device()
        self.feature_probability = resolve_feature_probability(config).to(self.device)
        self.importance = resolve_importance(config).to(self.device)
        W, b_final = init_params(
            config.n_inst, config.d_hidden, config.n_features, config.seed, self.device
        )
        self.W, self.b_final = W, b_final
        self.adam = Adam({"W": W, "b_final": b_final}, config)
        self._step_fn = make_step(
            self.feature_probability,
            self.importance,
            config.batch_size,
            config.seed,
            config.data,
            config.model,
            compiled=compiled,
        )
        self.step = 0
        self.total_steps = config.steps
        self.log_every = max(1, log_every)
        self.dims_every = dims_every or max(
            self.log_every, min(config.steps // 200, DIMS_EVERY_MAX) or 1
        )
        self.history = History(config.n_inst, config.n_features)
        self.snapshots = Snapshots(self.log_every)  # W at chosen steps, for time travel
        self.snapshots.offer(0, self.W)
        self.state = READY
        self.error: str | None = None  # why the run diverged, for the user
        # True until this trainer's first step returns: that step builds the fused kernel or
        # compiles the step (seconds, once per machine or process), so a view can say so.
        self.preparing = True
        self.latest_loss: np.ndarray | None = None  # (inst,) mean loss over the last log interval
        self.latest_frobenius_sq: np.ndarray | None = None
        self.created_at: float | None = None  # set by the first save (engine.session)
        self.session_dir: Path | None = None  # the session this run was loaded from, if any
        self.load_note: str | None = None  # a line for the user about that session, if any
        self._observers: dict[str, list[Observer]] = {e: [] for e in EVENTS}
        self._lock = threading.RLock()  # held for each step; snapshot() takes it too
        self._wake = threading.Condition()
        self._paused = False
        self._single_steps = 0
        self._stop = False
        self._loss_sum = torch.zeros(config.n_inst, device=self.device)
        self._loss_count = 0
        self._dims: torch.Tensor | None = None  # D_i after the last steps, on a dims step
        # (step, D_i) of the last dims record offered to the history, kept or thinned out: what
        # a served run sends, so a viewer's mirror thins exactly as this history does.
        self.dims_record: tuple[int, np.ndarray] | None = None
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=RATE_SAMPLES)
        self.on("log", lambda trainer: trainer.snapshots.offer(trainer.step, trainer.W))

    # -- observers ---------------------------------------------------------------------------
    def on(self, event: str, fn: Observer) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; choose one of {', '.join(EVENTS)}")
        self._observers[event].append(fn)

    def off(self, event: str, fn: Observer) -> None:
        self._observers[event].remove(fn)

    def _emit(self, event: str) -> None:
        for fn in list(self._observers[event]):
            fn(self)

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._emit("state")

    # -- control -----------------------------------------------------------------------------
    def pause(self) -> None:
        with self._wake:
            self._paused = True
            self._wake.notify_all()

    def resume(self) -> None:
        with self._wake:
            self._paused = False
            self._wake.notify_all()

    def step_once(self) -> None:
        """While paused, let exactly one more step run."""
        with self._wake:
            self._single_steps += 1
            self._wake.notify_all()

    def stop(self) -> None:
        """Ask `run()` to return after the current step."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()

    def extend(self, n: int) -> None:
        """Raise the target by n steps (then call `run()` again if it had finished)."""
        if n < 1:
            raise ValueError("extend: n must be a positive number of steps")
        self.total_steps += n

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def steps_per_second(self) -> float:
        """Rate over the last few seconds of training (0 before two measurements)."""
        if len(self._rate_window) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._rate_window[0], self._rate_window[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    # -- the loop ------------------------------------------------------------------------------
    def run(self, until: int | None = None) -> str:
        """Train until `until` (default: total_steps), a stop, or divergence; return the state.

        Blocks; run it in a thread to watch or control it from elsewhere.
        """
        if self.state == DIVERGED:
            return self.state
        with torch_threads_for(self._step_fn):
            return self._run(self.total_steps if until is None else min(until, self.total_steps))

    def _run(self, target: int) -> str:
        self._stop = False
        self._restart_rate()
        self._set_state(PAUSED if self._paused else TRAINING)
        while self.step < target and not self._stop:
            single = False
            if self._paused:
                if not self._wait_while_paused():
                    continue
                single = self._paused  # still paused: this is one step asked for by step_once()
            # Steps up to the next record (one if asked for by step_once) and the records under
            # one lock, so a save from another thread sees weights, step and history of the
            # same step; observers run after it is released.
            n = 1 if single else self._steps_to_next_record(target)
            with self._lock:
                self._train_steps(n)
                log = single or self.step % self.log_every == 0 or self.step == target
                healthy = self._log() if log else True
                dims = healthy and self.step % self.dims_every == 0
                if dims:
                    self._record_dims()
            if not healthy:
                self._set_state(DIVERGED)
                return self.state
            if log:
                self._emit("log")
            if dims:
                self._emit("dims")
        if self._loss_count:
            with self._lock:
                healthy = self._log()
            if not healthy:
                self._set_state(DIVERGED)
                return self.state
            self._emit("log")
        self._set_state(DONE if self.step >= self.total_steps else STOPPED)
        return self.state

    def _wait_while_paused(self) -> bool:
        """Block while paused; True if a step may run now (resumed, or one single step)."""
        self._set_state(PAUSED)
        with self._wake:
            while self._paused and not self._single_steps and not self._stop:
                self._wake.wait()
            if self._stop:
                return False
            if self._paused:
                self._single_steps -= 1
        if not self._paused:
            self._restart_rate()  # the pause is no part of the rate
            self._set_state(TRAINING)
        return True

    def _restart_rate(self) -> None:
        self._rate_window.clear()
        self._rate_window.append((perf_counter(), self.step))

    def _steps_to_next_record(self, target: int) -> int:
        """Steps until the next log or dims record, or the target: the most one call may take
        while observers still see every record and control acts within one log interval."""
        return min(
            self.log_every - self.step % self.log_every,
            self.dims_every - self.step % self.dims_every,
            target - self.step,
        )

    @torch.no_grad()
    def _train_steps(self, n: int) -> None:
        """n steps; D_i of the last one into self._dims if it is a dims record's step (the step
        computes it where that is cheapest: the fused kernel, while W is in cache)."""
        cfg = self.config
        lrs = [cfg.lr * lr_factor(cfg.lr_schedule, s, self.total_steps)
               for s in range(self.step, self.step + n)]  # fmt: skip
        self._dims = None
        if (self.step + n) % self.dims_every == 0:
            self._dims = torch.empty(self.W.shape[0], self.W.shape[2], device=self.W.device)
        loss_sum = self._step_fn.train(self.W, self.b_final, self.adam, self.step, lrs, self._dims)
        self.preparing = False
        self._loss_sum += loss_sum
        self._loss_count += n
        self.step += n

    @torch.no_grad()
    def _log(self) -> bool:
        """Record the mean loss since the last log and ‖W‖²_F; False if the run diverged."""
        loss = (self._loss_sum / self._loss_count).cpu().numpy()
        frob = self.W.square().sum(dim=(1, 2)).cpu().numpy()
        self._loss_sum.zero_()
        self._loss_count = 0
        self.latest_loss, self.latest_frobenius_sq = loss, frob
        now = perf_counter()
        if not self._rate_window or now - self._rate_window[-1][0] >= RATE_SAMPLE_SECONDS:
            self._rate_window.append((now, self.step))
        self.history.record_metrics(self.step, loss, frob)
        finite = np.isfinite(loss) & np.isfinite(frob)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            self.error = (
                f"training diverged at step {self.step}: instance {bad} has a non-finite loss "
                f"or weights; lower lr (now {self.config.lr:g}) and start a new run"
            )
            return False
        return True

    @torch.no_grad()
    def _record_dims(self) -> None:
        assert self._dims is not None, "the step before a dims record computes them"
        self.dims_record = (self.step, self._dims.float().cpu().numpy())
        self.history.record_dims(*self.dims_record)

    # -- state for sessions and views ------------------------------------------------------------
    def snapshot(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """CPU copies of (W, b_final, step), consistent with each other, safe from any thread."""
        with self._lock:
            return self.W.detach().cpu().clone(), self.b_final.detach().cpu().clone(), self.step

    def consistent(self) -> threading.RLock:
        """`with trainer.consistent():` reads weights, step and history of one and the same step."""
        return self._lock

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to resume exactly: parameters and optimizer moments (CPU copies)."""
        with self._lock:
            tensors = {"W": self.W.detach().cpu().clone(), "b_final": self.b_final.cpu().clone()}
            for name, moments in self.adam.state.items():
                for key, value in moments.items():
                    tensors[f"optimizer.{name}.{key}"] = value.detach().cpu().clone()
        return tensors

    def load_state_tensors(self, tensors: dict[str, torch.Tensor], step: int) -> None:
        """Restore parameters and optimizer moments saved by `state_tensors` at `step` (set
        total_steps first: the state becomes done at or past it, else ready)."""
        with self._lock, torch.no_grad():
            self.W.copy_(tensors["W"])
            self.b_final.copy_(tensors["b_final"])
            for name, moments in self.adam.state.items():
                for key, value in moments.items():
                    saved = tensors.get(f"optimizer.{name}.{key}")
                    if saved is None:
                        continue
                    if saved.shape != value.shape:
                        raise ValueError(f"optimizer.{name}.{key} has shape {tuple(saved.shape)}")
                    value.copy_(saved)
            self.step = step
        # A run restored at its target is done; observers hear it as any change of state.
        self._set_state(DONE if step >= self.total_steps else READY)
