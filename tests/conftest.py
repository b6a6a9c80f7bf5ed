"""Shared fixtures: small, fast configs that still show the model's behaviour; `async def` tests
run under asyncio.run (the Textual Pilot tests), with no async plugin."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.session import load_session
from engine.trainer import Trainer

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run an `async def` test to completion in a fresh event loop."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture(autouse=True)
def no_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """The user's own config.toml (keymap) never reaches a test."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("config-home")))


class EagerTrainer(Trainer):
    def __init__(self, config: RunConfig, **options: object) -> None:
        options.setdefault("compiled", False)
        super().__init__(config, **options)


@pytest.fixture
def eager_app_trainers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trainers the app builds itself (new run, open, resume) use the eager step: compiling
    costs seconds and changes nothing the app shows. The app imports the engine where it uses
    it, so patching the engine's modules reaches it."""
    monkeypatch.setattr("engine.trainer.Trainer", EagerTrainer)
    monkeypatch.setattr(
        "engine.session.load_session", functools.partial(load_session, compiled=False)
    )


@pytest.fixture
def small_config() -> RunConfig:
    """20 features in 5 dims, 4 sparsities: trains in well under a second on CPU."""
    return RunConfig(
        name="small",
        n_features=20,
        d_hidden=5,
        n_inst=4,
        feature_probability={"kind": "log", "base": 20.0},
        batch_size=256,
        steps=200,
        device="cpu",
    )


TINY_TOML = """
name = "tiny"
n_features = 12
d_hidden = 4
n_inst = 3
batch_size = 128
device = "cpu"
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """A TOML config for a run that takes milliseconds a step."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture
def live_train(config_file: Path) -> Iterator[Callable[[Path, float], subprocess.Popen]]:
    """Start a real `toygeom-tui train` autosaving to a directory every `interval` seconds.

    Returns once its first save is on disk; every process still alive is killed afterwards.
    """
    procs: list[subprocess.Popen] = []

    def start(run: Path, interval: float) -> subprocess.Popen:
        command = [sys.executable, "-m", "toygeom_tui", "train", "--config", str(config_file),
                   "--steps", "100000000", "--eager", "--autosave", str(interval),
                   "--out", str(run)]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 120
        while not (run / "session.json").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "train never saved"
            time.sleep(0.05)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def seeds_made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real `train --seeds 3` sweep of 150-step pentagon runs, seeds 0 and 1 done, seed 2
    pending (trained once; tests change copies of it)."""
    from sweeps import seeds_sweep

    return seeds_sweep(tmp_path_factory.mktemp("seeds") / "p3", seeds=3, done=2)
