"""Shared fixtures: small, fast configs that still show the model's behaviour."""

from __future__ import annotations

import os

import pytest

from engine.config import RunConfig

os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")


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
