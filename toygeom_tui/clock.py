"""Durations as people read them on a progress line."""

from __future__ import annotations

import math


def clock(seconds: float) -> str:
    """m:ss or h:mm:ss; "--:--" when unknown (infinite, NaN or negative)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
