"""This CPU's fp32 peak, measured: `fma_peak.cpp` (independent vector FMAs on every thread).

Reproduce: `python -m toygeom_tui.bench.fma_peak` (~1 s). The bench quotes the default run's
share of it next to its share of torch.mm, since torch's BLAS reaches the peak on some CPUs
(Intel's, with MKL) and not on others (MKL on an AMD Zen 5 runs its AVX2 code)."""

from __future__ import annotations

import ctypes
import subprocess
import time
from pathlib import Path

import torch

from engine import fused_cpu

SOURCE = Path(__file__).with_name("fma_peak.cpp")


def peak_rate(threads: int | None = None, seconds: float = 0.5) -> float | None:
    """Best GFLOP/s of repeated ~0.1 s runs over about `seconds` on `threads` threads (default:
    torch's, as training uses); None where the probe cannot be built (no compiler, not x86-64)."""
    try:
        library = ctypes.CDLL(str(fused_cpu._build(SOURCE)))
    except (OSError, subprocess.SubprocessError, fused_cpu.KernelUnavailable):
        return None
    probe = library.toygeom_fma_peak
    probe.argtypes, probe.restype = [ctypes.c_int, ctypes.c_long], ctypes.c_double
    threads = threads or torch.get_num_threads()
    # ~0.1 s a run with 16-lane vectors (0.2 s with 8): a round is 2·lanes·12 FLOPs a thread
    iters = max(1, int(probe(threads, 100_000) * 1e9 * 0.1 / (2 * 16 * 12 * threads)))
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        best = max(best, probe(threads, iters))
    return best


if __name__ == "__main__":
    from toygeom_tui.bench.report import machine

    rate = peak_rate()
    print(machine())
    print("no compiler here" if rate is None else f"fp32 FMA peak: {rate:.1f} GFLOP/s")
