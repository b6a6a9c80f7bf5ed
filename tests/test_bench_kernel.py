"""`bench.kernel_rate`: another revision's kernel is built from git and is the one that runs.

Speed itself is never asserted (timed tests on a shared machine are noise).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch
from cpu_flags import runs
from gradients import assert_relative, autograd_grads

from engine import fused_cpu
from engine.config import preset
from engine.data import generate_batch
from engine.model import init_params
from toygeom_tui.bench import kernel_rate

if shutil.which(fused_cpu.COMPILER) is None or fused_cpu.kernel_error() is not None:
    pytest.skip("no fused kernel on this machine", allow_module_level=True)
_inside_git = subprocess.run(
    ["git", "-C", str(fused_cpu.SOURCE.parent), "rev-parse", "HEAD"], capture_output=True
)
if _inside_git.returncode != 0:
    pytest.skip("not a git checkout", allow_module_level=True)


def test_a_revisions_kernel_runs_and_computes_the_gradients() -> None:
    library = kernel_rate.revision_kernel("HEAD")
    W, _ = init_params(3, 5, 38, seed=0)
    b_final = torch.full((3, 38), 0.05)
    p, importance = torch.full((3, 38), 0.3), torch.ones(3, 38)
    x = generate_batch("uniform", p, 40, 7, 3)
    got = fused_cpu.fused_grads(W, b_final, p, importance, "uniform", 7, 3, 40, "relu",
                                library=library)  # fmt: skip
    for a, b in zip(got, autograd_grads(W, b_final, x, importance, "relu"), strict=True):
        assert_relative(a, b, 1e-5)
    with pytest.raises(subprocess.CalledProcessError):
        kernel_rate.revision_kernel("no-such-revision")


@pytest.mark.skipif(not runs("x86-64-v3"), reason="this CPU cannot run an x86-64-v3 build")
def test_a_kernel_built_for_avx2_machines_runs_here_and_computes_the_gradients() -> None:
    """--march x86-64-v3 times the AVX2 build on an AVX-512 machine: it is that build that
    runs (8-lane vectors, AVX2's sparse path), and it computes the same gradients."""
    library = kernel_rate.revision_kernel("HEAD", march="x86-64-v3")
    assert library._name != kernel_rate.revision_kernel("HEAD")._name  # not the native build
    W, _ = init_params(3, 20, 38, seed=0)
    b_final = torch.full((3, 38), 0.05)
    p = torch.tensor([0.9, 0.3, 0.08])[:, None].expand(3, 38).contiguous()
    importance = torch.ones(3, 38)
    x = generate_batch("uniform", p, 40, 7, 3)
    got = fused_cpu.fused_grads(W, b_final, p, importance, "uniform", 7, 3, 40, "relu",
                                library=library)  # fmt: skip
    for a, b in zip(got, autograd_grads(W, b_final, x, importance, "relu"), strict=True):
        assert_relative(a, b, 1e-5)


def test_the_best_call_is_timed_on_every_wide_preset() -> None:
    assert kernel_rate.WIDE == ["feature-geometry", "paper-uniform", "sparsity-sweep"]
    cfg = preset("sparsity-sweep").replace(batch_size=64)
    seconds = kernel_rate.best_step_seconds(cfg, fused_cpu.load(), calls=2)
    assert 0 < seconds < 60
    # As the Trainer calls it: two threads, a log interval's steps a call.
    seconds = kernel_rate.best_step_seconds(cfg, fused_cpu.load(), calls=2, threads=2, steps=10)
    assert 0 < seconds < 60
