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


async def test_a_line_of_several_forms_is_drawn_in_the_longest_that_fits() -> None:
    app = LinesApp()
    forms = ("[b]run[/b] at step 1,000 of 2,000", "[b]run[/b] at 1,000/2,000", "run 1,000")
    async with app.run_test(size=(24, 2)) as pilot:
        widget = app.query_one(TextLines)
        widget.set_lines([forms, ("a first form much too long", "the second, also too long")])
        await pilot.pause()
        text, segments = shown(widget, 0)
        assert text == "run at 1,000/2,000".ljust(24) and ("run", True) in segments
        assert shown(widget, 1)[0] == "the second, also too lo…", "none fits: the last, cut"
        assert widget.plain.splitlines()[0] == "run at step 1,000 of 2,000"
        await pilot.resize_terminal(40, 2)
        await pilot.pause()
        assert shown(widget, 0)[0] == "run at step 1,000 of 2,000".ljust(40), "wider: longest"
