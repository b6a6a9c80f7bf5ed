"""Run a sweep's runs on this machine: `jobs` worker processes, each training one run at a time.

Processes, not threads: a run's step holds the GIL between kernels, so threads would take turns.
Workers are spawned (not forked: torch's thread pools do not survive a fork) once and reused, so
torch's import and the kernel's load are paid once per worker, not once per run. Each worker
gets cores // jobs intra-op threads; the results do not depend on that count.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from multiprocessing import resource_tracker

from engine.sweep import FAILED, POLL_SECONDS, RunResult, SweepRun, train_run


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _ignore_interrupt() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the driver alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class LocalExecutor:
    """`jobs` runs at once in worker processes (default: one per core)."""

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = max(1, jobs or available_cores())
        self.threads = max(1, available_cores() // self.jobs)
        _start_resource_tracker()

    def run(self, runs: list[SweepRun], stop: threading.Event) -> Iterator[RunResult]:
        if not runs:
            return
        pool = ProcessPoolExecutor(
            max_workers=min(self.jobs, len(runs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_interrupt,
        )
        pending: dict[Future, SweepRun] = {
            pool.submit(train_run, r.name, r.config.to_dict(), self.threads): r for r in runs
        }
        try:
            while pending and not stop.is_set():
                done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    run = pending.pop(future)
                    error = future.exception()
                    if error is None:
                        yield future.result()
                    else:  # the worker process died (killed, out of memory)
                        yield RunResult(run.name, FAILED, {}, None, 0.0, f"worker lost: {error}")
        finally:
            if pending:  # stopped, or the consumer gave up: end the workers now
                _terminate(pool)
            pool.shutdown(wait=True, cancel_futures=True)


def _terminate(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's workers mid-run. Python 3.14 has pool.terminate_workers(); before it the
    worker processes are only reachable through the pool's `_processes`."""
    terminate = getattr(pool, "terminate_workers", None)
    if terminate is not None:
        terminate()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _start_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with this process's real stderr. It passes
    sys.stderr's descriptor to its child, and a host that replaced sys.stderr (a Textual app
    captures it) hands over one that fails the start ("bad value(s) in fds_to_keep").
    Call from the main thread: sys.stderr is swapped for the moment it takes."""
    if sys.__stderr__ is None:
        return
    with contextlib.redirect_stderr(sys.__stderr__):
        resource_tracker.ensure_running()
