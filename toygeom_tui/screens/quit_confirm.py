"""Asked before quitting with training that no save holds."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

QUIT, SAVE_AND_QUIT = "quit", "save"


class QuitConfirmScreen(ModalScreen[str | None]):
    """Dismisses with "quit", "save" (save, then quit) or None (stay)."""

    BINDINGS = [
        Binding("y,q", "choose('quit')", "Quit", id="quit_confirm.quit"),
        Binding("s", "choose('save')", "Save and quit", id="quit_confirm.save"),
        Binding("escape,n", "choose(None)", "Stay", id="quit_confirm.stay"),
    ]

    def __init__(self, unsaved_steps: int) -> None:
        super().__init__()
        self.unsaved_steps = unsaved_steps

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-dialog") as dialog:
            dialog.border_title = "Quit?"
            yield Static(
                f"{self.unsaved_steps:,} steps of training are not saved.\n"
                "[b]y[/b]/[b]q[/b] quit · [b]s[/b] save and quit · [b]esc[/b] stay"
            )
            with Horizontal(id="quit-buttons"):
                yield Button("Stay", id="stay", compact=True)
                yield Button("Save and quit", id="save", compact=True)
                yield Button("Quit", id="quit", variant="error", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"quit": QUIT, "save": SAVE_AND_QUIT}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
