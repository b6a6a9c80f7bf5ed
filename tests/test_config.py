"""RunConfig: presets, spec resolution, TOML round trip, and every validation error."""

from __future__ import annotations

import pytest
import torch

from engine.config import (
    PRESETS,
    ConfigError,
    RunConfig,
    load_toml,
    preset,
    resolve_feature_probability,
    resolve_importance,
    save_toml,
)


def test_default_is_the_feature_geometry_run() -> None:
    cfg = RunConfig()
    assert (cfg.n_features, cfg.d_hidden, cfg.n_inst) == (200, 20, 20)
    assert (cfg.batch_size, cfg.lr, cfg.steps, cfg.optimizer) == (1024, 1e-3, 10_000, "adam")
    p = resolve_feature_probability(cfg)
    assert p.shape == (20, 200)
    expected = 20.0 ** -torch.linspace(0, 1, 20, dtype=torch.float64)
    torch.testing.assert_close(p[:, 0].double(), expected, rtol=1e-6, atol=0)
    assert bool((p == p[:, :1]).all()), "one probability per instance"
    assert bool((resolve_importance(cfg) == 1).all())
    assert preset("feature-geometry") == cfg


def test_presets_have_the_documented_shapes() -> None:
    assert {
        "feature-geometry",
        "pentagon",
        "paper-uniform",
        "sparsity-sweep",
        "correlated",
        "anticorrelated",
    } <= set(PRESETS)
    pent = preset("pentagon")
    assert (pent.n_features, pent.d_hidden, pent.n_inst) == (5, 2, 8)
    torch.testing.assert_close(resolve_importance(pent)[0], 0.9 ** torch.arange(5.0))
    torch.testing.assert_close(
        resolve_feature_probability(pent)[:, 0], 50.0 ** -torch.linspace(0, 1, 8)
    )
    sweep = preset("sparsity-sweep")
    torch.testing.assert_close(resolve_importance(sweep)[3], 100.0 ** -torch.linspace(0, 1, 100))
    assert (preset("paper-uniform").n_features, preset("paper-uniform").d_hidden) == (400, 30)
    assert float(resolve_feature_probability(preset("anticorrelated")).max()) <= 0.5


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (0.25, torch.full((3, 4), 0.25)),
        ([0.1, 0.2, 0.3], torch.tensor([0.1, 0.2, 0.3])[:, None].expand(3, 4)),
        ([[0.5] * 4, [0.25] * 4, [1.0] * 4], torch.tensor([0.5, 0.25, 1.0])[:, None].expand(3, 4)),
        ({"kind": "log", "base": 4.0}, torch.tensor([1.0, 0.5, 0.25])[:, None].expand(3, 4)),
        ({"kind": "geometric", "ratio": 0.5}, torch.tensor([1.0, 0.5, 0.25])[:, None].expand(3, 4)),
    ],
)
def test_feature_probability_specs_run_over_instances(spec, expected) -> None:
    cfg = RunConfig(n_inst=3, n_features=4, feature_probability=spec)
    torch.testing.assert_close(resolve_feature_probability(cfg), expected.float())


def test_importance_generators_run_over_features() -> None:
    cfg = RunConfig(n_inst=2, n_features=3, importance={"kind": "geometric", "ratio": 0.9})
    torch.testing.assert_close(resolve_importance(cfg), torch.tensor([[1, 0.9, 0.81]] * 2))


def test_toml_round_trip(tmp_path) -> None:
    cfg = preset("sparsity-sweep").replace(seed=7, lr_schedule="cosine", optimizer="adamw")
    save_toml(cfg, tmp_path / "run.toml")
    assert load_toml(tmp_path / "run.toml") == cfg


def test_toml_preset_key_and_run_table(tmp_path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[run]\npreset = "pentagon"\nsteps = 123\n')
    assert load_toml(path) == preset("pentagon").replace(steps=123)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_features": -3}, "n_features"),
        ({"n_features": 0}, "n_features"),
        ({"d_hidden": 2.5}, "d_hidden"),
        ({"n_inst": "20"}, "n_inst"),
        ({"batch_size": True}, "batch_size"),
        ({"steps": -1}, "steps"),
        ({"seed": -1}, "seed"),
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"lr_schedule": "step"}, "lr_schedule"),
        ({"optimizer": "sgd"}, "optimizer"),
        ({"model": "gelu"}, "model"),
        ({"data": "zipf"}, "data"),
        ({"dtype": "float16"}, "dtype"),
        ({"device": "tpu"}, "device"),
        ({"name": ""}, "name"),
        ({"feature_probability": 0.0}, "feature_probability"),
        ({"feature_probability": 1.5}, "feature_probability"),
        ({"feature_probability": [0.5, 0.5]}, "feature_probability"),
        ({"feature_probability": {"kind": "zipf"}}, "feature_probability"),
        ({"feature_probability": {"kind": "log", "base": 20, "typo": 1}}, "feature_probability"),
        ({"feature_probability": {"kind": "log", "base": -2}}, "feature_probability.base"),
        ({"feature_probability": ["a"] * 20}, "feature_probability"),
        ({"feature_probability": "0.5"}, "feature_probability"),
        ({"importance": -1.0}, "importance"),
        ({"importance": {"kind": "geometric", "ratio": 0}}, "importance.ratio"),
        ({"data": "correlated", "n_features": 5}, "n_features"),
        ({"data": "anticorrelated", "feature_probability": 0.8}, "feature_probability"),
        ({"n_inst": 10_000, "batch_size": 100_000, "n_features": 100_000}, "batch_size"),
        ({"batch_size": 1_000_000, "n_features": 100_000}, "batch_size"),
    ],
)
def test_every_invalid_value_is_one_line_naming_the_field(changes, field) -> None:
    with pytest.raises(ConfigError) as err:
        RunConfig(**changes)
    message = str(err.value)
    assert message.startswith(f"{field}:"), message
    assert "\n" not in message


def test_unknown_keys_are_rejected(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("n_featurs = 10\n")
    with pytest.raises(ConfigError, match="n_featurs: unknown setting"):
        load_toml(path)


def test_unreadable_toml_is_one_line(tmp_path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("n_features = = 3\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_toml(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="preset: 'nope' is not known"):
        preset("nope")
