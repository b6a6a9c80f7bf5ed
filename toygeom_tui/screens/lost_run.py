"""Shown when an attached run's process is gone (state LOST): resume its last save, or stay."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

IN_BACKGROUND, HERE = "background", "here"  # resume headless and attach; resume in this app


class LostRunScreen(ModalScreen[str | None]):
    """Dismisses with "background", "here" or None (stay, looking at what was last seen)."""

    BINDINGS = [
        Binding("b", "choose('background')", "In the background", id="lost_run.background"),
        Binding("h", "choose('here')", "Here", id="lost_run.here"),
        Binding("escape,n", "choose(None)", "Stay", id="lost_run.stay"),
    ]

    def __init__(self, directory: str, step: int) -> None:
        super().__init__()
        self.directory, self.step = directory, step

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog") as dialog:
            dialog.border_title = "Run lost"
            yield Static(
                f"The process training {self.directory} is gone (last seen at step "
                f"{self.step:,}).\nResume it from its last save: [b]b[/b] in the background "
                "(and attach) · [b]h[/b] here · [b]esc[/b] stay"
            )
            with Horizontal(id="quit-buttons"):
                yield Button("Stay", id="stay", compact=True)
                yield Button("Resume here", id="here", compact=True)
                yield Button("Resume in the background", id="background", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"here": HERE, "background": IN_BACKGROUND}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
