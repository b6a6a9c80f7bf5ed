"""Asked before leaving a run whose training no save holds: quitting, opening another session,
starting a new run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

QUIT, SAVE_AND_QUIT = "quit", "save"  # go on without saving; save first, then go on


class QuitConfirmScreen(ModalScreen[str | None]):
    """Dismisses with "quit" (go on, unsaved steps lost), "save" (save, then go on) or None (stay).

    `doing` names what happens next: "quit", "open other-run", "start a new run".
    """

    BINDINGS = [
        Binding("y,q", "choose('quit')", "Discard", id="quit_confirm.quit"),
        Binding("s", "choose('save')", "Save first", id="quit_confirm.save"),
        Binding("escape,n", "choose(None)", "Stay", id="quit_confirm.stay"),
    ]

    def __init__(self, unsaved_steps: int, doing: str = "quit") -> None:
        super().__init__()
        self.unsaved_steps = unsaved_steps
        self.doing = doing

    def compose(self) -> ComposeResult:
        go = "quit" if self.doing == "quit" else "discard them"
        with Vertical(id="quit-dialog") as dialog:
            dialog.border_title = f"{self.doing.capitalize()}?"
            yield Static(
                f"{self.unsaved_steps:,} steps of training are not saved.\n"
                f"[b]y[/b] {go} · [b]s[/b] save and {self.doing} · [b]esc[/b] stay"
            )
            with Horizontal(id="quit-buttons"):
                yield Button("Stay", id="stay", compact=True)
                yield Button(f"Save and {self.doing.split()[0]}", id="save", compact=True)
                yield Button(
                    "Quit" if self.doing == "quit" else "Discard",
                    id="quit",
                    variant="error",
                    compact=True,
                )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"quit": QUIT, "save": SAVE_AND_QUIT}.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
