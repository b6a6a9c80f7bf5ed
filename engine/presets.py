"""The presets, as data: each one's name, one line about it, and the RunConfig fields it sets
(the others keep RunConfig's defaults). Torch-free, so the CLI can refuse an unknown name before
it loads torch (seconds); engine.config builds the RunConfigs from these."""

from __future__ import annotations

from typing import Any

# name -> (about, fields)
_PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "feature-geometry": ("the classic feature-geometry run (ARENA)", {}),
    "pentagon": (
        "5 features in 2 dims: the curriculum's first picture",
        {
            "n_features": 5,
            "d_hidden": 2,
            "n_inst": 8,
            "importance": {"kind": "geometric", "ratio": 0.9},
            "feature_probability": {"kind": "log", "base": 50.0},
        },
    ),
    "paper-uniform": (
        "the paper's figure: 400 features in 30 dims",
        {"n_features": 400, "d_hidden": 30},
    ),
    "sparsity-sweep": (
        "importance and sparsity varied together",
        {
            "n_features": 100,
            "d_hidden": 20,
            "n_inst": 10,
            "importance": {"kind": "log", "base": 100.0},
            "feature_probability": {"kind": "log", "base": 20.0},
        },
    ),
    "correlated": (
        "2 correlated pairs in 2 dims: they prefer orthogonality",
        {
            "n_features": 4,
            "d_hidden": 2,
            "n_inst": 5,
            "data": "correlated",
            "feature_probability": {"kind": "log", "base": 400.0, "start": 0.5, "end": 1.0},
        },
    ),
    "anticorrelated": (
        "2 anticorrelated pairs in 2 dims: they go antipodal",
        {
            "n_features": 4,
            "d_hidden": 2,
            "n_inst": 5,
            "data": "anticorrelated",
            "feature_probability": {"kind": "log", "base": 10.0, "start": 0.5, "end": 1.0},
        },
    ),
}

PRESET_ABOUT: dict[str, str] = {name: about for name, (about, _) in _PRESETS.items()}


def preset_fields(name: str) -> dict[str, Any]:
    """The fields preset `name` sets, its name included (a copy)."""
    return {"name": name, **_PRESETS[name][1]}


def unknown_preset(name: str) -> str | None:
    """The one-line error for a preset name that is not known, or None for a known one."""
    if name in _PRESETS:
        return None
    return f"preset: {name!r} is not known; choose one of {', '.join(_PRESETS)}"
