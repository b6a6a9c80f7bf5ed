"""NewRunScreen: a modal form over RunConfig and a number of seeds; dismisses with the config
to start, a SeedsRun for several seeds of it, or None."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.config import PRESET_ABOUT, PRESETS, RunConfig
from toygeom_tui.widgets.sessions.config_form import ConfigForm


@dataclass(frozen=True)
class SeedsRun:
    """Train seeds config.seed … config.seed + seeds − 1 of `config` (a sweep over the seed)."""

    config: RunConfig
    seeds: int


class NewRunScreen(ModalScreen[RunConfig | SeedsRun | None]):
    """Pick a preset, edit any field; Start stays disabled until RunConfig accepts the values."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="new_run.cancel"),
        Binding("ctrl+s", "start", "Start", id="new_run.start", priority=True),
    ]

    DEFAULT_CSS = """
    NewRunScreen { align: center middle; }
    NewRunScreen #new-run-dialog {
        width: 100; max-width: 100%; height: 100%; max-height: 30;
        border: round $primary; background: $panel; padding: 0 1;
    }
    NewRunScreen #preset-row { height: 1; }
    NewRunScreen #preset-row Label { width: 21; text-style: bold; }
    NewRunScreen #preset { width: 1fr; }
    NewRunScreen #preset-about { color: $text-muted; padding-left: 21; margin-bottom: 1; }
    NewRunScreen #seeds-row { height: 1; }
    NewRunScreen #seeds-row Label { width: 21; text-style: bold; }
    NewRunScreen #seeds { width: 12; }
    NewRunScreen #seeds-about { color: $text-muted; padding-left: 1; }
    NewRunScreen #form-status { height: auto; max-height: 3; }
    NewRunScreen #form-status.-invalid { color: $text-error; }
    NewRunScreen #buttons { height: 1; align-horizontal: right; }
    NewRunScreen #buttons Button { margin-left: 2; }
    """

    def __init__(self, initial: RunConfig) -> None:
        super().__init__()
        self.initial = initial
        # A preset is only applied when the choice changes, so opening the form keeps `initial`.
        self._applied_preset = initial.name if initial.name in PRESETS else None
        self._form_result: tuple[RunConfig | None, dict[str, str]] = (None, {})

    def compose(self) -> ComposeResult:
        with Vertical(id="new-run-dialog") as dialog:
            dialog.border_title = "New run"
            dialog.border_subtitle = "ctrl+s/enter start · esc cancel"
            with Horizontal(id="preset-row"):
                yield Label("preset")
                yield Select(
                    [(name, name) for name in PRESETS], value=self._applied_preset or Select.NULL,
                    prompt="(custom)", compact=True, id="preset",
                )  # fmt: skip
            yield Static(PRESET_ABOUT.get(self.initial.name, ""), id="preset-about")
            yield ConfigForm(self.initial, id="config-form")
            with Horizontal(id="seeds-row"):
                yield Label("seeds")
                yield Input("1", id="seeds", compact=True)
                yield Static("N > 1: seeds seed…seed+N−1 as a sweep, one session each",
                             id="seeds-about")  # fmt: skip
            yield Static("", id="form-status")
            with Horizontal(id="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Start", id="start", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one(ConfigForm).validate_fields()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id != "preset" or event.value is Select.NULL:
            return
        name = str(event.value)
        self.query_one("#preset-about", Static).update(PRESET_ABOUT.get(name, ""))
        if name != self._applied_preset:
            self._applied_preset = name
            self.query_one(ConfigForm).fill(PRESETS[name])

    def on_config_form_validated(self, event: ConfigForm.Validated) -> None:
        self._form_result = (event.config, event.errors)
        self._show_status()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "seeds":
            self._show_status()

    def _show_status(self) -> None:
        config, errors = self._form_result
        problems = [f"✗ {reason}" for reason in errors.values()]
        if self._seeds() is None:
            text = self.query_one("#seeds", Input).value.strip()
            problems.append(f"✗ seeds: {text!r} is not a count of seeds; write 1 to 10000")
        status = self.query_one("#form-status", Static)
        if problems or config is None:
            status.update("\n".join(problems))
        else:
            status.update(
                f"✓ valid: {config.n_inst} instances × {config.n_features} "
                f"features in {config.d_hidden} dims, {config.steps} steps"
            )
        invalid = bool(problems) or config is None
        status.set_class(invalid, "-invalid")
        self.query_one("#start", Button).disabled = invalid

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_start()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.action_start()
        elif event.button.id == "cancel":
            self.action_cancel()

    def action_start(self) -> None:
        form = self.query_one(ConfigForm)
        form.validate_fields()  # the latest keystroke may not have been validated yet
        seeds = self._seeds()
        if form.config is None or seeds is None:
            self.app.bell()
        elif seeds == 1:
            self.dismiss(form.config)
        else:
            self.dismiss(SeedsRun(form.config, seeds))

    def _seeds(self) -> int | None:
        """The seeds field as a count from 1 to 10000, or None if it is not one."""
        text = self.query_one("#seeds", Input).value.strip()
        return int(text) if text.isdigit() and 1 <= int(text) <= 10_000 else None

    def action_cancel(self) -> None:
        self.dismiss(None)
