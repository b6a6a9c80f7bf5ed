"""The app's first screen while its run is being made: what is opening, and what it waits on.

Importing torch alone takes seconds on a slow box, so the app paints this first (it needs only
Textual) and makes the run on a worker; the dashboard replaces it once the run is there.
"""

from __future__ import annotations

import time

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Static


class StartScreen(Screen):
    """`what`: the run being opened ("a new run: pentagon", a session's folder). `stage(text)`
    names the step under way; the line shows it with the seconds spent so far."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what
        self.stage_text = "loading PyTorch and the engine"
        self.started = time.monotonic()

    def compose(self) -> ComposeResult:
        with Vertical(id="start-box") as box:
            box.border_title = "toygeom-tui"
            yield Static(f"opening {self.what}", id="start-what")
            yield Static(self._line(), id="start-stage")
            yield Static("[dim]q quits[/dim]", id="start-hint")

    def on_mount(self) -> None:
        self._ticking = self.set_interval(0.1, self._tick)

    def on_screen_suspend(self) -> None:  # the run's screen has replaced this one for good
        self._ticking.stop()

    def stage(self, text: str) -> None:
        self.stage_text = text
        self._tick()

    def _tick(self) -> None:
        self.query_one("#start-stage", Static).update(self._line())

    def _line(self) -> str:
        return f"{self.stage_text}… {time.monotonic() - self.started:.1f} s"
