"""The fused CPU training: `csrc/fused_step.cpp`, built once per machine with g++, loaded by ctypes.

Why a hand-written kernel: at the default shape (d_hidden 20) the step's five products are
skinny, and MKL's bmm reaches ~40% of this CPU's peak on them, while the batch and the
(feats × batch) intermediates stream 16 MB arrays through memory; a tiny model (the pentagon)
is all per-step Python and dispatch. The kernel works one batch tile at a time in cache, draws
the batch itself (the same counters as `engine.rng`, bit for bit), and takes Adam's update,
several steps per call (`fused_train`); `fused_grads` gives one step's gradients.

Why ctypes and not a torch extension: no pybind11, ninja or torch headers are needed, a build
takes ~4 s, and ctypes releases the GIL for the call, so the app's UI thread keeps running.
The library is cached under $XDG_CACHE_HOME/toygeom-tui (or ~/.cache/toygeom-tui), keyed by the
source, the flags and the CPU (`-march=native`), and built into a temporary file that is renamed
into place, so concurrent processes never load a half-written library. Each build prunes the
cache to the KEEP_BUILDS libraries used last (every version, or edit, of the source adds one).
"""

from __future__ import annotations

import contextlib
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

from engine.optim import Adam
from engine.rng import STREAMS, seed_key

SOURCE = Path(__file__).with_name("csrc") / "fused_step.cpp"
COMPILER = "g++"
# No -ffast-math: the batch must stay bit-identical to engine.rng's (u / p correctly rounded)
# and sums keep their written order, so results are deterministic and match torch to float noise.
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-std=c++17", "-shared", "-fPIC", "-pthread")

# Libraries the cache keeps, by last use: enough for a few versions side by side and the tests'
# variants (two vector widths, an older revision for bench.kernel_rate).
KEEP_BUILDS = 8

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


def _build(
    source_path: Path = SOURCE, defines: tuple[str, ...] = (), march: str = "native"
) -> Path:
    """The path of the compiled library of `source_path` (default: this tree's kernel) with the
    macros `defines` ("NAME=VALUE") for the CPU `march` names, building it first if this machine
    has none yet."""
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        raise KernelUnavailable(
            f"built only on x86-64 Linux, not {sys.platform} {platform.machine()}"
        )
    source = source_path.read_bytes()
    flags = (*(f"-march={march}" if f == "-march=native" else f for f in FLAGS),
             *(f"-D{d}" for d in defines))  # fmt: skip
    key = hashlib.sha256(
        b"\0".join([source, COMPILER.encode(), *map(str.encode, flags), _cpu_id().encode()])
    )
    target = cache_dir() / f"{source_path.stem}-{key.hexdigest()[:16]}.so"
    if target.exists():
        with contextlib.suppress(OSError):  # a read-only cache: nothing to keep track of
            os.utime(target)  # used now: pruning goes by last use
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        result = subprocess.run(
            [COMPILER, *flags, "-o", partial, str(source_path)], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise KernelUnavailable(f"{COMPILER} failed: {result.stderr.strip()[-500:]}")
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    _prune(target.parent, source_path.stem)
    return target


def _prune(directory: Path, stem: str = SOURCE.stem) -> None:
    """Delete all but the KEEP_BUILDS libraries of sources named `stem` used last. One deleted
    while a process has it loaded stays mapped there; a process that needs it again builds it
    again."""
    libraries = sorted(directory.glob(f"{stem}-*.so"), key=_last_use, reverse=True)
    for old in libraries[KEEP_BUILDS:]:
        with contextlib.suppress(OSError):
            old.unlink()


def _last_use(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # deleted meanwhile by another process's prune
        return 0.0


class Job(ctypes.Structure):
    """`struct Job` of csrc/fused_step.cpp, field for field (see there for each field)."""

    _fields_ = [
        *((name, ctypes.c_int32) for name in
          ("n_inst", "hidden", "feats", "batch", "data", "relu", "n_steps", "n_threads")),
        ("first_step", ctypes.c_int64),
        ("streams", ctypes.c_int64),
        ("key", ctypes.c_uint64),
        *((name, ctypes.c_void_p) for name in ("x", "p", "importance", "lr")),
        *((name, ctypes.c_double) for name in ("beta1", "beta2", "eps", "weight_decay")),
        ("decoupled", ctypes.c_int32),
        ("unused", ctypes.c_int32),
        *((name, ctypes.c_void_p) for name in
          ("adam_step_W", "adam_step_b", "W", "b", "exp_avg_W", "exp_avg_sq_W", "exp_avg_b",
           "exp_avg_sq_b", "loss", "dW", "db", "dims")),
    ]  # fmt: skip


def load(
    source_path: Path = SOURCE, defines: tuple[str, ...] = (), march: str = "native"
) -> ctypes.CDLL:
    """The kernel of `source_path`, built with the macros `defines` if need be and loaded (raises
    KernelUnavailable or OSError). Another source than this tree's (an older revision, for
    `bench.kernel_rate`) must keep `struct Job` as `Job` mirrors it. The tests build
    TOYGEOM_LANES=8 and =16 to run both vector widths' layouts on any machine; `march` other
    than native (x86-64-v3: AVX2) times another CPU's build where this one can run it."""
    library = ctypes.CDLL(str(_build(source_path, defines, march)))
    library.toygeom_train.argtypes = [ctypes.POINTER(Job)]
    library.toygeom_train.restype = ctypes.c_int
    return library


def kernel_error() -> str | None:
    """Build and load the kernel if not yet tried; None if it is ready, else why not."""
    global _library, _error
    with _lock:
        if _library is None and _error is None:
            try:
                _library = load()
            except (OSError, subprocess.SubprocessError, KernelUnavailable) as error:
                _error = f"{type(error).__name__}: {error}"
        return _error


# The batches the kernel draws itself (Data in csrc): every variant. GIVEN: a batch passed in.
DRAWN = {"uniform": 0, "correlated": 1, "anticorrelated": 2, "normal": 4}
GIVEN = 3


def describe() -> str:
    """What the kernel runs on this machine, for the figures' provenance: "16-float vectors, u/p
    by division" (or FMAs), or why there is no kernel."""
    error = kernel_error()
    if error is not None:
        return f"none ({error})"
    divides = _library.toygeom_divides()
    return f"{_library.toygeom_lanes()}-float vectors, u/p by {'division' if divides else 'FMAs'}"


def _ptr(t: torch.Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


def _check(*tensors: torch.Tensor | None) -> None:
    for t in tensors:
        if t is not None and (
            t.dtype != torch.float32 or t.device.type != "cpu" or not t.is_contiguous()
        ):
            raise ValueError("the fused kernel takes contiguous float32 CPU tensors")


def _call(job: Job, library: ctypes.CDLL | None) -> None:
    if library is None:
        error = kernel_error()
        if error is not None:
            raise KernelUnavailable(error)
        library = _library
    if library.toygeom_train(ctypes.byref(job)) != 0:
        raise MemoryError("fused kernel: out of memory")


def _job(
    W: torch.Tensor,
    importance: torch.Tensor,
    feature_probability: torch.Tensor,
    data: str,
    seed: int,
    first_step: int,
    n_steps: int,
    batch_size: int,
    model: str,
    threads: int | None,
    x: torch.Tensor | None,
) -> Job:
    n_inst, d_hidden, n_feat = W.shape
    _check(importance, feature_probability, x)
    if x is None and data not in DRAWN:
        raise ValueError(f"the kernel draws {', '.join(DRAWN)} batches; pass others as x")
    mask = (1 << 64) - 1
    return Job(
        n_inst=n_inst,
        hidden=d_hidden,
        feats=n_feat,
        batch=batch_size,
        data=GIVEN if x is not None else DRAWN[data],
        relu=model == "relu",
        n_steps=n_steps,
        n_threads=threads or torch.get_num_threads(),
        first_step=first_step,
        streams=STREAMS,
        key=seed_key(seed) & mask,
        x=_ptr(x),
        p=_ptr(feature_probability),
        importance=_ptr(importance),
    )


def fused_grads(
    W: torch.Tensor,
    b_final: torch.Tensor,
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    data: str,
    seed: int,
    step: int,
    batch_size: int,
    model: str,
    threads: int | None = None,
    x: torch.Tensor | None = None,
    library: ctypes.CDLL | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`closed_form_grads` of the batch `generate_batch(data, ..., seed, step)`, drawn inside the
    kernel, or of x (inst batch feats) if given: (loss (inst,), dW (inst hidden feats),
    db (inst feats)). Float32 CPU tensors; raises KernelUnavailable without a kernel.
    library: a kernel from `load` to run instead of this tree's."""
    W, b_final = W.detach().contiguous(), b_final.detach().contiguous()
    _check(W, b_final)
    n_inst, d_hidden, n_feat = W.shape
    job = _job(W, importance, feature_probability, data, seed, step, 1, batch_size, model,
               threads, x)  # fmt: skip
    loss, dW, db = torch.empty(n_inst), torch.empty_like(W), torch.empty_like(b_final)
    job.W, job.b = W.data_ptr(), b_final.data_ptr()
    job.loss, job.dW, job.db = loss.data_ptr(), dW.data_ptr(), db.data_ptr()
    _call(job, library)
    return loss, dW, db


def fused_train(
    W: torch.Tensor,
    b_final: torch.Tensor,
    adam: Adam,
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    data: str,
    seed: int,
    first_step: int,
    lrs: list[float],
    batch_size: int,
    model: str,
    threads: int | None = None,
    x: torch.Tensor | None = None,
    library: ctypes.CDLL | None = None,
    dims: torch.Tensor | None = None,
) -> torch.Tensor:
    """Train len(lrs) steps in one call: for i < len(lrs), the batch of step first_step + i
    (drawn inside the kernel, or x[i] of x (steps inst batch feats) if given), its gradients and
    `adam`'s update with lr lrs[i], W, b_final and adam's moments updated in place. Returns the
    (inst,) sum of the steps' losses. dims (inst feats), if given, gets each feature's D_i of
    the final W (`geometry.dimensionality`'s, to rounding). library: as for `fused_grads`."""
    state = [adam.state[name] for name in adam.names]  # W's, then b_final's
    _check(W, b_final, dims, *(s[key] for s in state for key in ("step", "exp_avg", "exp_avg_sq")))
    if dims is not None and dims.shape != (W.shape[0], W.shape[2]):
        raise ValueError(f"dims must be (inst, feats) = {(W.shape[0], W.shape[2])}")
    job = _job(W, importance, feature_probability, data, seed, first_step, len(lrs), batch_size,
               model, threads, x)  # fmt: skip
    lr = (ctypes.c_double * len(lrs))(*lrs)
    loss = torch.empty(W.shape[0])
    job.lr, job.loss = ctypes.addressof(lr), loss.data_ptr()
    job.beta1, job.beta2, job.eps = adam.beta1, adam.beta2, adam.eps
    job.weight_decay, job.decoupled = adam.weight_decay, adam.decoupled
    job.W, job.b, job.dims = W.data_ptr(), b_final.data_ptr(), _ptr(dims)
    job.adam_step_W, job.adam_step_b = (s["step"].data_ptr() for s in state)
    job.exp_avg_W, job.exp_avg_sq_W = (
        state[0]["exp_avg"].data_ptr(),
        state[0]["exp_avg_sq"].data_ptr(),
    )
    job.exp_avg_b, job.exp_avg_sq_b = (
        state[1]["exp_avg"].data_ptr(),
        state[1]["exp_avg_sq"].data_ptr(),
    )
    _call(job, library)  # also advances the step counts
    return loss
