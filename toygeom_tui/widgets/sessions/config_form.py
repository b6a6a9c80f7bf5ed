"""ConfigForm: one row per RunConfig field, parsed from text and validated exactly like the CLI.

Validation is `RunConfig(...)` itself: its ConfigError message starts with the field name, which
is how the offending row is found. Parse errors (e.g. "abc" for an integer) are caught earlier,
per row, since they never reach RunConfig.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Select, Static

from engine.config import (
    DATA,
    DEVICES,
    LR_SCHEDULES,
    MODELS,
    OPTIMIZERS,
    ConfigError,
    RunConfig,
    Spec,
)

SPEC_SYNTAX = (
    "a number (0.05); a list ([0.1, 0.2]); 'log B' or 'log B START END' for "
    "B^-linspace(START, END) (default 0 1); 'geometric R' for R^i"
)


def parse_spec(text: str) -> Spec:
    """A feature_probability/importance spec from its short text form (see SPEC_SYNTAX)."""
    words = text.replace(",", " ").split() if not text.lstrip().startswith("[") else []
    if not text.strip():
        raise ValueError("empty; write a number, a list, 'log B' or 'geometric R'")
    if words and words[0].lower() == "log":
        numbers = [_number(w) for w in words[1:]]
        if len(numbers) not in (1, 3):
            raise ValueError("write 'log BASE' or 'log BASE START END'")
        spec: dict[str, Any] = {"kind": "log", "base": numbers[0]}
        if len(numbers) == 3:
            spec |= {"start": numbers[1], "end": numbers[2]}
        return spec
    if words and words[0].lower() == "geometric":
        if len(words) != 2:
            raise ValueError("write 'geometric RATIO'")
        return {"kind": "geometric", "ratio": _number(words[1])}
    if text.lstrip().startswith("["):
        try:
            return _floats(ast.literal_eval(text.strip()))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise ValueError("not a list of numbers, e.g. [0.1, 0.2]") from None
    return _number(text.strip())


def format_spec(spec: Spec) -> str:
    """The short text form of a spec; `parse_spec(format_spec(s)) == s`."""
    if isinstance(spec, dict):
        if spec.get("kind") == "geometric":
            return f"geometric {_fmt(spec['ratio'])}"
        text = f"log {_fmt(spec['base'])}"
        if "start" in spec or "end" in spec:
            text += f" {_fmt(spec.get('start', 0.0))} {_fmt(spec.get('end', 1.0))}"
        return text
    if isinstance(spec, list | tuple):
        return "[" + ", ".join(format_spec(v) for v in spec) + "]"
    return _fmt(spec)


def _number(word: str) -> float:
    try:
        return float(word)
    except ValueError:
        raise ValueError(f"{word!r} is not a number") from None


def _floats(value: object) -> Any:
    if isinstance(value, list | tuple):
        return [_floats(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError("list entries must be numbers")


def _fmt(x: float) -> str:
    short = f"{x:g}"
    return short if float(short) == x else repr(x)


def _integer(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a whole number") from None


def _text(text: str) -> str:
    return text.strip()


# Text fields: how each is parsed, shown and explained. Choice fields are Selects.
PARSERS: dict[str, Callable[[str], Any]] = {
    "name": _text,
    "n_features": _integer,
    "d_hidden": _integer,
    "n_inst": _integer,
    "feature_probability": parse_spec,
    "importance": parse_spec,
    "batch_size": _integer,
    "steps": _integer,
    "lr": lambda t: _number(t.strip()),
    "weight_decay": lambda t: _number(t.strip()),
    "seed": _integer,
}
CHOICES: dict[str, tuple[str, ...]] = {
    "lr_schedule": LR_SCHEDULES,
    "optimizer": OPTIMIZERS,
    "model": MODELS,
    "data": DATA,
    "device": DEVICES,
}
FIELD_ORDER = (
    "name", "n_features", "d_hidden", "n_inst", "feature_probability", "importance",
    "batch_size", "steps", "lr", "lr_schedule", "optimizer", "weight_decay", "model", "data",
    "seed", "device",
)  # fmt: skip
HINTS = {
    "feature_probability": "per instance: " + SPEC_SYNTAX,
    "importance": "per feature: " + SPEC_SYNTAX,
    "weight_decay": "used by adamw only (adam takes none)",
    "device": "auto = CUDA when available, else CPU",
}


def _show(name: str, value: Any) -> str:
    return format_spec(value) if name in ("feature_probability", "importance") else str(value)


class ConfigForm(VerticalScroll):
    """Edits a RunConfig. After every edit it posts `Validated(config or None, errors by field)`."""

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; }
    ConfigForm .field-row { height: 1; }
    ConfigForm .field-row Label { width: 21; color: $text-muted; }
    ConfigForm .field-row Input, ConfigForm .field-row Select { width: 1fr; }
    ConfigForm .field-error { color: $text-error; padding-left: 21; display: none; }
    ConfigForm .field-error.-shown { display: block; }
    ConfigForm .field-row.-invalid Label { color: $text-error; text-style: bold; }
    """

    class Validated(Message):
        def __init__(self, config: RunConfig | None, errors: dict[str, str]) -> None:
            super().__init__()
            self.config = config
            self.errors = errors

    def __init__(self, initial: RunConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._initial = initial  # supplies fields the form does not show (dtype)
        self.config: RunConfig | None = initial
        self.errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        for name in FIELD_ORDER:
            value = getattr(self._initial, name)
            with Horizontal(classes="field-row", id=f"row-{name}"):
                yield Label(name)
                if name in CHOICES:
                    options = CHOICES[name] + (() if value in CHOICES[name] else (value,))
                    yield Select(
                        [(o, o) for o in options], value=value, allow_blank=False,
                        compact=True, id=f"field-{name}",
                    )  # fmt: skip
                else:
                    field_input = Input(
                        _show(name, value), compact=True, id=f"field-{name}",
                        placeholder=HINTS.get(name, ""), select_on_focus=False,
                        validate_on=(),  # the form owns "-invalid"; Input would clear it on blur
                    )  # fmt: skip
                    field_input.tooltip = HINTS.get(name)
                    yield field_input
            yield Static("", classes="field-error", id=f"error-{name}")

    def fill(self, config: RunConfig) -> None:
        """Show `config` in every row (a preset choice, say); validation follows the edits."""
        self._initial = config
        for name in FIELD_ORDER:
            value = getattr(config, name)
            if name in CHOICES:
                select = self.query_one(f"#field-{name}", Select)
                if value not in CHOICES[name]:
                    select.set_options([(o, o) for o in CHOICES[name] + (value,)])
                select.value = value
            else:
                self.query_one(f"#field-{name}", Input).value = _show(name, value)
        self.validate_fields()

    def read(self) -> tuple[RunConfig | None, dict[str, str]]:
        """Parse every row and build the RunConfig; errors map field name → reason."""
        values: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name in FIELD_ORDER:
            if name in CHOICES:
                values[name] = self.query_one(f"#field-{name}", Select).value
                continue
            try:
                values[name] = PARSERS[name](self.query_one(f"#field-{name}", Input).value)
            except ValueError as err:
                errors[name] = f"{name}: {err}"
        if errors:
            return None, errors
        try:
            return RunConfig(**(self._initial.to_dict() | values)), {}
        except ConfigError as err:
            # "feature_probability.base: ..." belongs to the feature_probability row.
            field = str(err).split(":", 1)[0].split(".", 1)[0]
            return None, {field if field in FIELD_ORDER else "": str(err)}
        except (RuntimeError, MemoryError):
            # Resolving a spec allocates n_inst × n_features; absurd sizes fail there.
            return None, {"n_features": "n_features: n_inst × n_features is too large to build"}

    def validate_fields(self) -> None:
        # Adam takes no weight decay (engine.optim): the field is shown, greyed, but not edited.
        optimizer = self.query_one("#field-optimizer", Select).value
        self.query_one("#field-weight_decay", Input).disabled = optimizer != "adamw"
        self.config, self.errors = self.read()
        for name in FIELD_ORDER:
            reason = self.errors.get(name, "")
            self.query_one(f"#row-{name}").set_class(bool(reason), "-invalid")
            self.query_one(f"#field-{name}").set_class(bool(reason), "-invalid")
            error_line = self.query_one(f"#error-{name}", Static)
            error_line.update(f"✗ {reason}" if reason else "")
            error_line.set_class(bool(reason), "-shown")
        self.post_message(self.Validated(self.config, self.errors))

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.validate_fields()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.validate_fields()
