"""PartnersPanel: the selected feature's overlapping partners and its geometry component.

Cosines are signed: −1 is an antipodal partner (a digon), +1 a duplicate direction. Sign is
shown by the number itself and by colour (blue negative, orange positive), never colour alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from engine.geometry import EDGE_THRESHOLD, FeatureGeometry

NEGATIVE, POSITIVE = "#4393c3", "#e69f00"  # the heatmap's blue, Okabe–Ito orange
MAX_MEMBERS = 40


def signed(value: float, digits: int = 3) -> Text:
    text = f"{value:+.{digits}f}".replace("-", "−")
    return Text(text, style=NEGATIVE if value < 0 else POSITIVE if value > 0 else "")


class PartnersPanel(Static):
    """Shows one feature: its measures, partners (cosine, dot, projection), component members."""

    # A fixed height: an auto height would re-layout the whole screen on every cursor move.
    DEFAULT_CSS = "PartnersPanel { height: 10; padding: 0 1; }"

    def show(self, feature: FeatureGeometry | None, features: Sequence[FeatureGeometry]) -> None:
        """`features` is the whole instance (for the other members of the component)."""
        if feature is None:
            self.update(Text("no feature selected · j/k to move, d to show dead features",
                             style="dim"), layout=False)  # fmt: skip
            return
        summary = Text.assemble(
            (f"feature {feature.index}", "bold"),
            f"  ‖W_i‖ {feature.norm:.3f}  D_i {feature.dimensionality:.3f}"
            f"  ≈ {feature.nearest_fraction} (Δ {feature.fraction_distance:.3f})"
            f"  {feature.configuration}  interference {feature.interference:.3f}",
        )
        partners = Table(box=None, padding=(0, 1), show_edge=False, expand=False)
        for name in ("partner", "cos", "dot", "proj"):
            partners.add_column(name, justify="right", header_style="bold dim")
        for p in feature.partners:
            partners.add_row(str(p.index), signed(p.cosine), signed(p.dot), signed(p.projection))
        if not feature.partners:
            partners.add_row("none", "", "", "")
        members = sorted(
            f.index
            for f in features
            if f.component == feature.component and f.index != feature.index
        )
        shown = ", ".join(map(str, members[:MAX_MEMBERS]))
        if len(members) > MAX_MEMBERS:
            shown += f", … ({len(members) - MAX_MEMBERS} more)"
        if feature.component < 0:
            component = Text("not represented: in no component", style="dim")
        else:
            component = Text.assemble(
                (f"component {feature.component}", "bold"),
                f" ({feature.component_size} features in {feature.component_rank} dim"
                f"{'s' * (feature.component_rank != 1)})"
                if feature.component_size > 1 else "",
                " · with: ",
                shown or f"none (no represented feature overlaps it past {EDGE_THRESHOLD:g})",
            )  # fmt: skip
        self.update(Group(summary, partners, component), layout=False)
