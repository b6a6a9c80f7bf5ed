"""Snapshots of the dashboard at the sizes people use, from a run trained before the app starts
(autostart=False), so every frame is the same. Update with:

    TEXTUAL_ANIMATIONS=none pytest tests/test_app_snapshots.py --snapshot-update
"""

from __future__ import annotations

import functools
import os

import pytest

from engine.config import preset
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp

os.environ["TEXTUAL_ANIMATIONS"] = "none"

pytestmark = pytest.mark.timeout(120)


@functools.cache
def trained_pentagon() -> Trainer:
    """Trained once and shared: with autostart=False no app changes it."""
    trainer = Trainer(preset("pentagon").replace(steps=2_000), compiled=False)
    trainer.run(until=300)
    return trainer


def trained_app() -> ToygeomApp:
    return ToygeomApp(trained_pentagon(), autostart=False)


async def charts_drawn(pilot) -> None:
    pilot.app.dashboard.redraw_all()
    await pilot.pause()


def test_dashboard_80x24(snap_compare) -> None:
    assert snap_compare(trained_app(), terminal_size=(80, 24), run_before=charts_drawn)


def test_dashboard_160x48_with_the_third_instance_selected(snap_compare) -> None:
    assert snap_compare(
        trained_app(), terminal_size=(160, 48), press=["j", "j"], run_before=charts_drawn
    )


def test_too_small_terminal(snap_compare) -> None:
    assert snap_compare(trained_app(), terminal_size=(50, 15), run_before=charts_drawn)
