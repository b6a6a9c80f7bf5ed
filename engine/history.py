"""A run's history, bounded in memory however long the run.

Per logged step: loss and ‖W‖²_F per instance. At a coarser interval: every feature's
dimensionality D_i (so a view can show features jumping between levels). When a series fills its
capacity, every other record is dropped and the series records half as often from then on, so a
million-step run keeps the same memory as a short one, spread evenly over the whole run.

Before the D_i records halve, the jumps in them are looked for and kept (`kept_jumps`): with half
the records around it, an early jump can no longer be seen (engine.jumps).

`Snapshots` keeps whole weight matrices W at a few steps, spaced evenly in log(step): dense early,
where features move fastest, sparse later. A view or an export travels back to them.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
from collections.abc import Callable

import numpy as np
import torch

from engine.jumps import Jump, find_jumps, jump_order, merge_jumps


class Series:
    """Evenly thinned records of fixed shape: `steps` (n,) and `values` (n, *shape)."""

    def __init__(
        self,
        shape: tuple[int, ...],
        capacity: int,
        before_halving: Callable[[np.ndarray, np.ndarray], None] | None = None,
    ) -> None:
        if capacity < 2 or capacity % 2:
            raise ValueError("capacity must be an even number >= 2")
        self.capacity = capacity
        self.before_halving = before_halving  # sees (steps, values), full, before they halve
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
            if self.before_halving is not None:
                self.before_halving(self._steps, self._values)
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
        self.dims = Series((n_inst, n_features), dims_capacity, self._keep_jumps)
        self._kept_jumps: list[Jump] = []  # found in D_i records since halved away
        self.version = 0  # bumps on every kept record: cheap "has anything changed?" for views

    def record_metrics(self, step: int, loss: np.ndarray, frobenius_sq: np.ndarray) -> None:
        with self._lock:
            if self.metrics.offer(step, np.stack([loss, frobenius_sq])):
                self.version += 1

    def record_dims(self, step: int, dims: np.ndarray) -> None:
        with self._lock:
            if self.dims.offer(step, dims):
                self.version += 1

    def _keep_jumps(self, steps: np.ndarray, dims: np.ndarray) -> None:
        """The D_i series is full and about to halve (under the lock): keep the jumps its
        records show now: 50–90 ms for the default run's 256 records (Zen 4), once a halving."""
        count = self.metrics.count
        loss = self.metrics._values[:count, 0]
        found = find_jumps(steps, dims, self.metrics._steps[:count], loss)
        self._kept_jumps = merge_jumps(self._kept_jumps, found)

    def kept_jumps(self, instance: int | None = None) -> list[Jump]:
        """The jumps kept from D_i records halved away (of one `instance` when given)."""
        with self._lock:
            return [j for j in self._kept_jumps if instance is None or j.instance == instance]

    def restore_jumps(self, jumps: list[Jump]) -> None:
        """Put back kept jumps (a saved session's, a served run's)."""
        with self._lock:
            self._kept_jumps = sorted(jumps, key=jump_order)
            self.version += 1

    def thinning(self) -> dict[str, dict[str, int]]:
        """Each series' count, stride and offers since its last kept record (Series.state)."""
        with self._lock:
            return {"metrics": self.metrics.state(), "dims": self.dims.state()}

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


# At most this many weight snapshots a run. The default run (20 × 20 × 200 float32, 320 KB each)
# keeps 80 in its 10,000 steps: 25.6 MB in memory and in its session (README, "Time travel").
SNAPSHOT_CAPACITY = 128
# Each snapshot after the first few is due once the step has grown by this factor since the last
# one (and at least one log interval later): 6% apart in step, evenly spaced in log(step).
SNAPSHOT_GROWTH = 1.06


def weights_digest(W: torch.Tensor) -> str:
    """The first 16 hex digits of the sha256 of W's float32 bytes (a CPU tensor): names a
    snapshot's file in a session (engine.snapshot_files) and lets a load check what it read."""
    return hashlib.sha256(W.contiguous().numpy().data).hexdigest()[:16]


class SnapshotSteps:
    """Which steps have a weight snapshot: the reading half of Snapshots, shared with a served
    run's mirror of them (engine.remote.client.RemoteSnapshots). `_steps` ascending, `_lock`."""

    _lock: threading.Lock
    _steps: list[int]

    @property
    def steps(self) -> list[int]:
        """The recorded steps, ascending."""
        with self._lock:
            return list(self._steps)

    def __len__(self) -> int:
        with self._lock:
            return len(self._steps)

    def at_or_before(self, step: int) -> int | None:
        """The latest recorded step <= `step`, or None."""
        with self._lock:
            i = bisect.bisect_right(self._steps, step)
            return self._steps[i - 1] if i else None


class Snapshots(SnapshotSteps):
    """Weight snapshots W (inst hidden feats) at chosen steps, at most `capacity` of them.

    `offer(step, W)` keeps W when the step is due (a multiple of `every`, the log interval, at
    least SNAPSHOT_GROWTH × the last kept step). When full, the snapshot whose two neighbours are
    closest in log(step) goes, so spacing stays even in log(step) however long the run; the
    first and newest always stay. Thread-safe: the training thread offers, any thread reads.
    `unrecorded_until`: steps before it have no snapshots (a session from before they existed).
    A kept snapshot never changes; its `weights_digest` is taken once, when it is kept.
    """

    def __init__(self, every: int, capacity: int = SNAPSHOT_CAPACITY) -> None:
        if capacity < 2:
            raise ValueError("Snapshots: capacity must be >= 2")
        self.every = max(1, every)
        self.capacity = capacity
        self.unrecorded_until = 0
        self._lock = threading.Lock()
        self._steps: list[int] = []
        self._weights: list[torch.Tensor] = []
        self._digests: list[str] = []
        self._next_due = 0

    def offer(self, step: int, W: torch.Tensor) -> bool:
        """Keep a CPU copy of W (inst hidden feats) at `step` if a snapshot is due; True if kept."""
        if step < self._next_due or step % self.every:
            return False
        copy = W.detach().to("cpu", torch.float32, copy=True)
        digest = weights_digest(copy)
        with self._lock:
            if self._steps and step <= self._steps[-1]:
                return False
            self._steps.append(step)
            self._weights.append(copy)
            self._digests.append(digest)
            grown = math.ceil(step * SNAPSHOT_GROWTH / self.every) * self.every
            self._next_due = max(step + self.every, grown)
            if len(self._steps) > self.capacity:
                self._drop_one()
        return True

    def _drop_one(self) -> None:
        """Drop the interior snapshot whose neighbours are closest in log(step + every)."""
        logs = [math.log(s + self.every) for s in self._steps]
        gaps = [logs[i + 1] - logs[i - 1] for i in range(1, len(logs) - 1)]
        drop = 1 + gaps.index(min(gaps))
        del self._steps[drop], self._weights[drop], self._digests[drop]

    def at(self, step: int) -> torch.Tensor:
        """W (inst hidden feats) recorded at exactly `step` (KeyError if none): a copy."""
        with self._lock:
            try:
                return self._weights[self._steps.index(step)].clone()
            except ValueError:
                raise KeyError(f"no snapshot at step {step}") from None

    def entries(self) -> tuple[list[tuple[int, str, torch.Tensor]], dict[str, int]]:
        """(step, digest, W) of every snapshot, ascending, and the schedule state, for saving
        (see engine.session). Each W is the stored tensor itself, not a copy: read it only."""
        with self._lock:
            entries = list(zip(self._steps, self._digests, self._weights, strict=True))
            state = {"next_due": self._next_due, "unrecorded_until": self.unrecorded_until}
        return entries, state

    def restore(
        self,
        steps: torch.Tensor,
        weights: torch.Tensor,
        state: dict[str, int],
        shape: tuple[int, ...],
        digests: list[str] | None = None,
    ) -> None:
        """Put back saved snapshots: `steps` (n,), `weights` (n inst hidden feats), the schedule
        state `entries` gave, and each one's `weights_digest` if known (else taken here);
        `shape` is one W's. Raises ValueError when they don't fit the run or aren't ascending
        and finite."""
        listed = steps.tolist()
        if not listed:
            weights = torch.zeros((0, *shape))
        if (
            len(listed) > self.capacity
            or tuple(weights.shape) != (len(listed), *shape)
            or weights.dtype != torch.float32
            or any(b <= a for a, b in zip(listed, listed[1:], strict=False))
            or (listed and listed[0] < 0)
            or not bool(torch.isfinite(weights).all())
            or (digests is not None and len(digests) != len(listed))
        ):
            raise ValueError("weight snapshots do not fit this run")
        kept = list(weights.clone().unbind(0))
        if digests is None:
            digests = [weights_digest(w) for w in kept]
        with self._lock:
            self._steps = listed
            self._weights = kept
            self._digests = list(digests)
            self._next_due = int(state.get("next_due", 0))
            self.unrecorded_until = int(state.get("unrecorded_until", 0))

    def start_after(self, step: int) -> None:
        """No snapshots before `step`, and none are due before it (a run restored without them)."""
        with self._lock:
            self._steps, self._weights, self._digests = [], [], []
            self._next_due = step
            self.unrecorded_until = step
