"""The training loop: results, observers, control from another thread, divergence, history."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch
from einops import einsum

from engine.config import RunConfig, resolve_feature_probability
from engine.history import Series
from engine.reference import CurriculumLoop
from engine.trainer import DIVERGED, DONE, PAUSED, READY, STOPPED, TRAINING, Trainer


def test_a_run_finishes_and_learns(small_config: RunConfig) -> None:
    trainer = Trainer(small_config, compiled=False)
    states: list[str] = []
    trainer.on("state", lambda t: states.append(t.state))
    assert trainer.run() == DONE
    assert trainer.step == small_config.steps
    assert states == [TRAINING, DONE]
    steps, loss, frob = trainer.history.metrics_arrays()
    assert steps[-1] == small_config.steps and loss.shape[1] == small_config.n_inst
    assert (loss[-1] < loss[0]).all(), "every instance's loss went down"
    dims_steps, dims = trainer.history.dims_arrays()
    assert dims.shape[1:] == (small_config.n_inst, small_config.n_features) and len(dims_steps) > 1
    step, latest = trainer.history.latest_dims()
    assert step == dims_steps[-1] and (latest == dims[-1]).all()


def test_same_seed_same_weights_other_seed_other_weights(small_config: RunConfig) -> None:
    runs = []
    for seed in (0, 0, 1):
        trainer = Trainer(small_config.replace(seed=seed, steps=50), compiled=False)
        trainer.run()
        runs.append(trainer.W.clone())
    assert torch.equal(runs[0], runs[1])
    assert not torch.equal(runs[0], runs[2])


def test_run_until_then_extend(small_config: RunConfig) -> None:
    trainer = Trainer(small_config, compiled=False)
    assert trainer.run(until=50) == STOPPED and trainer.step == 50
    assert trainer.run() == DONE and trainer.step == small_config.steps
    trainer.extend(30)
    assert trainer.run() == DONE and trainer.step == small_config.steps + 30


def test_pause_single_step_resume_stop_from_another_thread(small_config: RunConfig) -> None:
    trainer = Trainer(small_config.replace(steps=10**9), compiled=False)
    trainer.pause()
    thread = threading.Thread(target=trainer.run)
    thread.start()
    _wait(lambda: trainer.state == PAUSED)
    assert trainer.step == 0
    logged: list[int] = []
    trainer.on("log", lambda t: logged.append(t.step))
    trainer.step_once()
    _wait(lambda: logged == [1])
    time.sleep(0.1)
    assert trainer.step == 1, "exactly one step while paused"
    trainer.resume()
    _wait(lambda: trainer.step > 20)
    trainer.stop()
    thread.join(5)
    assert not thread.is_alive() and trainer.state == STOPPED


def test_observers_see_every_log(small_config: RunConfig) -> None:
    trainer = Trainer(small_config.replace(steps=95), compiled=False, log_every=10)
    seen: list[int] = []
    trainer.on("log", lambda t: seen.append(t.step))
    trainer.run()
    assert seen == [*range(10, 91, 10), 95]


def test_divergence_is_detected_and_explained(small_config: RunConfig) -> None:
    trainer = Trainer(small_config, compiled=False)
    with torch.no_grad():
        trainer.W[2, 0, 0] = float("nan")
    assert trainer.run() == DIVERGED
    assert trainer.step <= trainer.log_every
    assert "instance 2" in trainer.error and "lr" in trainer.error


def test_history_stays_bounded_and_even() -> None:
    series = Series((1,), capacity=8)
    for step in range(1, 1001):
        series.offer(step, np.array([step], dtype=np.float32))
    assert series.count <= 8
    gaps = np.diff(series.steps)
    assert (gaps == gaps[0]).all(), "records stay evenly spaced"
    assert series.steps[-1] > 1000 - gaps[0]


def _wait(condition, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("timed out")
        time.sleep(0.005)


# -- the engine against the curriculum's plain autograd loop ------------------------------------
def eval_loss(W: torch.Tensor, b: torch.Tensor, cfg: RunConfig) -> torch.Tensor:
    """(inst,) loss of trained parameters on a large fresh batch."""
    torch.manual_seed(1234)
    p = resolve_feature_probability(cfg)[:, None]
    shape = (cfg.n_inst, 8192, cfg.n_features)
    x = torch.where(torch.rand(shape) <= p, torch.rand(shape), 0.0)
    h = einsum(W, x, "i h f, i b f -> i b h")
    out = torch.relu(einsum(W, h, "i h f, i b h -> i b f") + b[:, None])
    return ((x - out) ** 2).mean(dim=(1, 2))


@pytest.mark.parametrize("compiled", [False])
def test_loss_matches_the_plain_autograd_loop(small_config: RunConfig, compiled: bool) -> None:
    cfg = small_config.replace(steps=600)
    ours, theirs = [], []
    for seed in range(3):
        trainer = Trainer(cfg.replace(seed=seed), compiled=compiled)
        trainer.run()
        ours.append(eval_loss(trainer.W, trainer.b_final, cfg))
        loop = CurriculumLoop(cfg.replace(seed=seed))
        loop.run(cfg.steps)
        theirs.append(eval_loss(loop.W.detach(), loop.b_final.detach(), cfg))
    ours_mean, theirs_mean = torch.stack(ours).mean(0), torch.stack(theirs).mean(0)
    rel = ((ours_mean - theirs_mean).abs() / theirs_mean).max().item()
    assert rel < 0.1, f"per-instance loss differs by {rel:.1%}"
    assert not math.isclose(float(ours_mean[0]), float(ours_mean[-1])), "sparsity matters"


def test_run_sets_torch_threads_for_its_step_and_restores_them(small_config: RunConfig) -> None:
    """The fused kernel runs its own threads, so torch's drop to one while `run` trains."""
    before = torch.get_num_threads()
    trainer = Trainer(small_config.replace(steps=30))
    seen: list[int] = []
    trainer.on("log", lambda t: seen.append(torch.get_num_threads()))
    trainer.run()
    assert torch.get_num_threads() == before
    assert set(seen) == {getattr(trainer._step_fn, "torch_threads", None) or before}


def test_preparing_holds_until_the_first_step_returns(small_config: RunConfig) -> None:
    trainer = Trainer(small_config.replace(steps=1))
    assert trainer.preparing, "before any step, the first one still has to build the step"
    trainer.run()
    assert not trainer.preparing and trainer.step == 1


@pytest.mark.parametrize("compiled", [None, False])  # the fused step where it builds; eager
def test_each_dims_record_is_the_dimensionality_of_that_steps_weights(
    small_config: RunConfig, compiled: bool | None
) -> None:
    """The D_i the trainer records (computed by the fused kernel while W is in cache, or by
    `geometry.dimensionality` for the other steps) are those of the weights at that step."""
    from engine.geometry import dimensionality

    trainer = Trainer(small_config.replace(steps=60), log_every=10, dims_every=20,
                      compiled=compiled)  # fmt: skip
    seen: list[tuple[int, torch.Tensor]] = []
    trainer.on("dims", lambda _: seen.append((trainer.step, dimensionality(trainer.W))))
    trainer.run()
    steps, values = trainer.history.dims_arrays()
    assert list(steps) == [20, 40, 60] == [step for step, _ in seen]
    for recorded, (_, expected) in zip(values, seen, strict=True):
        np.testing.assert_allclose(recorded, expected.numpy(), rtol=1e-6, atol=1e-7)


def test_d_i_is_recorded_often_enough_early_in_a_long_run(small_config: RunConfig) -> None:
    """About 200 D_i records a run, but at least every 100 steps: a 200,000-step run's first
    jumps come in its first thousands of steps, where steps/200 would record none."""
    assert Trainer(small_config.replace(steps=10_000)).dims_every == 50
    assert Trainer(small_config.replace(steps=1_000)).dims_every == 10  # the log interval
    long = Trainer(small_config.replace(steps=200_000))
    long.run(until=1_000)
    assert list(long.history.dims_arrays()[0]) == list(range(100, 1_001, 100))


def test_the_rate_spans_seconds_so_a_hiccup_barely_moves_it(monkeypatch) -> None:
    """steps_per_second over the last ~3 s: a 300 ms stall moves it by a few percent. One
    sample a log, 64 of them, spanned 64 logs (45 ms of a pentagon run), and showed a stall
    like this one as a third off the rate. The clock is a fake one, 10 ms a reading (one a
    log), so nothing here depends on this machine's speed."""
    import engine.trainer as trainer_module
    from engine.config import preset

    clock = [0.0]

    def tick() -> float:
        clock[0] += 0.01
        return clock[0]

    monkeypatch.setattr(trainer_module, "perf_counter", tick)
    trainer = Trainer(preset("pentagon").replace(steps=100_000))
    rates: dict[str, float] = {}

    def observe(t: Trainer) -> None:
        if t.step == 5_000:
            rates["before"] = t.steps_per_second
            clock[0] += 0.3  # a 300 ms stall at this log
        elif t.step == 5_000 + 2 * t.log_every:
            rates["after"] = t.steps_per_second

    trainer.on("log", observe)
    trainer.run(until=5_100)
    assert rates["before"] > 0
    assert rates["after"] > 0.85 * rates["before"], rates
    # and a pause is no part of the rate: it restarts on resume
    trainer.pause()
    thread = threading.Thread(target=trainer.run, kwargs={"until": 6_000})
    thread.start()
    wait = time.monotonic() + 30
    while not trainer.paused or trainer.state != PAUSED:
        assert time.monotonic() < wait
        time.sleep(0.01)
    clock[0] += 60.0  # a minute paused
    trainer.resume()
    thread.join()
    assert trainer.steps_per_second > 0.85 * rates["before"]


def test_a_trainer_restored_at_its_target_is_done_and_its_observers_hear_it(small_config):
    trained = Trainer(small_config, compiled=False)
    trained.run()
    fresh = Trainer(small_config, compiled=False)
    heard: list[str] = []
    fresh.on("state", lambda t: heard.append(t.state))
    fresh.load_state_tensors(trained.state_tensors(), trained.step)
    assert fresh.state == DONE and heard == [DONE]
    fresh.load_state_tensors(trained.state_tensors(), trained.step - 10)  # short of its target
    assert fresh.state == READY and heard == [DONE, READY]
    assert fresh.run() == DONE and fresh.step == trained.step
