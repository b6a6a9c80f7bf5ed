"""TextLines, the status lines' widget: markup per line, cut to the width with an ellipsis, and a
repaint of only the lines whose markup changed."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult

from toygeom_tui.widgets.text_lines import TextLines

pytestmark = pytest.mark.timeout(30)


class LinesApp(App):
    def compose(self) -> ComposeResult:
        yield TextLines(id="lines")


def shown(widget: TextLines, y: int) -> tuple[str, list[tuple[str, bool]]]:
    strip = widget.render_line(y)
    return strip.text, [(s.text, bool(s.style and s.style.bold)) for s in strip]


async def test_lines_are_cut_to_the_width_with_an_ellipsis_and_keep_their_markup() -> None:
    app = LinesApp()
    async with app.run_test(size=(20, 4)) as pilot:
        widget = app.query_one(TextLines)
        widget.set_lines(["[b]run[/b] short", "a line much longer than twenty columns"])
        await pilot.pause()
        text, segments = shown(widget, 0)
        assert text == "run short".ljust(20)
        assert ("run", True) in segments and not any(bold for t, bold in segments if "short" in t)
        text, _ = shown(widget, 1)
        assert text == "a line much longer …"
        assert shown(widget, 2)[0] == " " * 20  # no third line: blank
        assert widget.plain == "run short\na line much longer than twenty columns"


async def test_a_changed_line_is_drawn_again_and_an_unchanged_one_is_kept() -> None:
    app = LinesApp()
    async with app.run_test(size=(30, 3)) as pilot:
        widget = app.query_one(TextLines)
        widget.set_lines(["step 1", "instance 0"])
        await pilot.pause()
        first, second = widget.render_line(0), widget.render_line(1)
        widget.set_lines(["step 2", "instance 0"])
        await pilot.pause()
        assert widget.render_line(0).text.startswith("step 2")
        assert widget.render_line(1) is second  # the same strip: not drawn again
        assert widget.render_line(0) is not first
        widget.set_lines(["step 2"])  # fewer lines: the dropped one goes blank
        await pilot.pause()
        assert widget.render_line(1).text == " " * 30
