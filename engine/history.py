"""A run's history, bounded in memory however long the run.

Per logged step: loss and ‖W‖²_F per instance. At a coarser interval: every feature's
dimensionality D_i (so a view can show features jumping between levels). When a series fills its
capacity, every other record is dropped and the series records half as often from then on, so a
million-step run keeps the same memory as a short one, spread evenly over the whole run.
"""

from __future__ import annotations

import threading

import numpy as np


class Series:
    """Evenly thinned records of fixed shape: `steps` (n,) and `values` (n, *shape)."""

    def __init__(self, shape: tuple[int, ...], capacity: int) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self._steps = np.zeros(capacity, dtype=np.int64)
        self._values = np.zeros((capacity, *shape), dtype=np.float32)
        self.count = 0
        self.stride = 1  # keep one offered record in `stride`
        self._since = 0  # offers since the last kept one

    def offer(self, step: int, value: np.ndarray) -> bool:
        """Record (step, value) if it falls on the current stride; True when kept."""
        self._since += 1
        if self._since < self.stride:
            return False
        self._since = 0
        self._steps[self.count] = step
        self._values[self.count] = value
        self.count += 1
        if self.count == self.capacity:
            # Keep odd positions: the newest record survives, and from now on one offer in
            # 2·stride is kept, so the spacing stays even across the whole run.
            keep = slice(1, self.capacity, 2)
            half = self.capacity // 2
            self._steps[:half] = self._steps[keep]
            self._values[:half] = self._values[keep]
            self.count = half
            self.stride *= 2
        return True

    @property
    def steps(self) -> np.ndarray:
        return self._steps[: self.count].copy()

    @property
    def values(self) -> np.ndarray:
        return self._values[: self.count].copy()

    def latest(self) -> tuple[int, np.ndarray]:
        """(step, value) of the newest record (there must be one)."""
        return int(self._steps[self.count - 1]), self._values[self.count - 1].copy()

    def state(self) -> dict[str, int]:
        return {"count": self.count, "stride": self.stride, "since": self._since}

    def restore(self, steps: np.ndarray, values: np.ndarray, state: dict[str, int]) -> None:
        n = len(steps)
        if n > self.capacity or values.shape[1:] != self._values.shape[1:] or len(values) != n:
            raise ValueError("history arrays do not fit this run's shapes")
        self._steps[:n] = steps
        self._values[:n] = values
        self.count = n
        self.stride = int(state.get("stride", 1))
        self._since = int(state.get("since", 0))


class History:
    """Thread-safe history of one run (written by the trainer, read by any view)."""

    def __init__(
        self, n_inst: int, n_features: int, capacity: int = 4096, dims_capacity: int = 256
    ) -> None:
        self._lock = threading.Lock()
        self.metrics = Series((2, n_inst), capacity)  # [loss, frobenius_sq] per instance
        self.dims = Series((n_inst, n_features), dims_capacity)
        self.version = 0  # bumps on every kept record: cheap "has anything changed?" for views

    def record_metrics(self, step: int, loss: np.ndarray, frobenius_sq: np.ndarray) -> None:
        with self._lock:
            if self.metrics.offer(step, np.stack([loss, frobenius_sq])):
                self.version += 1

    def record_dims(self, step: int, dims: np.ndarray) -> None:
        with self._lock:
            if self.dims.offer(step, dims):
                self.version += 1

    def metrics_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Copies of (steps (n,), loss (n, inst), frobenius_sq (n, inst))."""
        with self._lock:
            steps, values = self.metrics.steps, self.metrics.values
        return steps, values[:, 0], values[:, 1]

    def dims_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Copies of (steps (m,), dims (m, inst, feats))."""
        with self._lock:
            return self.dims.steps, self.dims.values

    def latest_dims(self) -> tuple[int, np.ndarray] | None:
        """(step, dims (inst, feats)) of the newest D_i record, or None before the first."""
        with self._lock:
            if not self.dims.count:
                return None
            return self.dims.latest()

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, dict[str, int]]]:
        """Arrays and thinning state, for saving (see engine.session)."""
        with self._lock:
            arrays = {
                "history.metrics.steps": self.metrics.steps,
                "history.metrics.values": self.metrics.values,
                "history.dims.steps": self.dims.steps,
                "history.dims.values": self.dims.values,
            }
            state = {"metrics": self.metrics.state(), "dims": self.dims.state()}
        return arrays, state

    def restore(self, arrays: dict[str, np.ndarray], state: dict[str, dict[str, int]]) -> None:
        with self._lock:
            self.metrics.restore(
                arrays["history.metrics.steps"],
                arrays["history.metrics.values"],
                state.get("metrics", {}),
            )
            self.dims.restore(
                arrays["history.dims.steps"], arrays["history.dims.values"], state.get("dims", {})
            )
            self.version += 1
