"""The time-travel keys (see toygeom_tui.time_travel), on every screen that shows geometry.

The actions are the app's: one `view_step` for all screens.
"""

from __future__ import annotations

from textual.binding import Binding

# Shared by every screen that shows geometry, so one keymap entry moves them all.
TIME_BINDINGS = [
    Binding("less_than_sign", "app.travel(-1)", "Earlier", key_display="<", id="time.earlier",
            tooltip="the geometry at the previous recorded step"),
    Binding("greater_than_sign", "app.travel(1)", "Later", key_display=">", id="time.later",
            tooltip="the geometry at the next recorded step (after the last: live)"),
    Binding("l", "app.back_to_live", "Live", id="time.live", show=False,
            tooltip="back to the live geometry"),
]  # fmt: skip
