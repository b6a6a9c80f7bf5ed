"""The new-run form: presets fill it, RunConfig's own validation marks fields, Start returns it."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.widgets import Button, Input, Select, Static

from engine.config import RunConfig, preset
from toygeom_tui.screens.new_run import NewRunScreen
from toygeom_tui.widgets.sessions.config_form import FIELD_ORDER, PARSERS, format_spec, parse_spec

UNSET = object()


class Host(App):
    """Opens the form on `initial` and keeps what it was dismissed with."""

    def __init__(self, initial: RunConfig) -> None:
        super().__init__()
        self.initial = initial
        self.result: object = UNSET

    def on_mount(self) -> None:
        self.push_screen(NewRunScreen(self.initial), self._keep)

    def _keep(self, result: RunConfig | None) -> None:
        self.result = result


async def _retype(pilot, field: str, text: str) -> Input:
    """Focus a field, clear it and type `text` key by key, as a user would."""
    field_input = pilot.app.screen.query_one(f"#field-{field}", Input)
    field_input.focus()
    field_input.value = ""
    await pilot.press(*text)
    await pilot.pause()
    return field_input


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("0.05", 0.05),
        ("[0.1, 0.2]", [0.1, 0.2]),
        ("log 20", {"kind": "log", "base": 20.0}),
        ("log 400 0.5 1", {"kind": "log", "base": 400.0, "start": 0.5, "end": 1.0}),
        ("geometric 0.9", {"kind": "geometric", "ratio": 0.9}),
    ],
)
def test_spec_text_round_trips(text: str, spec: object) -> None:
    assert parse_spec(text) == spec
    assert parse_spec(format_spec(spec)) == spec


@pytest.mark.parametrize("text", ["", "abc", "log", "log 1 2", "geometric", "[0.1, 'a']", "[1,"])
def test_bad_spec_text_says_why(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        parse_spec(text)


async def test_choosing_a_preset_fills_the_fields() -> None:
    app = Host(RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.screen.query_one("#preset", Select).value = "pentagon"
        await pilot.pause()
        field = {
            name: app.screen.query_one(f"#field-{name}", Input)
            for name in FIELD_ORDER
            if name in PARSERS
        }
        assert field["n_features"].value == "5"
        assert field["d_hidden"].value == "2"
        assert field["importance"].value == "geometric 0.9"
        assert field["feature_probability"].value == "log 50"
        assert "2 dims" in str(app.screen.query_one("#preset-about", Static).render())
        await pilot.press("ctrl+s")
        await pilot.pause()
    assert app.result == preset("pentagon")


async def test_negative_n_features_is_marked_and_start_stays_disabled() -> None:
    app = Host(RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        field_input = await _retype(pilot, "n_features", "-3")
        assert field_input.has_class("-invalid")
        assert app.screen.query_one("#row-n_features").has_class("-invalid")
        reason = str(app.screen.query_one("#form-status", Static).render())
        assert "n_features" in reason and "out of range" in reason
        assert app.screen.query_one("#start", Button).disabled
        await pilot.press("enter", "ctrl+s")  # neither may start an invalid run
        await pilot.pause()
        assert app.result is UNSET
        assert app.screen.query_one("#field-d_hidden", Input).has_class("-invalid") is False


async def test_unparsable_number_is_shown_on_its_own_row() -> None:
    app = Host(RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await _retype(pilot, "n_features", "abc")
        await _retype(pilot, "lr", "fast")
        for name in ("n_features", "lr"):
            error_line = str(app.screen.query_one(f"#error-{name}", Static).render())
            assert "is not a" in error_line
        assert app.screen.query_one("#start", Button).disabled
        await _retype(pilot, "n_features", "40")
        await _retype(pilot, "lr", "0.01")
        assert not app.screen.query_one("#start", Button).disabled


async def test_spec_errors_from_the_engine_map_to_their_field() -> None:
    app = Host(RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        field_input = await _retype(pilot, "feature_probability", "log -2")
        assert field_input.has_class("-invalid")
        assert "feature_probability.base" in str(app.screen.query_one("#form-status").render())


async def test_a_valid_edit_returns_the_config_on_enter() -> None:
    app = Host(preset("pentagon"))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await _retype(pilot, "n_features", "6")
        await _retype(pilot, "importance", "[1, 1, 1, 0.5, 0.5, 0.5]")
        await _retype(pilot, "steps", "500")
        await pilot.press("enter")
        await pilot.pause()
    assert app.result == preset("pentagon").replace(
        n_features=6, importance=[1.0, 1.0, 1.0, 0.5, 0.5, 0.5], steps=500
    )


async def test_escape_returns_none() -> None:
    app = Host(RunConfig())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await _retype(pilot, "n_features", "-3")
        await pilot.press("escape")
        await pilot.pause()
    assert app.result is None


async def test_weight_decay_is_editable_only_for_adamw() -> None:
    """Adam takes no weight decay (engine.optim): its field is greyed out, not silently ignored."""
    app = Host(RunConfig(optimizer="adam"))
    async with app.run_test(size=(100, 40)) as pilot:
        await pilot.pause()
        decay = app.screen.query_one("#field-weight_decay", Input)
        assert decay.disabled
        app.screen.query_one("#field-optimizer", Select).value = "adamw"
        await pilot.pause()
        assert not decay.disabled
        await _retype(pilot, "weight_decay", "0.05")
        app.screen.query_one("#field-optimizer", Select).value = "adam"
        await pilot.pause()
        assert decay.disabled and decay.value == "0.05", "kept for a switch back"
