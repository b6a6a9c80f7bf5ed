"""What to export (x): the geometry table as JSON or CSV, the history as CSV, or a screenshot."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

GEOMETRY_JSON, GEOMETRY_CSV, HISTORY_CSV, SCREENSHOT = (
    "geometry-json",
    "geometry-csv",
    "history-csv",
    "screenshot",
)
CHOICES = (
    (GEOMETRY_JSON, "j", "geometry table, JSON"),
    (GEOMETRY_CSV, "c", "geometry table, CSV"),
    (HISTORY_CSV, "h", "loss and ‖W‖²_F history, CSV"),
    (SCREENSHOT, "s", "screenshot of the dashboard, SVG"),
)


class ExportMenuScreen(ModalScreen[str | None]):
    """Dismisses with one of the choices above, or None."""

    BINDINGS = [
        Binding("escape,q,x", "choose(None)", "Back", id="export_menu.back"),
        *(
            Binding(key, f"choose('{choice}')", label, id=f"export_menu.{choice}", show=False)
            for choice, key, label in CHOICES
        ),
    ]

    def __init__(self, destination: str) -> None:
        super().__init__()
        self.destination = destination

    def compose(self) -> ComposeResult:
        with Vertical(id="export-dialog") as dialog:
            dialog.border_title = f"Export to {self.destination}/"
            dialog.border_subtitle = "enter or key · esc back"
            yield OptionList(
                *(Option(f"[b]{key}[/b]  {label}", id=choice) for choice, key, label in CHOICES)
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)
