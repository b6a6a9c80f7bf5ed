"""SeedSpread: for the configuration under the sweep table's cursor, each instance's best seed,
its final loss, and the worst seed's, so one seed stuck in a worse optimum stands out (an
instance where no seed has a finite loss shows dashes)."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.sweep import InstanceSeeds
from toygeom_tui.series import ORANGE, rgb


class SeedSpread(Static):
    def show(self, spread: Sequence[InstanceSeeds], label: str) -> None:
        if not spread:
            self.update(Text(f"{label}: no finished seeds yet", style="dim"))
            return
        table = Table(box=None, padding=(0, 1), expand=True, title=label, title_justify="left")
        for header in ("inst", "best seed", "its loss", "worst seed's"):
            table.add_column(header, justify="right", no_wrap=True)
        for one in spread:
            if one.best_seed is None:
                table.add_row(str(one.instance), "–", "–", "–")
                continue
            table.add_row(
                str(one.instance),
                Text(f"★ {one.best_seed}", style=f"bold {rgb(ORANGE)}"),
                f"{one.best_loss:.4g}",
                f"{one.worst_loss:.4g}",
            )
        self.update(table)
