"""The named-fraction y labels of the geometry and D_i charts: one a row, common levels first."""

from __future__ import annotations

import pytest
from plotext._utility import get_matrix_data  # the row plotext draws a value on

from toygeom_tui.widgets.dashboard.geometry_chart import (
    LABEL_PRIORITY,
    REFERENCE_FRACTIONS,
    Y_TOP,
    fraction_ticks,
)
from toygeom_tui.widgets.dynamics.dims_history_chart import LINE_FRACTIONS


@pytest.mark.parametrize("fractions", [LINE_FRACTIONS, REFERENCE_FRACTIONS])
@pytest.mark.parametrize("height", range(6, 61))
def test_each_label_has_its_row_and_a_shared_row_shows_the_commonest_level(
    fractions, height
) -> None:
    rows = height - 4  # title, frame, x labels
    ticks, labels = fraction_ticks(height, fractions)
    drawn = get_matrix_data(ticks, (0.0, Y_TOP), rows)
    assert len(set(drawn)) == len(drawn), (height, labels)  # no label drawn over another
    for fraction in fractions:
        row = get_matrix_data([fraction.value], (0.0, Y_TOP), rows)[0]
        shown = labels[drawn.index(row)] if row in drawn else None
        assert shown is not None, (height, fraction.label)  # every row with a level is labelled
        if shown != fraction.label and shown != "0":
            assert LABEL_PRIORITY.index(shown) < LABEL_PRIORITY.index(fraction.label)
    if height >= 8:
        assert "1/2" in labels  # a short chart labelled 1/3 or 3/8 where its features sat at 1/2
