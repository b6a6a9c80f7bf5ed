"""RunConfig: one validated description of a training run, its presets, and TOML in/out.

`feature_probability` and `importance` are *specs*, kept as written so they round-trip through
TOML and JSON; `resolve_*` turns them into (inst, feats) tensors. A spec is one of:

- a number: the same value everywhere;
- a list of n_inst numbers (feature_probability) or n_features numbers (importance);
- a list of n_inst lists of n_features numbers;
- a table `{kind = "log", base = B, start = 0.0, end = 1.0}`: B^-linspace(start, end, n);
- a table `{kind = "geometric", ratio = r}`: r^i for i = 0..n-1;

where generators run over instances for feature_probability and over features for importance.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from engine.presets import PRESET_ABOUT, preset_fields, unknown_preset

Spec = float | int | list | dict

LR_SCHEDULES = ("constant", "linear", "cosine")
OPTIMIZERS = ("adam", "adamw")
MODELS = ("relu", "linear")
DATA = ("uniform", "normal", "correlated", "anticorrelated")
DTYPES = ("float32",)
DEVICES = ("auto", "cpu", "cuda")

# Largest sizes that make sense for a toy model; beyond these a typo is far likelier than intent.
_MAX_DIM = 1_000_000


class ConfigError(ValueError):
    """An invalid config value; the message is one line naming the field, value and the rule."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. Defaults are the classic feature-geometry experiment."""

    name: str = "feature-geometry"
    n_features: int = 200
    d_hidden: int = 20
    n_inst: int = 20
    feature_probability: Spec = field(default_factory=lambda: {"kind": "log", "base": 20.0})
    importance: Spec = 1.0
    batch_size: int = 1024
    steps: int = 10_000
    lr: float = 1e-3
    lr_schedule: str = "constant"
    optimizer: str = "adam"
    weight_decay: float = 0.01
    model: str = "relu"
    data: str = "uniform"
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "config") -> RunConfig:
        """Build from a plain mapping (TOML/JSON); unknown keys are rejected."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a table of settings, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        for key in data:
            if key not in known:
                raise ConfigError(
                    f"{key}: unknown setting in {where}; allowed: {', '.join(sorted(known))}"
                )
        return cls(**dict(data))

    def resolve_device(self) -> torch.device:
        """`auto` means CUDA when available, else CPU."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)


def _type_name(value: object) -> str:
    return type(value).__name__


def _check_int(name: str, value: object, low: int, high: int = _MAX_DIM) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: {value!r} is a {_type_name(value)}; expected an integer")
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is out of range; allowed {low}..{high}")


def _check_float(name: str, value: object, low: float, high: float, *, open_low: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name}: {value!r} is a {_type_name(value)}; expected a number")
    ok_low = value > low if open_low else value >= low
    if not (ok_low and value <= high) or value != value:
        bracket = "(" if open_low else "["
        raise ConfigError(f"{name}: {value} is out of range; allowed {bracket}{low}, {high}]")


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not allowed; choose one of {', '.join(choices)}")


def validate(cfg: RunConfig) -> None:
    """Raise ConfigError for the first invalid field."""
    if not isinstance(cfg.name, str) or not cfg.name.strip():
        raise ConfigError(f"name: {cfg.name!r} is not allowed; give a non-empty string")
    _check_int("n_features", cfg.n_features, 1)
    _check_int("d_hidden", cfg.d_hidden, 1)
    _check_int("n_inst", cfg.n_inst, 1)
    _check_int("batch_size", cfg.batch_size, 1)
    _check_int("steps", cfg.steps, 0, 10**12)
    _check_int("seed", cfg.seed, 0, 2**63 - 1)
    _check_float("lr", cfg.lr, 0.0, 10.0, open_low=True)
    _check_float("weight_decay", cfg.weight_decay, 0.0, 1.0, open_low=False)
    _check_choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    _check_choice("optimizer", cfg.optimizer, OPTIMIZERS)
    _check_choice("model", cfg.model, MODELS)
    _check_choice("data", cfg.data, DATA)
    _check_choice("dtype", cfg.dtype, DTYPES)
    if not isinstance(cfg.device, str) or not (
        cfg.device in DEVICES or cfg.device.startswith("cuda:")
    ):
        raise ConfigError(
            f"device: {cfg.device!r} is not allowed; choose auto, cpu, cuda or cuda:N"
        )
    if cfg.data in ("correlated", "anticorrelated") and cfg.n_features % 2:
        raise ConfigError(
            f"n_features: {cfg.n_features} is odd; {cfg.data} data pairs features, "
            "so use an even count"
        )
    _check_fits_in_memory(cfg)  # before resolving specs, which allocate (inst, feats) tensors
    p = resolve_feature_probability(cfg)
    if not bool(((p > 0) & (p <= 1)).all()):
        bad = p[~((p > 0) & (p <= 1))][0].item()
        raise ConfigError(f"feature_probability: {bad:g} is out of range; allowed (0, 1]")
    if cfg.data == "anticorrelated" and bool((p > 0.5).any()):
        bad = p[p > 0.5][0].item()
        raise ConfigError(
            f"feature_probability: {bad:g} is too large for anticorrelated pairs; allowed (0, 0.5]"
        )
    imp = resolve_importance(cfg)
    if not bool((torch.isfinite(imp) & (imp >= 0)).all()):
        bad = imp[~(torch.isfinite(imp) & (imp >= 0))][0].item()
        raise ConfigError(f"importance: {bad:g} is out of range; allowed finite values >= 0")


def _generated(name: str, spec: Mapping[str, Any], n: int) -> torch.Tensor:
    kind = spec.get("kind")
    allowed = {"log": {"kind", "base", "start", "end"}, "geometric": {"kind", "ratio"}}
    if kind not in allowed:
        raise ConfigError(f"{name}: kind {kind!r} is not allowed; choose log or geometric")
    extra = set(spec) - allowed[kind]
    if extra:
        raise ConfigError(
            f"{name}: unknown key {sorted(extra)[0]!r} for kind {kind!r}; "
            f"allowed: {', '.join(sorted(allowed[kind]))}"
        )
    if kind == "log":
        base = spec.get("base")
        start, end = spec.get("start", 0.0), spec.get("end", 1.0)
        _check_float(f"{name}.base", base, 0.0, 1e12, open_low=True)
        _check_float(f"{name}.start", start, -1e3, 1e3, open_low=False)
        _check_float(f"{name}.end", end, -1e3, 1e3, open_low=False)
        return float(base) ** -torch.linspace(float(start), float(end), n, dtype=torch.float64)
    ratio = spec.get("ratio")
    _check_float(f"{name}.ratio", ratio, 0.0, 1e3, open_low=True)
    return float(ratio) ** torch.arange(n, dtype=torch.float64)


def _resolve(name: str, spec: Spec, n_inst: int, n_features: int, axis: str) -> torch.Tensor:
    """(inst, feats) float32 from a spec; generators and 1-D lists run along `axis`."""
    n_axis = n_inst if axis == "inst" else n_features
    if isinstance(spec, bool):
        raise ConfigError(f"{name}: {spec!r} is a bool; expected a number, list or table")
    if isinstance(spec, int | float):
        values = torch.full((n_inst, n_features), float(spec), dtype=torch.float64)
    elif isinstance(spec, Mapping):
        line = _generated(name, spec, n_axis)
        values = _along(line, axis, n_inst, n_features)
    elif isinstance(spec, list | tuple):
        values = _from_list(name, spec, n_inst, n_features, axis)
    else:
        raise ConfigError(
            f"{name}: {spec!r} is a {_type_name(spec)}; expected a number, list or table"
        )
    return values.to(torch.float32)


def _along(line: torch.Tensor, axis: str, n_inst: int, n_features: int) -> torch.Tensor:
    if axis == "inst":
        return line[:, None].expand(n_inst, n_features).clone()
    return line[None, :].expand(n_inst, n_features).clone()


def _from_list(
    name: str, spec: list | tuple, n_inst: int, n_features: int, axis: str
) -> torch.Tensor:
    n_axis = n_inst if axis == "inst" else n_features
    axis_name = "n_inst" if axis == "inst" else "n_features"
    if spec and all(isinstance(row, list | tuple) for row in spec):
        if len(spec) != n_inst or any(len(row) != n_features for row in spec):
            raise ConfigError(
                f"{name}: a nested list must be n_inst × n_features = {n_inst} × {n_features}"
            )
        flat = [v for row in spec for v in row]
        _check_numbers(name, flat)
        return torch.tensor(flat, dtype=torch.float64).view(n_inst, n_features)
    if len(spec) != n_axis:
        raise ConfigError(
            f"{name}: list has {len(spec)} values; expected {axis_name} = {n_axis} "
            f"(or a nested n_inst × n_features list)"
        )
    _check_numbers(name, spec)
    return _along(torch.tensor(list(spec), dtype=torch.float64), axis, n_inst, n_features)


def _check_numbers(name: str, values: list | tuple) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise ConfigError(f"{name}: list entry {v!r} is a {_type_name(v)}; expected numbers")


def resolve_feature_probability(cfg: RunConfig) -> torch.Tensor:
    """(inst, feats) probability that each feature is present, float32."""
    return _resolve(
        "feature_probability", cfg.feature_probability, cfg.n_inst, cfg.n_features, "inst"
    )


def resolve_importance(cfg: RunConfig) -> torch.Tensor:
    """(inst, feats) weight of each feature in the loss, float32."""
    return _resolve("importance", cfg.importance, cfg.n_inst, cfg.n_features, "feats")


def estimated_bytes(cfg: RunConfig) -> int:
    """Peak memory of one training step: ~8 live (inst, batch, feats) float32 buffers + params."""
    activations = 8 * cfg.n_inst * cfg.batch_size * cfg.n_features * 4
    params = 6 * cfg.n_inst * (cfg.d_hidden + 1) * cfg.n_features * 4
    return activations + params


def available_bytes(device: torch.device) -> int:
    """Memory the run may use on `device` (free GPU memory, or physical RAM)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**40


def _check_fits_in_memory(cfg: RunConfig) -> None:
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"device: {cfg.device!r} is not available here (no CUDA); use auto or cpu"
        )
    device = cfg.resolve_device()
    need, have = estimated_bytes(cfg), available_bytes(device)
    if need > have:
        raise ConfigError(
            f"batch_size: n_inst × batch_size × n_features = {cfg.n_inst}×{cfg.batch_size}×"
            f"{cfg.n_features} needs ~{need / 2**30:.1f} GiB, more than the {have / 2**30:.1f} GiB "
            f"on {device.type}; make one of them smaller"
        )


# Built from engine.presets (plain data, torch-free): name -> RunConfig.
PRESETS: dict[str, RunConfig] = {name: RunConfig(**preset_fields(name)) for name in PRESET_ABOUT}


def preset(name: str) -> RunConfig:
    """The preset called `name`, or a ConfigError listing the known ones."""
    problem = unknown_preset(name)
    if problem is not None:
        raise ConfigError(problem)
    return PRESETS[name]


def read_toml(path: str | Path, what: str = "config") -> dict[str, Any]:
    """The table in a TOML file; ConfigError (one line naming the file) if it cannot be read."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read {what} ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None


def from_settings(settings: Mapping[str, Any], *, where: str = "config") -> RunConfig:
    """A config from settings as written: a `preset = "name"` key starts from that preset, the
    other keys override it, and the rest keep the defaults."""
    settings = dict(settings)
    base = preset(settings.pop("preset")) if "preset" in settings else RunConfig()
    return RunConfig.from_dict(base.to_dict() | settings, where=where)


def load_toml(path: str | Path) -> RunConfig:
    """Read a config from TOML. Keys may sit at the top level or under a [run] table.

    A `preset = "name"` key starts from that preset; the other keys override it.
    """
    data = read_toml(path)
    if "run" in data and isinstance(data["run"], dict) and len(data) == 1:
        data = data["run"]
    try:
        return from_settings(data, where=str(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def to_toml(cfg: RunConfig) -> str:
    """The config as TOML text that `load_toml` reads back to an equal config."""
    import tomli_w

    return tomli_w.dumps(cfg.to_dict())


def save_toml(cfg: RunConfig, path: str | Path) -> None:
    from engine.atomic import write_text_atomic

    write_text_atomic(Path(path), to_toml(cfg))
