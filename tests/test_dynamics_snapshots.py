"""Snapshots of the dynamics screen (a constructed run with five known jumps), live and after
Enter on a jump travelled back to it. Update with:

    TEXTUAL_ANIMATIONS=none pytest tests/test_dynamics_snapshots.py --snapshot-update
"""

from __future__ import annotations

import functools
import os

import pytest
from trajectories import trainer_with_a_known_jump

from toygeom_tui.app import ToygeomApp

os.environ["TEXTUAL_ANIMATIONS"] = "none"

pytestmark = pytest.mark.timeout(600)

known_jump = functools.cache(trainer_with_a_known_jump)


def app() -> ToygeomApp:
    return ToygeomApp(known_jump(), autostart=False)


def test_dynamics_80x24(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(80, 24), press=["D"])


def test_dynamics_160x48_after_enter_on_the_last_jump(snap_compare) -> None:
    assert snap_compare(app(), terminal_size=(160, 48), press=["D", "j", "j", "j", "j", "enter"])
