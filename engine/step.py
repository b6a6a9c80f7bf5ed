"""The training step: closed-form gradients, instance-major batched matrix products.

Per instance, with the batch feature-major (xᵀ: feats × batch), hᵀ = W xᵀ, preᵀ = Wᵀ hᵀ + b,
D = act(pre) − x, G = D · act'(pre) · importance and c = 2 / (batch · feats):
    loss = mean(importance · D²),  db = c Σ_batch G,  dW = c (hᵀ G + W Gᵀ x).
This equals autograd on `engine.model` (tested) with five bmm's and no graph. Feature-major
because MKL runs these skinny products (one side d_hidden wide) ~25% faster with the batch as the
contiguous axis of every operand and result (measured: 10.6 vs 13.2 ms a step at the default).

`CompiledStep` runs the same math as one `torch.compile`d graph that also generates the uniform
batch: the SplitMix64 hash of `engine.rng` is computed from counters inside the fused kernel, so
its batch is bit-identical to `generate_batch` (tested), written straight into the feature-major
layout, and never round-trips through memory as int64; tiny models (hidden·feats ≤ 64) take
`broadcast_grads` there instead of bmm's.
On the CPU, `FusedStep` runs every data variant and both models in a hand-written C++ kernel
(`engine.fused_cpu`): it draws the same batch in the kernel, keeps every (feats × batch)
intermediate in cache, and takes Adam's update too, several steps per call (`train`), so tiny
models pay no per-step Python or dispatch cost (measured at the default shape: 7.9 vs 11.2 ms a
step for the compiled graph).
Every step sets W.grad and b_final.grad for one step's batch (`__call__`) and trains several
steps with an `engine.optim.Adam` (`train`).
`make_step` picks the fastest step it can and falls back, with one warning each, from the
kernel to the compiled graph (uniform data) or the eager step when g++ is missing or the build
fails, and from the compiled graph to `EagerStep` when the compiler is missing or fails.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
import threading
import warnings
from collections.abc import Callable, Iterator

import torch

from engine import fused_cpu
from engine.data import PRESENCE, generate_batch, sparse_uniform
from engine.geometry import dimensionality
from engine.optim import Adam
from engine.rng import counter_base, seed_key, uniform_from_counter


def closed_form_grads(
    W: torch.Tensor, b_final: torch.Tensor, xT: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss (inst,), dW (inst hidden feats), db (inst feats)) for xT (inst feats batch)."""
    n_feat, n_batch = xT.shape[1], xT.shape[2]
    hT = torch.bmm(W, xT)  # inst hidden batch
    # bmm + add rather than baddbmm: compiled, the add fuses into the elementwise kernel below
    # instead of first copying the broadcast bias into a 16 MB output (measured 1–2 ms a step).
    preT = torch.bmm(W.transpose(1, 2), hT) + b_final[..., None]  # inst feats batch
    imp = importance[..., None]
    D, G = residual_and_grad(preT, xT, imp, model)
    loss = (D * D * imp).mean(dim=(1, 2))
    c = 2.0 / (n_batch * n_feat)
    db = G.sum(dim=2) * c
    GWT = torch.bmm(W, G)  # inst hidden batch
    dW = (torch.bmm(hT, G.transpose(1, 2)) + torch.bmm(GWT, xT.transpose(1, 2))) * c
    return loss, dW, db


def residual_and_grad(
    pre: torch.Tensor, x: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """D = act(pre) − x and G = D · act'(pre) · importance, any layout (broadcasting)."""
    if model == "relu":
        D = torch.relu(pre) - x
        return D, D * (pre > 0) * importance
    D = pre - x
    return D, D * importance


_BROADCAST_MAX = 64  # hidden·feats up to which broadcast_grads beats bmm once compiled


def broadcast_grads(
    W: torch.Tensor, b_final: torch.Tensor, xT: torch.Tensor, importance: torch.Tensor, model: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`closed_form_grads` for tiny models, from xT (inst feats batch): same math, same results.

    Written as broadcast products summed over the contracted axis, with the batch innermost, so
    the compiler fuses the whole step into a few loops vectorised along the batch. For hidden and
    feats in the single digits (the pentagon) that is ~3× faster than bmm, whose per-call cost
    dominates there; for larger models bmm is far faster (measured: 10× at 200 × 20).
    """
    n_feat, n_batch = xT.shape[1], xT.shape[2]
    W4 = W[..., None]  # inst hidden feats 1
    hT = (W4 * xT[:, None]).sum(2)  # inst hidden batch
    preT = (W4 * hT[:, :, None]).sum(1) + b_final[..., None]  # inst feats batch
    imp = importance[..., None]
    D, G = residual_and_grad(preT, xT, imp, model)
    loss = (D * D * imp).mean(dim=(1, 2))
    c = 2.0 / (n_batch * n_feat)
    db = G.sum(dim=2) * c
    GWT = (W4 * G[:, None]).sum(2)  # inst hidden batch
    dW = (hT[:, :, None] * G[:, None] + GWT[:, :, None] * xT[:, None]).sum(-1) * c
    return loss, dW, db


def _keep_freed_memory() -> None:
    """Let glibc reuse freed 16 MB activations instead of mmap-ing fresh ones every step.

    By default glibc serves such blocks by mmap and returns them on free, so every step pays a
    page fault per 4 KB of every activation (it makes elementwise ops ~5× slower). Raising the
    mmap and trim thresholds keeps them in the heap; the process then holds on to its peak
    footprint (a few hundred MB at most for these models). No-op off glibc.
    """
    global _memory_tuned
    if _memory_tuned or not sys.platform.startswith("linux"):
        return
    _memory_tuned = True
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another libc: nothing to tune
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 256 << 20)
    mallopt(m_trim_threshold, 1 << 30)


_memory_tuned = False


class GradientStep:
    """A step: `__call__` sets the gradients of one step's batch, `train` adds Adam's update."""

    def __call__(self, W: torch.Tensor, b_final: torch.Tensor, step: int) -> torch.Tensor:
        """Set W.grad and b_final.grad for the batch of `step`; return the (inst,) loss."""
        raise NotImplementedError

    def train(
        self,
        W: torch.Tensor,
        b_final: torch.Tensor,
        adam: Adam,
        step: int,
        lrs: list[float],
        dims: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Train len(lrs) steps from `step` (step + i with learning rate lrs[i]), W and b_final
        in place; the (inst,) sum of their losses. dims (inst feats), if given, gets each
        feature's D_i of the final W (`geometry.dimensionality`; the fused step computes it in
        the kernel, while W is in cache)."""
        total = torch.zeros(W.shape[0], device=W.device)
        for i, lr in enumerate(lrs):
            total += self(W, b_final, step + i)
            adam.step([W.grad, b_final.grad], lr)
        if dims is not None:
            dims.copy_(dimensionality(W))
        return total


class EagerStep(GradientStep):
    """One step's batch and gradients in plain torch ops: runs on any device, no compiler."""

    def __init__(
        self,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
        batch_size: int,
        seed: int,
        data: str,
        model: str,
    ) -> None:
        self.feature_probability = feature_probability
        self.importance = importance
        self.batch_size = batch_size
        self.seed = seed
        self.data = data
        self.model = model
        if feature_probability.device.type == "cpu":
            _keep_freed_memory()

    def __call__(self, W: torch.Tensor, b_final: torch.Tensor, step: int) -> torch.Tensor:
        """Set W.grad and b_final.grad for the batch of `step`; return the (inst,) loss."""
        x = generate_batch(self.data, self.feature_probability, self.batch_size, self.seed, step)
        loss, dW, db = closed_form_grads(W, b_final, x.transpose(1, 2), self.importance, self.model)
        W.grad, b_final.grad = dW, db
        return loss


def uniform_batch(
    feature_probability: torch.Tensor, base: torch.Tensor, key: torch.Tensor, batch_size: int
) -> torch.Tensor:
    """`generate_batch("uniform", ...)` written to compile, feature-major: (inst feats batch).

    Element (i, f, b) hashes the counter generate_batch gives (i, b, f), so this is its batch
    transposed, bit for bit. feature_probability (inst feats); base = the batch's first counter,
    key = `seed_key(seed)`.
    """
    n_inst, n_feat = feature_probability.shape
    device = feature_probability.device

    def index(n: int, stride: int, axis: int) -> torch.Tensor:
        shape = [1, 1, 1]
        shape[axis] = n
        return (torch.arange(n, dtype=torch.int64, device=device) * stride).view(shape)

    counter = index(n_inst, batch_size * n_feat, 0) + index(n_feat, 1, 1)
    counter = counter + index(batch_size, n_feat, 2)
    u = uniform_from_counter(counter + base, key)
    return sparse_uniform(u, feature_probability[..., None])


def _uniform_step(
    W: torch.Tensor,
    b_final: torch.Tensor,
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    base: torch.Tensor,
    key: torch.Tensor,
    batch_size: int,
    model: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole step for uniform data: `closed_form_grads` of the batch `generate_batch` draws.

    base, key: 0-d int64 tensors (the batch's first counter and the seed's key), passed as
    tensors so that a new step or seed reuses the compiled graph instead of re-tracing it.
    """
    xT = uniform_batch(feature_probability, base, key, batch_size)
    grads = broadcast_grads if W.shape[1] * W.shape[2] <= _BROADCAST_MAX else closed_form_grads
    return grads(W, b_final, xT, importance, model)


# One compiled wrapper for the whole process: dynamo caches a graph per (shapes, model, device)
# on the function's code, so every later Trainer of an already seen shape reuses it (building a
# wrapper per Trainer would re-trace).
_compiled: list[Callable] = []
_compile_lock = threading.Lock()

# Fast paths found broken in this process: each is warned about once, then never tried again.
_failed = {"compiler": False, "kernel": False}


def _note_failure(path: str, error: str, instead: str) -> None:
    if not _failed[path]:
        _failed[path] = True
        warnings.warn(
            f"{error}; training with {instead} instead (slower, same results)",
            RuntimeWarning,
            stacklevel=3,
        )


def _compiled_step_fn() -> Callable:
    with _compile_lock:
        if not _compiled:
            _compiled.append(torch.compile(_uniform_step, dynamic=False, fullgraph=True))
        return _compiled[0]


class CompiledStep(GradientStep):
    """Uniform data: batch generation and gradients as one compiled graph (same batch, same math).

    Falls back to an `EagerStep` for good if compiling fails.
    """

    def __init__(
        self,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
        batch_size: int,
        seed: int,
        model: str,
    ) -> None:
        device = feature_probability.device
        self.feature_probability = feature_probability.contiguous()
        self.importance = importance.contiguous()
        self.batch_size = batch_size
        self.model = model
        self.n_per_stream = feature_probability.numel() * batch_size
        self._key = torch.tensor(seed_key(seed), dtype=torch.int64, device=device)
        self._base = torch.zeros((), dtype=torch.int64, device=device)
        self._fn: Callable | None = None  # built on the first call: importing dynamo takes ~1 s
        self._worked = False
        self._eager = EagerStep(feature_probability, importance, batch_size, seed, "uniform", model)
        self._fallback = _failed["compiler"]  # a FusedStep makes one even after the compiler failed

    def __call__(self, W: torch.Tensor, b_final: torch.Tensor, step: int) -> torch.Tensor:
        """Set W.grad and b_final.grad for the batch of `step`; return the (inst,) loss."""
        if self._fallback:
            return self._eager(W, b_final, step)
        self._base.fill_(counter_base(step, PRESENCE, self.n_per_stream))
        args = (W, b_final, self.feature_probability, self.importance, self._base, self._key)
        if self._worked:
            loss, dW, db = self._fn(*args, self.batch_size, self.model)
        else:
            try:
                self._fn = self._fn or _compiled_step_fn()
                loss, dW, db = self._fn(*args, self.batch_size, self.model)
            except Exception as error:  # any failure to compile means: run eager
                error_text = f"torch.compile failed ({type(error).__name__}: {error})"
                _note_failure("compiler", error_text, "the eager step")
                self._fallback = True
                return self._eager(W, b_final, step)
            self._worked = True
        W.grad, b_final.grad = dW, db
        return loss


class FusedStep(GradientStep):
    """The CPU step: the fused C++ kernel draws the batch, computes the gradients and takes Adam's
    update, several steps per call (same batches, same math). The kernel is built on the first
    call (~4 s, once per machine), in the training thread rather than wherever the step was made;
    if it cannot be built, the compiled step (uniform data) or the eager step takes over for
    good, with one warning.
    """

    def __init__(
        self,
        feature_probability: torch.Tensor,
        importance: torch.Tensor,
        batch_size: int,
        seed: int,
        data: str,
        model: str,
    ) -> None:
        self.feature_probability = feature_probability.contiguous()
        self.importance = importance.contiguous()
        self.batch_size = batch_size
        self.seed = seed
        self.data = data
        self.model = model
        self.threads = torch.get_num_threads()  # the kernel's own, whatever torch's are later
        self._instead: GradientStep | None = None  # the step taking over if the kernel fails

    def _kernel_ready(self) -> bool:
        if self._instead is not None:
            return False
        error = fused_cpu.kernel_error()
        if error is None:
            return True
        args = (self.feature_probability, self.importance, self.batch_size, self.seed)
        if self.data == "uniform" and compiler_available(self.feature_probability.device):
            self._instead, instead = CompiledStep(*args, self.model), "the torch.compile step"
        else:
            self._instead, instead = EagerStep(*args, self.data, self.model), "the eager step"
        _note_failure("kernel", f"the fused CPU kernel is unavailable ({error})", instead)
        return False

    @property
    def torch_threads(self) -> int | None:
        """Intra-op threads torch should use around this step, or None: as is.

        One with the kernel: it starts its own threads, and torch's parallel regions over the
        few small tensors left to it (the log's reductions) cost more in barriers than they save,
        and stall whenever another thread (the app's UI) holds a core.
        """
        return 1 if self._kernel_ready() else None

    def __call__(self, W: torch.Tensor, b_final: torch.Tensor, step: int) -> torch.Tensor:
        if not self._kernel_ready():
            return self._instead(W, b_final, step)
        loss, W.grad, b_final.grad = fused_cpu.fused_grads(
            W, b_final, self.feature_probability, self.importance, self.data, self.seed, step,
            self.batch_size, self.model, self.threads,
        )  # fmt: skip
        return loss

    def train(
        self,
        W: torch.Tensor,
        b_final: torch.Tensor,
        adam: Adam,
        step: int,
        lrs: list[float],
        dims: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if not self._kernel_ready():
            return self._instead.train(W, b_final, adam, step, lrs, dims)
        return fused_cpu.fused_train(
            W, b_final, adam, self.feature_probability, self.importance, self.data, self.seed,
            step, lrs, self.batch_size, self.model, self.threads, dims=dims,
        )  # fmt: skip


@contextlib.contextmanager
def torch_threads_for(step_fn: GradientStep) -> Iterator[None]:
    """Within the block, this thread's torch intra-op threads are what `step_fn` wants around it
    (its `torch_threads`; unchanged if it has none). OpenMP keeps the count per thread, so an app's
    UI thread or a notebook's other work is unaffected, and the count is restored after."""
    n = getattr(step_fn, "torch_threads", None)
    previous = torch.get_num_threads()
    if n is None or n == previous:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def compiler_available(device: torch.device) -> bool:
    """Whether `make_step(compiled=None)` will try torch.compile on this device."""
    return device.type in ("cpu", "cuda") and not _failed["compiler"]


def make_step(
    feature_probability: torch.Tensor,
    importance: torch.Tensor,
    batch_size: int,
    seed: int,
    data: str,
    model: str,
    compiled: bool | None = None,
) -> GradientStep:
    """The fastest available step for these settings.

    compiled: None picks a fast path while one works: the fused kernel on the CPU (every data
    variant), else torch.compile on CPU/CUDA (uniform data); True asks for one (still falling
    back, with a warning, if it fails); False forces eager.
    """
    device = feature_probability.device
    cpu = device.type == "cpu"
    if compiled is None:
        compiled = (cpu and not _failed["kernel"]) or compiler_available(device)
    if compiled:
        if cpu and not _failed["kernel"]:
            return FusedStep(feature_probability, importance, batch_size, seed, data, model)
        if data == "uniform" and not _failed["compiler"]:
            return CompiledStep(feature_probability, importance, batch_size, seed, model)
    return EagerStep(feature_probability, importance, batch_size, seed, data, model)
