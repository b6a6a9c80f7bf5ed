"""The fused C++ kernel: for every data variant and both models, the same batch, gradients and
Adam steps as the torch paths, deterministic whatever the threads, resumable bit for bit; a
failed build falls back to the compiled or the eager step with one warning.

Skipped where the kernel is not meant to build (no g++, not x86-64 Linux); where it is meant
to, a failing build fails these tests.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from cpu_flags import runs
from gradients import assert_relative, assert_trains_like_eager, autograd_grads

import engine.step as step_module
from engine import fused_cpu
from engine.config import RunConfig
from engine.data import generate_batch
from engine.model import init_params
from engine.optim import Adam
from engine.session import load_session, save_session
from engine.step import CompiledStep, EagerStep, FusedStep, closed_form_grads, make_step
from engine.trainer import Trainer

if shutil.which(fused_cpu.COMPILER) is None:
    pytest.skip(f"no C++ compiler ({fused_cpu.COMPILER})", allow_module_level=True)
if not sys.platform.startswith("linux") or platform.machine() != "x86_64":
    pytest.skip("the kernel is built on x86-64 Linux only", allow_module_level=True)

compiles = pytest.mark.timeout(300)  # the first torch.compile is ~10–30 s cold


def _setup(
    n_inst: int, d_hidden: int, n_feat: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """W (inst hidden feats), a non-zero bias, p (inst feats) and a non-trivial importance."""
    W, _ = init_params(n_inst, d_hidden, n_feat, seed=0)
    generator = torch.Generator().manual_seed(1)
    b_final = 0.1 * torch.randn(n_inst, n_feat, generator=generator)
    p = torch.rand(n_inst, n_feat, generator=generator) * 0.6 + 0.02
    importance = 0.9 ** torch.arange(n_feat, dtype=torch.float32) * torch.ones(n_inst, 1)
    return W, b_final, p, importance


# Shapes off the kernel's blocks (4 rows, 4 hidden, 16-feature vectors, 32-row tiles), to leave
# every remainder: 6 or 38 features, batches 7, 101, 102, hidden 1, 3, 6; the default model; and
# the narrow layout's (hidden·feats ≤ 64): the presets' 2 × 5 and 2 × 4, batches off its 8-row
# vectors and 128-row tiles, and a shape it runs with sizes known only at run time.
SHAPES = [(3, 3, 38, 101), (3, 6, 38, 102), (3, 20, 38, 100), (2, 1, 6, 7), (2, 20, 200, 1024),
          (8, 2, 5, 1024), (5, 2, 4, 131), (3, 6, 10, 37)]  # fmt: skip
VARIANTS = ["uniform", "normal", "correlated", "anticorrelated"]


def _batch_args(data: str, p: torch.Tensor) -> torch.Tensor:
    """p fit for `data`: anticorrelated pairs allow at most 1/2."""
    return p.clamp(max=0.5) if data == "anticorrelated" else p


@pytest.fixture(scope="module", params=[8, 16], ids=["8-lanes", "16-lanes"])
def lanes_kernel(request: pytest.FixtureRequest) -> ctypes.CDLL:
    """The kernel built with TOYGEOM_LANES = 8 (AVX2's layout) or 16 (AVX-512's), whatever this
    CPU has: the compiler splits a 16-float vector in two where AVX-512 is missing, so both
    layouts' blocks, remainders and lane sums run on every machine."""
    return fused_cpu.load(defines=(f"TOYGEOM_LANES={request.param}",))


@pytest.mark.parametrize("model", ["relu", "linear"])
@pytest.mark.parametrize("data", VARIANTS)
@pytest.mark.parametrize(("n_inst", "d_hidden", "n_feat", "batch"), SHAPES)
def test_fused_gradients_equal_autograd_for_every_variant(
    lanes_kernel: ctypes.CDLL,
    model: str,
    data: str,
    n_inst: int,
    d_hidden: int,
    n_feat: int,
    batch: int,
) -> None:
    """The kernel, at either vector width, draws the batch itself, bit for bit generate_batch's:
    its gradients equal those of the very batch passed in, and autograd's on it."""
    if n_feat % 2 and data.endswith("correlated"):
        pytest.skip("pairs need an even feature count (the config says so)")
    W, b_final, p, importance = _setup(n_inst, d_hidden, n_feat)
    p = _batch_args(data, p)
    for seed, step in ((3, 11), (12345, 10**9)):  # counters past 2^32; products wrap
        x = generate_batch(data, p, batch, seed, step)
        args = (W, b_final, p, importance, data, seed, step, batch, model)
        passed = fused_cpu.fused_grads(*args, x=x, library=lanes_kernel)
        drawn = fused_cpu.fused_grads(*args, library=lanes_kernel)
        for a, b in zip(drawn, passed, strict=True):
            assert torch.equal(a, b), "the kernel's batch is generate_batch's"
        for a, b in zip(drawn, autograd_grads(W, b_final, x, importance, model), strict=True):
            assert_relative(a, b, 1e-5)
    reference = closed_form_grads(W, b_final, x.transpose(1, 2), importance, model)
    for a, b in zip(drawn, reference, strict=True):
        assert_relative(a, b, 2e-6)


@pytest.mark.parametrize("data", VARIANTS)
@pytest.mark.parametrize("march", ["x86-64", "x86-64-v3"])
def test_builds_for_older_cpus_draw_the_same_batches(march: str, data: str) -> None:
    """The plain-code (x86-64) and AVX2 (x86-64-v3) builds pack nonzeros and present normal
    uniforms without AVX-512's compress: on this CPU too they draw generate_batch's batch, and
    their gradients equal those of the batch passed in (sparse h included: their SPARSE_P is
    0.35, and _setup's p is 0.02–0.62)."""
    if not runs(march):
        pytest.skip(f"this CPU does not run {march} code")
    library = fused_cpu.load(march=march)
    W, b_final, p, importance = _setup(6, 20, 200)
    p = _batch_args(data, p)
    x = generate_batch(data, p, 101, 7, 3)
    args = (W, b_final, p, importance, data, 7, 3, 101, "relu")
    passed = fused_cpu.fused_grads(*args, x=x, library=library)
    drawn = fused_cpu.fused_grads(*args, library=library)
    for a, b in zip(drawn, passed, strict=True):
        assert torch.equal(a, b), f"the {march} build's batch is generate_batch's"
    for a, b in zip(drawn, autograd_grads(W, b_final, x, importance, "relu"), strict=True):
        assert_relative(a, b, 1e-5)


@pytest.fixture(
    scope="module",
    params=[(8, None), (16, None), (8, 0.5), (16, 0.5)],
    ids=["8-lanes", "16-lanes", "8-lanes-sparse-h-0.5", "16-lanes-sparse-h-0.5"],
)
def paths_kernel(request: pytest.FixtureRequest) -> ctypes.CDLL:
    """`lanes_kernel`'s builds, and each with sparse h up to mean p 0.5 (TOYGEOM_SPARSE_P; dW's
    sparse term stays below 0.15): there p 0.3 takes sparse h with dense dW, which with the
    CPU's own threshold (0.35 on AVX2, 0.15 with AVX-512) runs only on AVX2 CPUs."""
    lanes, sparse_p = request.param
    defines = (f"TOYGEOM_LANES={lanes}",)
    if sparse_p is not None:
        defines += (f"TOYGEOM_SPARSE_P={sparse_p}f",)
    return fused_cpu.load(defines=defines)


# The sparse path's reach, 4 hidden vectors, and one past it: 30 and 40 hidden at 8 lanes, 64
# and 80 at 16.
@pytest.mark.parametrize("d_hidden", [30, 40, 64, 80])
@pytest.mark.parametrize("data", ["uniform", "correlated"])
def test_rare_and_common_features_take_their_own_paths_to_the_same_gradients(
    paths_kernel: ctypes.CDLL, data: str, d_hidden: int
) -> None:
    """An instance with rare features (mean p below SPARSE_P: 0.35 on AVX2, 0.15 on AVX-512,
    0.5 in the sparse-h-0.5 builds) takes h = W x over its nonzeros, a rarer one (< 0.15) dW's term
    (W G) xᵀ too, one with common features the dense products: all equal autograd's on the very
    batch drawn, at either vector width. Of p 0.9, 0.08 and 0.3, the last takes sparse h alone
    in those builds (and on AVX2 CPUs), so every combination runs on every CPU."""
    W, b_final, _, importance = _setup(3, d_hidden, 50)
    p = torch.tensor([0.9, 0.08, 0.3])[:, None].expand(3, 50).contiguous()
    x = generate_batch(data, p, 300, 5, 2)
    drawn = fused_cpu.fused_grads(W, b_final, p, importance, data, 5, 2, 300, "relu",
                                  library=paths_kernel)  # fmt: skip
    for a, b in zip(drawn, autograd_grads(W, b_final, x, importance, "relu"), strict=True):
        assert_relative(a, b, 1e-5)


@compiles
def test_both_vector_widths_train_as_the_eager_step_whatever_the_threads(
    lanes_kernel: ctypes.CDLL,
) -> None:
    """4 steps of Adam in one call at either vector width end where the eager step ends, bit
    for bit the same at 1 and 3 threads."""
    cfg = RunConfig(n_inst=5, d_hidden=20, n_features=200, batch_size=300, seed=2)
    W0, b0, p, importance = _setup(5, 20, 200)
    lrs = [1e-2, 5e-3, 2e-3, 1e-3]
    want_W, want_b, _ = _eager_training(cfg, W0, b0, p, importance, lrs)
    results = []
    for threads in (1, 3):
        W, b_final = W0.clone(), b0.clone()
        adam = Adam({"W": W, "b_final": b_final}, cfg)
        fused_cpu.fused_train(W, b_final, adam, p, importance, "uniform", cfg.seed, 0, lrs, 300,
                              "relu", threads, library=lanes_kernel)  # fmt: skip
        results.append((W, b_final))
        torch.testing.assert_close(W, want_W, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b_final, want_b, rtol=1e-4, atol=1e-6)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def _division_probabilities() -> list[float]:
    """The default run's p, p whose reciprocals round worst (mantissas of all ones), powers of
    two, 1, the smallest normal and a subnormal, and 24 drawn log-uniformly from 1e-7 to 1."""
    default = (20.0 ** -torch.linspace(0, 1, 20)).tolist()
    all_ones = [(2 - 2**-23) * 2.0**-k for k in range(1, 25)]
    powers = [2.0**-k for k in range(0, 25, 3)]
    edges = [float(torch.finfo(torch.float32).tiny), 1e-40, 0.75, 1 / 3]
    drawn = torch.exp(
        torch.empty(24).uniform_(-16.1, 0, generator=torch.Generator().manual_seed(7))
    )
    return default + all_ones + powers + edges + drawn.tolist()


@pytest.mark.parametrize("divided", [False, True], ids=["fmas", "division"])
def test_the_batchs_division_by_p_is_torchs_for_every_uniform(
    lanes_kernel: ctypes.CDLL, divided: bool
) -> None:
    """The wide layout computes u/p with FMAs (or, on a Zen 4, a division): over all 2^24
    uniforms the kernel draws, for p where rounding is hardest and many more, the result is
    torch's, bit for bit, either way."""
    u = torch.arange(2**24, dtype=torch.float32) * 2.0**-24
    x = torch.empty_like(u)
    sparse = lanes_kernel.toygeom_sparse_uniform
    sparse.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p,
                       ctypes.c_int]  # fmt: skip
    for p in _division_probabilities():
        p32 = torch.tensor(p, dtype=torch.float32)
        sparse(u.data_ptr(), u.numel(), float(p32), x.data_ptr(), divided)
        expected = torch.where(u < p32, u / p32, torch.zeros(()))
        wrong = (x != expected).nonzero()
        assert wrong.numel() == 0, f"p = {float(p32)!r}: u = {u[wrong[0]].item()!r} differs"


@pytest.mark.parametrize(
    ("which", "name"),
    [(0, "log_one_minus"), (1, "cos_two_pi"), (2, "normal_magnitudes"), (3, "square_root")],
)
def test_the_kernels_normal_magnitudes_are_engine_datas_for_every_uniform(
    lanes_kernel: ctypes.CDLL, which: int, name: str
) -> None:
    """Normal magnitudes' log, cos and square root, op for op engine.data's, bit for bit: over all
    2^24 uniforms (the magnitudes: each u against every v in turn, each v against every u), the
    square root over [0, 34), where −2 ln(1 − u) lies."""
    from engine import data

    u = torch.arange(2**24, dtype=torch.float32) * 2.0**-24
    v = u.roll(2**23 + 12345)
    if name == "square_root":
        u = u * 34
    out = torch.empty_like(u)
    parts = lanes_kernel.toygeom_normal_parts
    parts.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p,
                      ctypes.c_int]  # fmt: skip
    parts(u.data_ptr(), v.data_ptr(), u.numel(), out.data_ptr(), which)
    function = getattr(data, name)
    expected = function(u, v) if name == "normal_magnitudes" else function(u)
    wrong = (out.view(torch.int32) != expected.view(torch.int32)).nonzero()
    assert wrong.numel() == 0, f"{name}: u = {u[wrong[0]].item()!r} differs"


def test_the_kernel_refuses_a_variant_it_does_not_know() -> None:
    W, b_final, p, importance = _setup(2, 2, 4)
    with pytest.raises(ValueError, match="pass others as x"):
        fused_cpu.fused_grads(W, b_final, p, importance, "lognormal", 0, 0, 16, "relu")


def _eager_training(
    cfg: RunConfig,
    W: torch.Tensor,
    b_final: torch.Tensor,
    p: torch.Tensor,
    importance: torch.Tensor,
    lrs: list[float],
) -> tuple[torch.Tensor, torch.Tensor, Adam]:
    """len(lrs) steps of the eager step and torch's fused Adam from copies of (W, b_final)."""
    W, b_final = W.clone(), b_final.clone()
    adam = Adam({"W": W, "b_final": b_final}, cfg)
    eager = EagerStep(p, importance, cfg.batch_size, cfg.seed, cfg.data, cfg.model)
    eager.train(W, b_final, adam, 0, lrs)
    return W, b_final, adam


@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
@pytest.mark.parametrize(
    ("data", "model", "d_hidden", "n_feat"),
    [("uniform", "relu", 2, 5), ("correlated", "linear", 2, 4), ("anticorrelated", "relu", 2, 4),
     ("normal", "relu", 5, 20), ("uniform", "linear", 20, 40)],
)  # fmt: skip
def test_fused_training_steps_adam_as_torch_does(
    optimizer: str, data: str, model: str, d_hidden: int, n_feat: int
) -> None:
    """Several steps with Adam's update in one call end where the eager step and torch's own fused
    Adam end, within float noise; the moments and the step count too."""
    cfg = RunConfig(n_inst=3, d_hidden=d_hidden, n_features=n_feat, batch_size=96, data=data,
                    model=model, optimizer=optimizer, weight_decay=0.05, seed=5,
                    feature_probability=0.3)  # fmt: skip
    W, b_final, p, importance = _setup(3, d_hidden, n_feat)
    p = _batch_args(data, p)
    lrs = [1e-2, 5e-3, 2e-3, 1e-3, 1e-3, 1e-3]
    want_W, want_b, want_adam = _eager_training(cfg, W, b_final, p, importance, lrs)
    W, b_final = W.clone(), b_final.clone()
    adam = Adam({"W": W, "b_final": b_final}, cfg)
    step = FusedStep(p, importance, cfg.batch_size, cfg.seed, data, model)
    loss = step.train(W, b_final, adam, 0, lrs[:2])
    loss += step.train(W, b_final, adam, 2, lrs[2:])  # continues where the first call stopped
    torch.testing.assert_close(W, want_W, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(b_final, want_b, rtol=1e-4, atol=1e-6)
    for name in adam.names:
        for key, value in adam.state[name].items():
            torch.testing.assert_close(value, want_adam.state[name][key], rtol=1e-3, atol=1e-9)
    assert adam.steps == 6
    assert loss.shape == (3,) and bool((loss > 0).all())


@pytest.mark.parametrize(
    ("d_hidden", "n_feat", "data"), [(20, 200, "uniform"), (2, 4, "correlated")]
)
def test_fused_results_are_deterministic_whatever_the_threads(
    d_hidden: int, n_feat: int, data: str
) -> None:
    cfg = RunConfig(n_inst=5, d_hidden=d_hidden, n_features=n_feat, batch_size=300, data=data)
    W0, b0, p, importance = _setup(5, d_hidden, n_feat)
    results = []
    for threads in (1, 2, 3, 7):
        W, b_final = W0.clone(), b0.clone()
        adam = Adam({"W": W, "b_final": b_final}, cfg)
        loss = fused_cpu.fused_train(W, b_final, adam, p, importance, data, 2, 777, [1e-3] * 3,
                                     300, "relu", threads)  # fmt: skip
        results.append((loss, W, b_final, adam.state["W"]["exp_avg_sq"]))
    for other in results[1:]:
        for a, b in zip(other, results[0], strict=True):
            assert torch.equal(a, b)


def test_dividing_or_not_the_kernel_trains_the_same_weights_bit_for_bit() -> None:
    """Uniform batches by division (as on a Zen 4) and by FMAs (every other CPU) are the same
    batches: builds forced each way train the default shape to identical weights and moments."""
    cfg = RunConfig(n_inst=4, d_hidden=20, n_features=200, batch_size=200)
    W0, b0, p, importance = _setup(4, 20, 200)
    results = []
    for divide in (0, 1):
        library = fused_cpu.load(defines=(f"TOYGEOM_DIVIDE={divide}",))
        assert library.toygeom_divides() == divide
        W, b_final = W0.clone(), b0.clone()
        adam = Adam({"W": W, "b_final": b_final}, cfg)
        loss = fused_cpu.fused_train(W, b_final, adam, p, importance, "uniform", 3, 50,
                                     [1e-3] * 3, 200, "relu", library=library)  # fmt: skip
        results.append((loss, W, b_final, adam.state["W"]["exp_avg_sq"]))
    for a, b in zip(*results, strict=True):
        assert torch.equal(a, b)


def test_the_kernel_says_what_it_runs_as_proc_cpuinfo_tells_it() -> None:
    """16-float vectors where the CPU has AVX-512, else 8; u/p by division on a Zen 4 (AMD,
    family 25, AVX-512) alone: read here from /proc/cpuinfo, in the kernel from CPUID."""
    with open("/proc/cpuinfo") as cpuinfo:
        fields = dict(line.split(":", 1) for line in cpuinfo.read().split("\n\n")[0].splitlines()
                      if ":" in line)  # fmt: skip
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    avx512 = "avx512f" in fields["flags"].split()
    zen4 = fields["vendor_id"] == "AuthenticAMD" and fields["cpu family"] == "25" and avx512
    lanes = 16 if avx512 else 8
    assert fused_cpu.describe() == f"{lanes}-float vectors, u/p by {'division' if zen4 else 'FMAs'}"


@pytest.mark.parametrize("model", ["relu", "linear"])
def test_make_step_takes_the_kernel_on_the_cpu_for_every_variant(model: str) -> None:
    W, b_final, p, importance = _setup(4, 5, 20)
    for data in VARIANTS:
        q = _batch_args(data, p)
        fused = make_step(q, importance, 256, seed=4, data=data, model=model)
        assert isinstance(fused, FusedStep)
        eager = EagerStep(q, importance, 256, 4, data, model)
        for step in (0, 9):
            got = (fused(W, b_final, step), W.grad, b_final.grad)
            want = (eager(W, b_final, step), W.grad, b_final.grad)
            for a, b in zip(got, want, strict=True):
                assert_relative(a, b, 2e-6)


@pytest.mark.parametrize(
    ("data", "model", "d_hidden", "n_feat"),
    [("uniform", "relu", 5, 20), ("uniform", "relu", 2, 5), ("correlated", "relu", 2, 4),
     ("anticorrelated", "linear", 2, 4), ("normal", "relu", 5, 20)],
)  # fmt: skip
def test_fused_training_matches_eager_and_is_deterministic(
    small_config: RunConfig, data: str, model: str, d_hidden: int, n_feat: int
) -> None:
    cfg = small_config.replace(steps=300, data=data, model=model, d_hidden=d_hidden,
                               n_features=n_feat, feature_probability=0.3)  # fmt: skip
    fast = assert_trains_like_eager(cfg, compiled=None)
    assert isinstance(fast._step_fn, FusedStep) and fast._step_fn._kernel_ready()


@pytest.mark.parametrize(
    ("d_hidden", "n_feat", "data"), [(5, 20, "uniform"), (2, 4, "anticorrelated")]
)
def test_resume_on_the_kernel_is_bit_exact(
    tmp_path: Path, small_config: RunConfig, d_hidden: int, n_feat: int, data: str
) -> None:
    """Stopped off a log boundary and resumed from the saved session: the very same run."""
    cfg = small_config.replace(steps=200, d_hidden=d_hidden, n_features=n_feat, data=data,
                               feature_probability=0.3, lr_schedule="cosine")  # fmt: skip
    straight = Trainer(cfg)
    straight.run()
    first = Trainer(cfg)
    first.run(until=107)
    save_session(first, tmp_path / "s")
    resumed = load_session(tmp_path / "s")
    assert isinstance(resumed._step_fn, FusedStep) and resumed.step == 107
    resumed.run()
    assert torch.equal(resumed.W, straight.W) and torch.equal(resumed.b_final, straight.b_final)
    for name, tensor in resumed.state_tensors().items():
        assert torch.equal(tensor, straight.state_tensors()[name]), name


def test_a_build_into_an_empty_cache_leaves_just_the_library(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_error", None)
    assert fused_cpu.kernel_error() is None
    built = list((tmp_path / "toygeom-tui").iterdir())
    assert len(built) == 1 and built[0].suffix == ".so", built  # no temporary file left over


def test_a_build_keeps_the_libraries_used_last_and_prunes_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Old builds (other versions of the source) do not pile up: a new build keeps itself and
    the KEEP_BUILDS − 1 used last; loading a cached library marks it used."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "toygeom-tui"
    cache.mkdir()
    old = [cache / f"fused_step-old{i:02d}.so" for i in range(fused_cpu.KEEP_BUILDS + 3)]
    for age, path in enumerate(old):
        path.write_bytes(b"an older build")
        os.utime(path, (1e9 - age, 1e9 - age))  # old[0] used last
    other = cache / "notes.txt"  # not a library: left alone
    other.write_text("mine")
    probe = cache / "fma_peak-old.so"  # another source's library: pruned among its own only
    probe.write_bytes(b"the bench's peak probe")
    os.utime(probe, (1, 1))
    os.utime(old[-1], None)  # a cached library used just now
    built = fused_cpu._build()
    kept = set(cache.glob("fused_step-*.so"))
    assert kept == {built, old[-1], *old[: fused_cpu.KEEP_BUILDS - 2]}
    assert other.exists() and probe.exists()
    assert fused_cpu._build() == built, "cached: found again, not rebuilt"


@pytest.mark.parametrize("march", ["x86-64-v3", "x86-64-v4"])
def test_the_kernel_compiles_for_avx2_and_for_avx512_machines(march: str, tmp_path: Path) -> None:
    """Each build takes the vector width and blocks of the CPU it is built for; the AVX-512 one
    cannot run on an AVX2 machine, but it must at least compile wherever it may be built."""
    flags = [f"-march={march}" if flag == "-march=native" else flag for flag in fused_cpu.FLAGS]
    out = tmp_path / "kernel.so"
    result = subprocess.run(
        [fused_cpu.COMPILER, *flags, "-o", str(out), str(fused_cpu.SOURCE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert out.stat().st_size > 0


@compiles
def test_a_failing_build_falls_back_to_the_compiled_step_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_config: RunConfig
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no library cached: it must build
    monkeypatch.setattr(fused_cpu, "COMPILER", str(tmp_path / "no-such-g++"))
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_error", None)
    monkeypatch.setitem(step_module._failed, "kernel", False)
    cfg = small_config.replace(steps=50)
    trainer = Trainer(cfg)
    with pytest.warns(RuntimeWarning, match="fused CPU kernel is unavailable"):
        trainer.run()
    eager = Trainer(cfg, compiled=False)
    eager.run()
    torch.testing.assert_close(trainer.W, eager.W, rtol=0, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: later runs stay quiet
        W, b_final, p, importance = _setup(4, 5, 20)
        step = make_step(p, importance, 256, 0, "uniform", "relu")
        assert isinstance(step, CompiledStep)
        step(W, b_final, 0)


def test_without_any_compiler_every_variant_still_trains(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_config: RunConfig
) -> None:
    """No g++ (so no kernel and no torch.compile on the CPU): the eager step, one warning."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(fused_cpu, "COMPILER", str(tmp_path / "no-such-g++"))
    monkeypatch.setattr(fused_cpu, "_library", None)
    monkeypatch.setattr(fused_cpu, "_error", None)
    monkeypatch.setitem(step_module._failed, "kernel", False)
    monkeypatch.setitem(step_module._failed, "compiler", True)  # as torch.compile fails there
    cfg = small_config.replace(steps=40, data="correlated", feature_probability=0.3)
    trainer = Trainer(cfg)
    with pytest.warns(RuntimeWarning, match="fused CPU kernel is unavailable.*the eager step"):
        assert trainer.run() == "done"
    eager = Trainer(cfg, compiled=False)
    eager.run()
    assert torch.equal(trainer.W, eager.W), "the eager step itself took over"


@pytest.mark.parametrize(("d_hidden", "n_feat"), [(2, 5), (20, 200), (3, 38)])
def test_the_kernels_dims_are_the_dimensionality_of_the_final_weights(
    lanes_kernel: ctypes.CDLL, d_hidden: int, n_feat: int
) -> None:
    """D_i from the kernel after its last step: geometry.dimensionality's to rounding, both
    layouts, both vector widths; a zero column (lr 0 keeps it) gives exactly 0, not NaN."""
    from engine.geometry import dimensionality

    cfg = RunConfig(n_inst=3, d_hidden=d_hidden, n_features=n_feat, batch_size=64, seed=4)
    W, b_final, p, importance = _setup(3, d_hidden, n_feat)
    for lrs in ([1e-2, 1e-2, 1e-2], [0.0]):
        if lrs == [0.0]:
            W[1, :, 2] = 0
        adam = Adam({"W": W, "b_final": b_final}, cfg)
        dims = torch.full((3, n_feat), math.nan)
        fused_cpu.fused_train(W, b_final, adam, p, importance, "uniform", 4, 0, lrs, 64, "relu",
                              library=lanes_kernel, dims=dims)  # fmt: skip
        torch.testing.assert_close(dims, dimensionality(W), rtol=1e-6, atol=1e-7)
    assert dims[1, 2] == 0
