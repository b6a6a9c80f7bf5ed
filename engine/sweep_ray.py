"""Run a sweep's runs as Ray tasks on a cluster (the optional `ray` extra, ray 2.60).

Each run is one task asking for `cpus_per_run` CPUs (and `gpus_per_run`, a fraction of a GPU, on
GPU nodes); it trains with `engine.sweep.train_run` on whichever node Ray picks and returns its
session as bytes, so the driver writes every session itself and no shared filesystem is needed.
Every node needs toygeom-tui installed (the tasks import `engine`). A task lost with its worker
process or node is retried by Ray (`max_retries`); one that still fails comes back FAILED, for
`sweep --resume` to run again. Once told to stop, the driver cancels the tasks still out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from engine.sweep import FAILED, POLL_SECONDS, RunResult, SweepRun, train_run

INSTALL_HINT = (
    'Ray is not installed; install the optional extra with pip install -e ".[ray]" '
    '(or pip install "ray>=2.60,<2.61")'
)


class RayUnavailable(Exception):
    """Ray is not installed, or the cluster cannot be reached; one line saying what to do."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(INSTALL_HINT) from None
    return ray


class RayExecutor:
    """Runs on the Ray cluster at `address` (host:port, or `auto` for the one this node joined)."""

    def __init__(
        self,
        address: str,
        *,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        max_retries: int = 3,
    ) -> None:
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.max_retries = max_retries

    def run(self, runs: list[SweepRun], stop: threading.Event) -> Iterator[RunResult]:
        if not runs:
            return
        ray = import_ray()
        try:
            ray.init(address=self.address, logging_level="ERROR", log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            message = " ".join(str(err).split())
            raise RayUnavailable(
                f"cannot reach the Ray cluster at {self.address}: {message}"
            ) from None
        task = ray.remote(train_run).options(
            num_cpus=self.cpus_per_run,
            num_gpus=self.gpus_per_run,
            max_retries=self.max_retries,  # system failures only: a run's own error is a result
        )
        threads = max(1, int(self.cpus_per_run))
        pending = {task.remote(r.name, r.config.to_dict(), threads): r for r in runs}
        try:
            while pending and not stop.is_set():
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=POLL_SECONDS)
                for ref in ready:
                    run = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as err:
                        message = " ".join(str(err).split())[:300]
                        yield RunResult(run.name, FAILED, {}, None, 0.0, f"lost on Ray: {message}")
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            ray.shutdown()
