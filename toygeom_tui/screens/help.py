"""Every key of the app and the screen below, with what it does (? or F1)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def _key_display(keys: str) -> str:
    names = {"question_mark": "?", "plus": "+", "space": "space", "down": "↓", "up": "↑",
             "less_than_sign": "<", "greater_than_sign": ">", "left_square_bracket": "[",
             "right_square_bracket": "]", "left_curly_bracket": "{", "right_curly_bracket": "}",
             "slash": "/", "comma": ","}  # fmt: skip
    return " ".join(names.get(k.strip(), k.strip()) for k in keys.split(","))


def binding_rows(
    bindings: list[BindingType], keymap: dict[str, str] | None = None
) -> list[tuple[str, str, str]]:
    """(keys, description, id) for each Binding; `keymap` (id -> keys) overrides its keys."""
    keymap = keymap or {}
    rows = []
    for binding in bindings:
        if isinstance(binding, Binding) and binding.description:
            keys = keymap.get(binding.id or "", binding.key)
            rows.append((_key_display(keys), binding.description, binding.id or ""))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists the app's bindings and those of `screen` (the screen help was opened from)."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help", id="help.close"),
    ]

    def __init__(self, screen: Screen) -> None:
        super().__init__()
        self.below = screen

    def compose(self) -> ComposeResult:
        table = Table(box=None, expand=True, padding=(0, 1), show_edge=False)
        table.add_column("key", style="bold", no_wrap=True)
        table.add_column("action")
        table.add_column("id (for keymaps)", style="dim", no_wrap=True)
        sections = [
            (
                type(self.below).__name__.removesuffix("Screen").lower() or "screen",
                self.below.BINDINGS,
            ),
            ("everywhere", self.app.BINDINGS),
        ]
        for title, bindings in sections:
            table.add_row(f"[u]{title}[/u]", "", "")
            for row in binding_rows(bindings, getattr(self.app, "keymap", None)):
                table.add_row(*row)
            table.add_row("", "", "")
        table.add_row("ctrl+p", "command palette: every action by name", "")
        with VerticalScroll(id="help-dialog") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "esc to close"
            yield Static(table)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
