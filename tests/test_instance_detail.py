"""The instance inspector against a real Trainer: exact polytopes copied into W, keys pressed."""

from __future__ import annotations

import asyncio
import html
import io
import math

import pytest
import torch
from polytopes import antipodal_pair, polygon, tegum, tetrahedron
from rich.console import Console
from textual.app import App

from engine.config import RunConfig, preset
from engine.geometry import REPRESENTED
from engine.trainer import Trainer
from toygeom_tui.screens.instance_detail import InstanceDetailScreen
from toygeom_tui.widgets.detail.feature_table import DEAD_ROW, FeatureTable
from toygeom_tui.widgets.detail.feature_vectors import FeatureVectors
from toygeom_tui.widgets.detail.gram_heatmap import GramHeatmap
from toygeom_tui.widgets.detail.partners_panel import PartnersPanel

PENTAGON = torch.tensor(
    [[math.cos(2 * math.pi * k / 5), math.sin(2 * math.pi * k / 5)] for k in range(5)]
).T  # (hidden feats)
# Two antipodal pairs on the axes and one dead feature.
DIGONS = torch.tensor([[1.0, -1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0, 0.0]])


@pytest.fixture(scope="module")
def pentagon_trainer() -> Trainer:
    """The pentagon preset briefly trained, then instance 0 set to an exact pentagon, instance 1
    to two antipodal pairs plus a dead feature, and instance 2 poisoned with NaN."""
    trainer = Trainer(preset("pentagon").replace(steps=50, batch_size=64, device="cpu"),
                      compiled=False)  # fmt: skip
    trainer.run()
    with torch.no_grad():
        trainer.W[0].copy_(PENTAGON)
        trainer.W[1].copy_(DIGONS)
        trainer.W[2, 0, 3] = float("nan")
    return trainer


# Instance 2 of the wide trainer: a tetrahedron, an antipodal pair and a triangle in orthogonal
# subspaces of the 6 dims (rotated, features shuffled), the other 31 features dead.
TEGUM_W, (TETRAHEDRON, DIGON, TRIANGLE) = tegum(
    [tetrahedron(), antipodal_pair(), polygon(3)], d_hidden=6, n_dead=31
)


@pytest.fixture(scope="module")
def wide_trainer() -> Trainer:
    """40 features in 6 dims, 3 instances, briefly trained: too many features for the space.
    Instance 2 is then set to TEGUM_W."""
    config = RunConfig(name="forty", n_features=40, d_hidden=6, n_inst=3, batch_size=64, steps=50,
                       device="cpu")  # fmt: skip
    trainer = Trainer(config, compiled=False)
    trainer.run()
    with torch.no_grad():
        trainer.W[2].copy_(TEGUM_W)
    return trainer


class Host(App):
    def __init__(self, trainer: Trainer, instance: int) -> None:
        super().__init__()
        self.trainer, self.instance = trainer, instance

    def on_mount(self) -> None:
        self.push_screen(InstanceDetailScreen(self.trainer, self.instance))


async def settle(pilot) -> None:
    """Let the analysis worker finish and its result reach the screen."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def rows(app: App) -> list[str]:
    return [key.value for key in app.screen.query_one(FeatureTable).table.rows]


def cell(app: App, row: str, column: str) -> str:
    return str(app.screen.query_one(FeatureTable).table.get_cell(row, column))


def text_of(renderable) -> str:
    console = Console(width=120, file=io.StringIO(), no_color=True)
    console.print(renderable)
    return console.file.getvalue()


def screen_text(app: App) -> str:
    return html.unescape(app.export_screenshot()).replace("\xa0", " ")


async def test_table_collapses_dead_features_and_d_shows_them(pentagon_trainer) -> None:
    app = Host(pentagon_trainer, 1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert rows(app) == ["0", "1", "2", "3", DEAD_ROW]
        assert cell(app, DEAD_ROW, "configuration") == "1 not represented"
        assert cell(app, DEAD_ROW, "partners") == f"‖W_i‖² ≤ {REPRESENTED}; d shows them"
        await pilot.press("d")
        assert rows(app) == ["0", "1", "2", "3", "4"]


async def test_antipodal_partner_has_cosine_minus_one(pentagon_trainer) -> None:
    app = Host(pentagon_trainer, 1)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert cell(app, "0", "configuration") == "antipodal pair"
        assert cell(app, "0", "dimensionality") == "0.500"
        assert cell(app, "0", "partners").startswith("1:−1.00")
        panel = text_of(app.screen.query_one(PartnersPanel).content)
        assert "feature 0" in panel
        partner_rows = [
            line.split() for line in panel.splitlines() if line.strip().startswith("1 ")
        ]
        assert partner_rows[0][:4] == ["1", "−1.000", "−1.000", "−1.000"]  # partner, cos, dot, proj
        assert "with: 1" in panel
        await pilot.press("j", "j")  # feature 2: its partner is 3
        assert "feature 2" in text_of(app.screen.query_one(PartnersPanel).content)
        assert "with: 3" in text_of(app.screen.query_one(PartnersPanel).content)


async def test_pentagon_is_named_and_drawn(pentagon_trainer) -> None:
    app = Host(pentagon_trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert {cell(app, str(i), "configuration") for i in range(5)} == {"pentagon"}
        assert {cell(app, str(i), "dimensionality") for i in range(5)} == {"0.400"}
        vectors = app.screen.query_one(FeatureVectors)
        assert vectors.display and vectors.size.height > 5
        text = screen_text(app)
        assert "colour: importance" in text and "[0]" in text  # the selected feature is bracketed
        assert "D* 0.4" in text  # 2 dims / ‖W‖²_F = 5


async def test_vectors_hidden_when_not_two_dimensional(wide_trainer) -> None:
    app = Host(wide_trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert not app.screen.query_one(FeatureVectors).display
        assert app.screen.query_one(GramHeatmap).region.area > 0


async def test_nan_in_W_is_survived_and_reported(pentagon_trainer) -> None:
    app = Host(pentagon_trainer, 2)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "NaN/inf" in text
        assert "−1 " in text and " +1" in text and "▀" in text  # the heatmap and its legend
        await pilot.press("d", "t", "t", "t")  # sorting and showing rows with NaN values
        assert len(rows(app)) == 5


async def test_sort_by_dimensionality_orders_rows(wide_trainer) -> None:
    app = Host(wide_trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("d")  # all 40, dead ones too
        assert rows(app) == [str(i) for i in range(40)]
        await pilot.press("t")
        dims = [float(cell(app, row, "dimensionality")) for row in rows(app)]
        assert dims == sorted(dims, reverse=True) and len(dims) == 40
        table = app.screen.query_one(FeatureTable).table
        widths = [column.get_render_width(table) for column in table.columns.values()]
        await pilot.click(table, offset=(widths[0] + 1, 0))  # the ‖W_i‖ header
        norms = [float(cell(app, row, "norm")) for row in rows(app)]
        assert norms == sorted(norms, reverse=True)
        await pilot.press("G")
        assert app.screen.query_one(FeatureTable).selected == int(rows(app)[-1])
        await pilot.press("g")
        assert app.screen.query_one(FeatureTable).selected == int(rows(app)[0])


async def test_search_filters_by_index_and_configuration(wide_trainer) -> None:
    app = Host(wide_trainer, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("d", "slash", "1", "7")
        assert rows(app) == ["17"]
        await pilot.press("backspace", "backspace", *"not repr")
        assert rows(app) and all(cell(app, r, "configuration") == "not represented"
                                 for r in rows(app))  # fmt: skip
        await pilot.press("escape")  # clears the search, stays on the screen
        assert len(rows(app)) == 40
        await pilot.press("slash", "7", "enter")  # enter keeps the filter and returns to the table
        assert rows(app) == ["7"] and app.focused is app.screen.query_one(FeatureTable).table
        await pilot.press("escape")  # clears the kept filter first
        assert len(rows(app)) == 40
        assert isinstance(app.screen, InstanceDetailScreen)


async def test_keys_typed_right_after_slash_reach_the_search_box(wide_trainer) -> None:
    """A terminal sends "/17" typed quickly as one burst: every key is queued before any is
    handled, so the box must take the focus as "/" is handled, not a refresh later."""
    from textual import events
    from textual.widgets import Input

    app = Host(wide_trainer, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        for key, character in (("slash", "/"), ("1", "1"), ("7", "7")):
            app.post_message(events.Key(key, character))  # all queued, none handled yet
        await pilot.pause()
        assert rows(app) == ["17"]
        await pilot.press("escape")
        for key, character in (("slash", "/"), ("2", "2"), ("slash", "/"), ("5", "5")):
            app.post_message(events.Key(key, character))
        await pilot.pause()
        box = app.screen.query_one("#feature-search", Input)
        assert box.value == "2/5" and box.has_focus, "in the box, / is a character"


async def test_brackets_step_through_instances(wide_trainer) -> None:
    app = Host(wide_trainer, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        norms_0 = [cell(app, r, "norm") for r in rows(app)]
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.screen.instance == 1
        assert "inst 1/2" in screen_text(app)
        assert [cell(app, r, "norm") for r in rows(app)] != norms_0
        await pilot.press("right_square_bracket", "right_square_bracket")  # clamps at the last
        await settle(pilot)
        assert app.screen.instance == 2
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert app.screen.instance == 1


async def test_pictures_hide_behind_h_when_narrow(wide_trainer) -> None:
    app = Host(wide_trainer, 0)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        heatmap, table = app.screen.query_one(GramHeatmap), app.screen.query_one(FeatureTable)
        assert heatmap.region.area == 0 and table.region.area > 0
        await pilot.press("h")
        assert heatmap.region.area > 0 and table.region.area == 0
        await pilot.resize_terminal(160, 48)
        await pilot.press("h")
        await pilot.pause()
        assert heatmap.region.area > 0 and table.region.area > 0  # wide: side by side
        await pilot.press("escape")
        assert not isinstance(app.screen, InstanceDetailScreen)


async def test_cursor_stays_on_its_feature_while_training() -> None:
    trainer = Trainer(RunConfig(name="live", n_features=12, d_hidden=4, n_inst=2, batch_size=64,
                                steps=20, device="cpu"), compiled=False)  # fmt: skip
    trainer.run()
    app = Host(trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        await pilot.press("d", "t", "j", "j", "j")
        table = app.screen.query_one(FeatureTable)
        chosen = table.selected
        assert chosen is not None
        trainer.extend(30)
        await asyncio.to_thread(trainer.run)
        deadline = asyncio.get_running_loop().time() + 20
        while app.screen.shown != (0, 50):  # analysis is throttled while it is expensive
            assert asyncio.get_running_loop().time() < deadline, app.screen.shown
            app.screen.poll()  # what the once-a-second timer does
            await settle(pilot)
            await asyncio.sleep(0.05)
        assert table.selected == chosen
        assert rows(app)[table.table.cursor_row] == str(chosen)


async def test_component_members_are_listed(wide_trainer) -> None:
    app = Host(wide_trainer, 2)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert len(rows(app)) == 9 + 1  # 9 represented features and the collapsed dead row
        await pilot.press("slash", *"tetra", "enter")
        assert sorted(map(int, rows(app))) == TETRAHEDRON.tolist()
        assert {cell(app, r, "dimensionality") for r in rows(app)} == {"0.750"}
        first, *others = (int(r) for r in rows(app))
        panel = text_of(app.screen.query_one(PartnersPanel).content)
        assert f"feature {first}" in panel
        assert "with: " + ", ".join(map(str, sorted(others))) in panel
        await pilot.press("escape", "slash", *"antipodal")
        assert sorted(map(int, rows(app))) == DIGON.tolist()


async def test_a_mixed_feature_is_not_shown_as_not_represented() -> None:
    # 20 unit vectors around a plane: represented, D_i = 0.1, off every named line. Its fraction
    # column says the nearest level above 0 (0 means "not represented"), dimmed as off the line.
    config = RunConfig(name="icosagon", n_features=20, d_hidden=2, n_inst=1, batch_size=8, steps=1,
                       device="cpu")  # fmt: skip
    trainer = Trainer(config, compiled=False)
    angles = torch.arange(20, dtype=torch.float64) * (2 * math.pi / 20)
    with torch.no_grad():
        trainer.W[0].copy_(torch.stack([angles.cos(), angles.sin()]))
    app = Host(trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(FeatureTable).table
        assert len(rows(app)) == 20  # none collapsed as dead
        for row in rows(app):
            fraction = table.get_cell(row, "fraction")
            assert (str(fraction), str(fraction.style)) == ("2/7", "dim")
            assert cell(app, row, "distance") == f"{2 / 7 - 0.1:.3f}"


async def test_a_feature_on_its_line_shows_its_fraction_plainly(pentagon_trainer) -> None:
    app = Host(pentagon_trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        fractions = [app.screen.query_one(FeatureTable).table.get_cell(str(i), "fraction")
                     for i in range(5)]  # fmt: skip
        assert {(str(f), str(f.style)) for f in fractions} == {("2/5", "")}


def test_the_table_shortens_counted_configurations_and_keeps_named_ones() -> None:
    import dataclasses

    import torch

    from engine.geometry import analyze
    from toygeom_tui.widgets.detail.feature_table import configuration_cell

    one = analyze(torch.eye(2)[None])[0].features[0]

    def cell(name: str, size: int = 1, rank: int = 1) -> str:
        feature = dataclasses.replace(
            one, configuration=name, component_size=size, component_rank=rank
        )
        return configuration_cell(feature)

    assert one.configuration == "dedicated dimension" and configuration_cell(one) == "dedicated dim"
    assert cell("mixed (64 features in 20 dims)", 64, 20) == "mixed 64 in 20d"
    assert cell("uniform (6 features in 3 dims)", 6, 3) == "uniform 6 in 3d"
    assert cell("diffuse (no strong represented partner)") == "diffuse"
    for named in ("pentagon", "antipodal pair", "square antiprism", "not represented"):
        assert cell(named) == named


async def test_a_feature_overlapping_only_an_unrepresented_one_is_diffuse_and_not_orthogonal() -> (
    None
):
    # Feature 0 along x; feature 1 tiny (‖W_1‖² 0.0725, not represented) at cos 0.93 to it;
    # feature 2 along y. Feature 0 has no partner in the graph, yet D_0 = 1/(1 + 0.25²) ≈ 0.94.
    config = RunConfig(name="lone", n_features=3, d_hidden=2, n_inst=1, batch_size=8, steps=1,
                       device="cpu")  # fmt: skip
    trainer = Trainer(config, compiled=False)
    with torch.no_grad():
        trainer.W[0].copy_(torch.tensor([[1.0, 0.25, 0.0], [0.0, 0.1, 1.0]]))
    app = Host(trainer, 0)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        assert cell(app, "0", "configuration") == "diffuse"
        assert cell(app, "2", "configuration") == "dedicated dim"
        panel = text_of(app.screen.query_one(PartnersPanel).content)
        assert "feature 0" in panel and "diffuse (no strong represented partner)" in panel
        assert "with: none (no represented feature overlaps it past 0.1)" in panel
        assert "orthogonal" not in panel, "it overlaps feature 1 at cos 0.93"


@pytest.mark.parametrize(("width", "one_over_p"), [(80, False), (160, True)])
async def test_the_header_keeps_to_one_line_dropping_1_over_p_first(width, one_over_p) -> None:
    config = preset("feature-geometry").replace(steps=10_000_000, device="cpu")
    app = Host(Trainer(config, compiled=False), 9)  # p 0.242: "(1/p 4.13)"
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        header = app.screen.query_one("#detail-header")
        text = str(header.render())
        assert "step 0/10,000,000" in text and text.rstrip().endswith("ready")
        assert ("(1/p 4.13)" in text) == one_over_p
        assert header.size.height == 1, text
