"""The fused CPU step: `csrc/fused_step.cpp`, built once per machine with g++, loaded by ctypes.

Why a hand-written kernel: at the default shape (d_hidden 20) the step's five products are
skinny, and MKL's bmm reaches ~40% of this CPU's peak on them, while the batch and the
(feats × batch) intermediates stream 16 MB arrays through memory. The kernel works one batch
tile at a time in cache, draws the batch itself (the same counters as `engine.rng`, bit for bit),
and its products run at ~85% of peak (estimated from a perf profile): one thread does the
whole step in 13.8 ms of CPU time, where the five bmm's alone take 17.

Why ctypes and not a torch extension: no pybind11, ninja or torch headers are needed, a build
takes ~4 s, and ctypes releases the GIL for the call, so the app's UI thread keeps running.
The library is cached under $XDG_CACHE_HOME/toygeom-tui (or ~/.cache/toygeom-tui), keyed by the
source, the flags and the CPU (`-march=native`), and built into a temporary file that is renamed
into place, so concurrent processes never load a half-written library.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("csrc") / "fused_step.cpp"
COMPILER = "g++"
# No -ffast-math: the batch must stay bit-identical to engine.rng's (u / p is a true division)
# and sums keep their written order, so results are deterministic and match torch to float noise.
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC", "-pthread")

_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_error: str | None = None  # why the kernel is unavailable in this process, once known


class KernelUnavailable(RuntimeError):
    """The fused kernel cannot be built or loaded here (no compiler, other platform, ...)."""


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "toygeom-tui"


def _cpu_id() -> str:
    """What `-march=native` depends on: the machine and its CPU's model and feature flags."""
    lines = [platform.machine()]
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith(("model name", "flags")):
                    lines.append(line)
                if len(lines) == 3:
                    break
    except OSError:
        pass
    return "".join(lines)


def _build() -> Path:
    """The path of the compiled library, building it first if this machine has none yet."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        raise KernelUnavailable(
            f"built only on x86-64 Linux, not {sys.platform} {platform.machine()}"
        )
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, COMPILER.encode(), *map(str.encode, FLAGS), _cpu_id().encode()])
    )
    target = cache_dir() / f"fused_step-{key.hexdigest()[:16]}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [COMPILER, *FLAGS, "-o", partial, str(SOURCE)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise KernelUnavailable(f"{COMPILER} failed: {result.stderr.strip()[-500:]}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return target


def _load() -> ctypes.CDLL:
    library = ctypes.CDLL(str(_build()))
    fn = library.toygeom_fused_step
    pointer, i32, u64 = ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64
    fn.argtypes = [i32] * 4 + [pointer] * 5 + [u64] * 2 + [i32] * 2 + [pointer] * 3
    fn.restype = i32
    return library


def kernel_error() -> str | None:
    """Build and load the kernel if not yet tried; None if it is ready, else why not."""
    global _library, _error
    with _lock:
        if _library is None and _error is None:
            try:
                _library = _load()
            except (OSError, subprocess.SubprocessError, KernelUnavailable) as error:
                _error = f"{type(error).__name__}: {error}"
        return _error


def _ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    return None if t is None else ctypes.c_void_p(t.data_ptr())


def _run(
    W: torch.Tensor,
    b_final: torch.Tensor,
    importance: torch.Tensor,
    model: str,
    batch_size: int,
    x: torch.Tensor | None = None,
    feature_probability: torch.Tensor | None = None,
    base: int = 0,
    key: int = 0,
    threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    error = kernel_error()
    if error is not None:
        raise KernelUnavailable(error)
    n_inst, d_hidden, n_feat = W.shape
    inputs = [t.detach().contiguous() for t in (W, b_final, importance)]
    for t in (*inputs, x, feature_probability):
        if t is not None and (t.dtype != torch.float32 or t.device.type != "cpu"):
            raise ValueError("the fused kernel takes float32 CPU tensors")
    loss, dW, db = (
        torch.empty(n_inst),
        torch.empty(n_inst, d_hidden, n_feat),
        torch.empty(n_inst, n_feat),
    )
    mask = (1 << 64) - 1
    status = _library.toygeom_fused_step(
        n_inst,
        d_hidden,
        n_feat,
        batch_size,
        *map(_ptr, inputs),
        _ptr(x),
        _ptr(feature_probability),
        base & mask,
        key & mask,
        model == "relu",
        threads or torch.get_num_threads(),
        *map(_ptr, (loss, dW, db)),
    )
    if status != 0:
        raise MemoryError("fused kernel: out of memory")
    return loss, dW, db


def fused_grads(
    W: torch.Tensor, b_final: torch.Tensor, xT: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`closed_form_grads` by the kernel: (loss (inst,), dW (inst hidden feats), db (inst feats))
    for xT (inst feats batch). Float32 CPU tensors; raises KernelUnavailable without a kernel."""
    x = xT.detach().transpose(1, 2).contiguous()  # the kernel reads the batch batch-major
    return _run(W, b_final, importance, model, x.shape[1], x=x)


def fused_uniform_grads(
    W: torch.Tensor,
    b_final: torch.Tensor,
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    base: int,
    key: int,
    batch_size: int,
    model: str,
    threads: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`closed_form_grads` of the uniform batch `generate_batch` draws, drawn inside the kernel.

    base: the batch's first counter (`counter_base(step, PRESENCE, inst·batch·feats)`);
    key: `seed_key(seed)`; feature_probability (inst feats); threads: how many the kernel
    starts (default torch's intra-op count).
    """
    p = feature_probability.detach().contiguous()
    return _run(
        W,
        b_final,
        importance,
        model,
        batch_size,
        feature_probability=p,
        base=base,
        key=key,
        threads=threads,
    )
