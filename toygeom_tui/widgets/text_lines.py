"""A few fixed lines of Rich markup, drawn with Textual's line API, for text that changes on
every refresh tick (the dashboard's status lines).

A Static re-renders its whole content through Textual's visual pipeline on each update (1–4 ms
for two lines here, on the event loop that the training thread shares); this parses each changed
line's markup (~35 µs), cuts it to the width with an ellipsis, and repaints only that line.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget


class TextLines(Widget):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._markup: list[str] = []
        self._strips: dict[int, Strip] = {}  # drawn lines, for the size and theme in _drawn_for
        self._drawn_for: object = None

    def set_lines(self, lines: list[str]) -> None:
        """Show `lines` (markup, one per screen line); repaints the lines that changed."""
        old, self._markup = self._markup, list(lines)
        changed = [
            y
            for y in range(max(len(old), len(lines)))
            if y >= len(old) or y >= len(lines) or old[y] != lines[y]
        ]
        for y in changed:
            self._strips.pop(y, None)
        if changed and self.is_attached:
            width = self.size.width
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    @property
    def plain(self) -> str:
        """The lines as shown, without styles (and without the cut to the width)."""
        return "\n".join(Text.from_markup(line).plain for line in self._markup)

    def render_line(self, y: int) -> Strip:
        key = (self.size, self.app.theme)
        if key != self._drawn_for:
            self._strips.clear()
            self._drawn_for = key
        strip = self._strips.get(y)
        if strip is None:
            strip = self._strips[y] = self._draw(y)
        return strip

    def _draw(self, y: int) -> Strip:
        width, base = self.size.width, self.rich_style
        if y >= len(self._markup):
            return Strip.blank(width, base)
        text = Text.from_markup(self._markup[y], end="")
        text.truncate(width, overflow="ellipsis")
        segments = Segment.apply_style(text.render(self.app.console), base)
        return Strip(list(segments), text.cell_len).extend_cell_length(width, base)
