"""Pick a saved session under the sessions folder (o): Enter opens it, Esc goes back."""

from __future__ import annotations

import time
from pathlib import Path

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from engine.session import SessionError, session_info


def describe(directory: Path) -> str:
    """One line about a session; an unreadable one says why (opening it will say it again)."""
    try:
        info = session_info(directory)
    except SessionError as err:
        return f"{escape(directory.name)}  [dim](unreadable: {escape(str(err))})[/dim]"
    saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.saved_at)) if info.saved_at else "?"
    loss = f"loss {info.final_loss:.3g}" if info.final_loss is not None else ""
    running = "  [b]running[/b]" if info.running else ""
    return (
        f"{escape(directory.name)}  [dim]{escape(info.config.name)} · step "
        f"{info.step:,}/{info.total_steps:,} · {loss} · saved {saved}[/dim]{running}"
    )


class SessionPickerScreen(ModalScreen[Path | None]):
    BINDINGS = [Binding("escape", "dismiss_none", "Back", id="session_picker.back")]

    def __init__(self, sessions_root: Path) -> None:
        super().__init__()
        self.sessions_root = sessions_root

    def compose(self) -> ComposeResult:
        folders = []
        if self.sessions_root.is_dir():
            folders = sorted(
                (p for p in self.sessions_root.iterdir() if p.is_dir()),
                key=lambda p: p.stat().st_mtime,
                reverse=True,
            )
        with Vertical(id="picker-dialog") as dialog:
            dialog.border_title = f"Open a session from {self.sessions_root}/"
            dialog.border_subtitle = "enter open · esc back"
            if folders:
                yield OptionList(*(Option(describe(p), id=str(p)) for p in folders), id="sessions")
            else:
                yield Static(
                    f"no saved sessions in {escape(str(self.sessions_root))}/ yet (s saves)"
                )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(Path(event.option.id or ""))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
