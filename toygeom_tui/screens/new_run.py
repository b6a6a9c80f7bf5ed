"""NewRunScreen: a modal form over RunConfig; dismisses with the config to start, or None."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from engine.config import PRESET_ABOUT, PRESETS, RunConfig
from toygeom_tui.widgets.config_form import ConfigForm


class NewRunScreen(ModalScreen[RunConfig | None]):
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
        status = self.query_one("#form-status", Static)
        if event.config is None:
            status.update("\n".join(f"✗ {reason}" for reason in event.errors.values()))
        else:
            status.update(
                f"✓ valid: {event.config.n_inst} instances × {event.config.n_features} "
                f"features in {event.config.d_hidden} dims, {event.config.steps} steps"
            )
        status.set_class(event.config is None, "-invalid")
        self.query_one("#start", Button).disabled = event.config is None

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
        if form.config is not None:
            self.dismiss(form.config)
        else:
            self.app.bell()

    def action_cancel(self) -> None:
        self.dismiss(None)
