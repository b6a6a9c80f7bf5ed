"""A few fixed lines of Rich markup, drawn with Textual's line API, for text that changes on
every refresh tick (the dashboard's status lines).

A Static re-renders its whole content through Textual's visual pipeline on each update (1–4 ms
for two lines here, on the event loop that the training thread shares); this parses each changed
line's markup (~35 µs), cuts it to the width with an ellipsis, and repaints only that line.

A line may come in several forms, longest first: the first whose text fits the width is drawn,
so an 80-column terminal gets a shorter line with the same facts rather than one whose end (the
ETA, say) is cut off.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

Line = str | Sequence[str]  # markup, or its forms from the longest to the shortest


def _fitting(forms: Sequence[str], width: int) -> tuple[str, Text]:
    for form in forms:
        text = Text.from_markup(form, end="")
        if text.cell_len <= width:
            break
    return form, text


def fitting(forms: Sequence[str], width: int) -> str:
    """The first of `forms` (markup) whose text fits in `width` cells, else the last."""
    return _fitting(forms, width)[0]


class TextLines(Widget):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._markup: list[tuple[str, ...]] = []
        self._strips: dict[int, Strip] = {}  # drawn lines, for the size and theme in _drawn_for
        self._drawn_for: object = None

    def set_lines(self, lines: Sequence[Line]) -> None:
        """Show `lines` (one per screen line: markup, or its forms longest first); repaints the
        lines that changed."""
        old = self._markup
        self._markup = [(line,) if isinstance(line, str) else tuple(line) for line in lines]
        changed = [
            y
            for y in range(max(len(old), len(lines)))
            if y >= len(old) or y >= len(self._markup) or old[y] != self._markup[y]
        ]
        for y in changed:
            self._strips.pop(y, None)
        if changed and self.is_attached:
            width = self.size.width
            self.refresh(*(Region(0, y, width, 1) for y in changed))

    @property
    def plain(self) -> str:
        """The lines in full (each one's longest form), without styles."""
        return "\n".join(Text.from_markup(forms[0]).plain for forms in self._markup)

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
        _, text = _fitting(self._markup[y], width)  # parsed once: measured, then drawn
        text.truncate(width, overflow="ellipsis")
        segments = Segment.apply_style(text.render(self.app.console), base)
        return Strip(list(segments), text.cell_len).extend_cell_length(width, base)
