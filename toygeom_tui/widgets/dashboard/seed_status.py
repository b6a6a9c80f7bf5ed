"""The dashboard's seeds line, when the run is one seed of a group (engine.seeds): which seed is
shown and how many of its siblings are done, and for the selected instance the best seed's
final loss (★ when it is the seed shown) and the worst seed's: the spread, min to max, as the
sweep screen's SeedSpread has it. One line that fits 80 columns, with the keys for the seeds."""

from __future__ import annotations

import math

from rich.markup import escape

from engine.seeds import SeedGroup
from toygeom_tui.series import ORANGE, rgb
from toygeom_tui.widgets.text_lines import TextLines

KEYS_HINT = "{ } b"  # the dashboard's default keys: previous / next seed, best seed


def seeds_line(group: SeedGroup, instance: int) -> str:
    """The line as markup, e.g. 'seed 1 · 2/3 seeds done · inst 4: best ★ seed 1 0.0165 · worst
    0.0177 · { } b' (★: the seed shown is the best here)."""
    counts = group.counts()
    done = f"{counts['done']}/{len(group.runs)} seeds done"
    for status in ("diverged", "failed"):
        if counts[status]:
            done += f", {counts[status]} {status}"
    one = group.spread[instance] if instance < len(group.spread) else None
    if one is None or one.best_seed is None:
        best = "no finished seed yet" if not group.spread else "no seed has a finite loss"
    else:
        star = f"[b {rgb(ORANGE)}]★[/] " if group.is_best(instance) else ""
        best = f"best {star}seed {escape(str(one.best_seed))} {_loss(one.best_loss)}"
        if one.seeds > 1:
            best += f" · worst {_loss(one.worst_loss)}"
    return (
        f"[b]seed {escape(str(group.seed))}[/b] · {done} · inst {instance}: {best}"
        f" · [dim]{escape(KEYS_HINT)}[/dim]"
    )


def _loss(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "–"


class SeedStatus(TextLines):
    def show(self, group: SeedGroup, instance: int) -> None:
        self.set_lines([seeds_line(group, instance)])
