"""The CUDA path: same batch, same gradients, same training as the CPU, and sessions move freely.

Skipped on machines without CUDA (every CI machine here); run on a GPU box with
`pytest tests/test_gpu.py`. The speed on a GPU comes from `toygeom-tui bench --only engine`,
which adds CUDA rows when a device is present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.config import RunConfig, resolve_feature_probability, resolve_importance
from engine.data import generate_batch
from engine.model import init_params
from engine.session import load_session, save_session
from engine.step import EagerStep, make_step
from engine.trainer import Trainer

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.timeout(600),
]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.cpu() - b.cpu()).norm() / b.cpu().norm())


def test_cuda_batch_is_the_cpu_batch_bit_for_bit(small_config: RunConfig) -> None:
    p = resolve_feature_probability(small_config)
    for step in (0, 7, 10**9):
        cpu = generate_batch("uniform", p, 256, seed=3, step=step)
        cuda = generate_batch("uniform", p.cuda(), 256, seed=3, step=step)
        assert torch.equal(cuda.cpu(), cpu)


@pytest.mark.parametrize("compiled", [False, True])
def test_cuda_step_equals_the_cpu_step(small_config: RunConfig, compiled: bool) -> None:
    cfg = small_config
    p, imp = resolve_feature_probability(cfg), resolve_importance(cfg)
    W, b = init_params(cfg.n_inst, cfg.d_hidden, cfg.n_features, seed=0)
    cpu_step = EagerStep(p, imp, cfg.batch_size, 1, "uniform", "relu")
    cuda_step = make_step(p.cuda(), imp.cuda(), cfg.batch_size, 1, "uniform", "relu", compiled)
    Wc, bc = W.cuda(), b.cuda()
    for step in (0, 5):
        loss_cpu, loss_cuda = cpu_step(W, b, step), cuda_step(Wc, bc, step)
        assert _relative(loss_cuda, loss_cpu) < 1e-5
        assert _relative(Wc.grad, W.grad) < 1e-5
        assert _relative(bc.grad, b.grad) < 1e-5


def test_cuda_training_matches_cpu_and_saves_for_a_cpu_box(
    small_config: RunConfig, tmp_path: Path
) -> None:
    cfg = small_config.replace(steps=300)
    cpu, cuda = Trainer(cfg), Trainer(cfg.replace(device="cuda"))
    assert cuda.W.device.type == "cuda"
    cpu.run(), cuda.run()
    loss_cpu, loss_cuda = cpu.history.metrics_arrays()[1][-1], cuda.history.metrics_arrays()[1][-1]
    assert abs(loss_cuda - loss_cpu).max() / loss_cpu.max() < 1e-3  # float noise over 300 steps
    save_session(cuda, tmp_path / "run")
    restored = load_session(tmp_path / "run", device="cpu")
    assert restored.W.device.type == "cpu" and restored.step == 300
    assert torch.equal(restored.W, cuda.W.cpu())
