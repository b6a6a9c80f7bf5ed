"""Asked before leaving a run whose training no save holds: quitting, opening another session,
starting a new run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

QUIT, SAVE_AND_QUIT = "quit", "save"  # go on without saving; save first, then go on
BACKGROUND = "background"  # the run trains on in a headless process (engine.remote.background)


class QuitConfirmScreen(ModalScreen[str | None]):
    """Dismisses with "quit" (go on, unsaved steps lost), "save" (save, then go on),
    "background" (offered with `background=True`: keep training in a headless process) or None
    (stay). `doing` names what happens next: "quit", "open other-run", "start a new run".
    """

    BINDINGS = [
        Binding("y,q", "choose('quit')", "Discard", id="quit_confirm.quit"),
        Binding("s", "choose('save')", "Save first", id="quit_confirm.save"),
        Binding("escape,n", "choose(None)", "Stay", id="quit_confirm.stay"),
        Binding("b", "background", "Keep training", id="quit_confirm.background"),
    ]

    def __init__(self, unsaved_steps: int, doing: str = "quit", *, background: bool = False):
        super().__init__()
        self.unsaved_steps = unsaved_steps
        self.doing = doing
        self.background = background

    def compose(self) -> ComposeResult:
        go = "quit" if self.doing == "quit" else "discard them"
        with Vertical(id="quit-dialog") as dialog:
            dialog.border_title = f"{self.doing.capitalize()}?"
            keep = " · [b]b[/b] keep training in the background" if self.background else ""
            yield Static(
                f"{self.unsaved_steps:,} steps of training are not saved.\n"
                f"[b]y[/b] {go} · [b]s[/b] save and {self.doing}{keep} · [b]esc[/b] stay"
            )
            with Horizontal(id="quit-buttons"):
                yield Button("Stay", id="stay", compact=True)
                if self.background:
                    yield Button("Keep training", id="background", compact=True)
                yield Button(f"Save and {self.doing.split()[0]}", id="save", compact=True)
                yield Button(
                    "Quit" if self.doing == "quit" else "Discard",
                    id="quit",
                    variant="error",
                    compact=True,
                )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        choices = {"quit": QUIT, "save": SAVE_AND_QUIT, "background": BACKGROUND}
        self.dismiss(choices.get(event.button.id or ""))

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)

    def action_background(self) -> None:
        if self.background:
            self.dismiss(BACKGROUND)
