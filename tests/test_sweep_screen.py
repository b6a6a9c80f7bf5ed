"""The sweep screen and the session browser's sweep entry, driven by Pilot over a real sweep
(runs trained here with engine.sweep.train_run and stored with Sweep.finish, one left pending)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_sessions_screen import Host, names, rows, screen_text, settle

from engine.sweep import (
    DONE,
    Sweep,
    figure_lines,
    seed_spread,
    spec_from_dict,
    sweep_info,
    train_run,
)
from toygeom_tui.screens.compare import CompareScreen
from toygeom_tui.screens.sweep import SweepScreen
from toygeom_tui.widgets.sweep.sweep_table import BEST, MARK, SweepTable

pytestmark = pytest.mark.timeout(120)
GRID = {"lr": [1e-3, 3e-3, 1e-2], "seed": [0, 1]}
PENDING_RUN = "lr=0.01,seed=1"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweeps")
    spec = spec_from_dict({"preset": "pentagon", "steps": 150, "device": "cpu", "grid": GRID})
    sweep = Sweep.create(root / "lr-sweep", spec)
    for run in spec.runs:
        if run.name != PENDING_RUN:
            sweep.finish(train_run(run.name, run.config.to_dict(), threads=1))
    return root


@pytest.fixture
def sessions(made: Path, tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    shutil.copytree(made, root)
    return root


def table_rows(app) -> list[list[str]]:
    table = app.screen.query_one(SweepTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def losses(app) -> list[float | None]:
    column = 1 + len(GRID) + 1  # mark, grid keys, status, then the final loss
    return [None if row[column] == "—" else float(row[column]) for row in table_rows(app)]


async def open_sweep(app, pilot) -> None:
    await settle(app, pilot)
    await pilot.press("enter")
    await settle(app, pilot)
    assert isinstance(app.screen, SweepScreen)


def test_figure_lines_average_over_the_other_keys(made: Path) -> None:
    info = sweep_info(made / "lr-sweep")
    by_run = {run.name: run.figures["loss"] for run in info.runs if run.status == DONE}
    lines = figure_lines(info.runs, "loss", "lr", None)
    assert list(lines) == [None]
    points = dict(lines[None])
    mean = (by_run["lr=0.001,seed=0"] + by_run["lr=0.001,seed=1"]) / 2
    assert points[1e-3] == pytest.approx(mean)
    assert points[1e-2] == pytest.approx(by_run["lr=0.01,seed=0"])  # the pending run left out
    per_seed = figure_lines(info.runs, "loss", "lr", "seed")
    assert set(per_seed) == {0, 1}
    assert dict(per_seed[1]) == {1e-3: by_run["lr=0.001,seed=1"], 3e-3: by_run["lr=0.003,seed=1"]}


async def test_the_browser_lists_a_sweep_as_one_entry(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(app, pilot)
        assert names(app) == ["lr-sweep"]
        row = rows(app)[0]
        assert row[2] == "pentagon: lr×3 × seed×2"
        assert row[3] == "5/2/8" and row[4] == "5/6 runs" and row[5] == "sweep"
        best = min(run.figures["loss"] for run in sweep_info(sessions / "lr-sweep").runs
                   if run.figures)  # fmt: skip
        assert row[6] == f"{best:.4g} best"


async def test_the_sweep_screen_sorts_by_final_loss_and_stars_the_best(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        shown = losses(app)
        assert shown[-1] is None  # the pending run, last
        assert shown[:-1] == sorted(shown[:-1])
        marks = [row[0] for row in table_rows(app)]
        assert marks[0].strip() == BEST and all(BEST not in m for m in marks[1:])
        assert "5/6 runs done · sorted by final loss" in screen_text(app)
        await pilot.press(*"tttt")  # past ‖W‖²_F, D* and on fractions to the first grid key
        await pilot.pause()
        assert [row[1] for row in table_rows(app)] == ["0.001"] * 2 + ["0.003"] * 2 + ["0.01"] * 2
        await pilot.press("T")  # reversed
        await pilot.pause()
        assert [row[1] for row in table_rows(app)] == ["0.01"] * 2 + ["0.003"] * 2 + ["0.001"] * 2
        assert "sorted by lr (reversed)" in screen_text(app)


async def test_the_chart_draws_a_chosen_figure_against_a_chosen_key(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        text = screen_text(app)
        assert "final loss, a line per seed" in text and "seed=0" in text and "seed=1" in text
        assert "lr (log)" in text  # 1e-3 … 1e-2 spans a decade
        await pilot.press("f")
        await pilot.pause()
        assert "‖W‖²_F, a line per seed" in screen_text(app)
        await pilot.press("x")  # seed on the x axis, a line per lr
        await pilot.pause()
        text = screen_text(app)
        assert "a line per lr" in text and "lr=0.003" in text
        await pilot.press("l")  # no line key: one line
        await pilot.pause()
        assert "a line per" not in screen_text(app)


async def test_enter_on_a_row_opens_that_run(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        await pilot.press(*"tttt")  # by lr: the first row is lr=0.001, seed=0
        await pilot.pause()
        await pilot.press("g", "enter")  # the cursor stayed on its run (the best) while sorting
        await pilot.pause()
        assert app.result == sessions / "lr-sweep" / "lr=0.001,seed=0"


async def test_a_run_that_is_not_done_does_not_open(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        await pilot.press("G")  # the pending run is last
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SweepScreen)
        assert f"{PENDING_RUN} is pending; only a finished run has a session" in app.messages


async def test_compare_two_runs_of_a_sweep(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        await pilot.press(*"tttt", "g")
        await pilot.pause()
        await pilot.press("space")  # marks lr=0.001,seed=0 and moves down
        await pilot.pause()
        assert table_rows(app)[0][0].startswith(MARK)
        await pilot.press("c")  # with the run under the cursor, lr=0.001,seed=1
        await settle(app, pilot)
        assert isinstance(app.screen, CompareScreen)
        sweep = sessions / "lr-sweep"
        assert app.screen.paths == (sweep / "lr=0.001,seed=0", sweep / "lr=0.001,seed=1")
        assert app.screen.sessions is not None
        assert all(s.error is None for s in app.screen.sessions)
        await pilot.press("q")
        await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
        assert names(app) == ["lr-sweep"]  # back in the browser


def test_seed_spread_finds_each_instances_best_seed(made: Path) -> None:
    info = sweep_info(made / "lr-sweep")
    per_seed = {
        run.values["seed"]: run.figures["per_instance"]["loss"]
        for run in info.runs
        if run.values["lr"] == 1e-3
    }
    spread = seed_spread(info.runs, {"lr": 1e-3, "seed": 0})
    assert [one.instance for one in spread] == list(range(8))
    for one in spread:
        losses = {seed: per_seed[seed][one.instance] for seed in per_seed}
        assert one.best_loss == min(losses.values()) == losses[one.best_seed]
        assert one.worst_loss == max(losses.values()) and one.seeds == 2
    assert [one.seeds for one in seed_spread(info.runs, {"lr": 1e-2})] == [1] * 8  # one pending


async def test_the_seeds_panel_follows_the_cursor(sessions: Path) -> None:
    app = Host(sessions)
    async with app.run_test(size=(140, 40)) as pilot:
        await open_sweep(app, pilot)
        await pilot.press(*"tttt", "g")  # lr=0.001, seed=0
        await pilot.pause()
        text = screen_text(app)
        assert "seeds of lr=0.001" in text and "best seed" in text, text
        info = sweep_info(sessions / "lr-sweep")
        best = [one.best_seed for one in seed_spread(info.runs, {"lr": 1e-3})]
        after_star = [
            line.rsplit("★ ", 1)[1].split()[0] for line in text.splitlines() if "★ " in line
        ]
        assert [int(seed) for seed in after_star if seed.isdigit()] == best
        await pilot.press("G")  # lr=0.01, seed=1: pending, its one finished seed shown
        await pilot.pause()
        assert "seeds of lr=0.01" in screen_text(app)


@pytest.mark.timeout(600)  # two worker processes start torch: slow on a busy 2-core machine
async def test_seeds_from_the_new_run_form_train_as_a_sweep(tmp_path: Path) -> None:
    from test_app import wait_for

    from engine.config import preset
    from engine.trainer import Trainer
    from toygeom_tui.app import ToygeomApp
    from toygeom_tui.screens.new_run import NewRunScreen

    config = preset("pentagon").replace(steps=100, device="cpu", seed=3)
    app = ToygeomApp(Trainer(config, compiled=False), autostart=False, sessions_root=tmp_path)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        seeds = app.screen.query_one("#seeds")
        seeds.value = "0"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)  # refused, and says why
        status = str(app.screen.query_one("#form-status").render())
        assert "seeds: '0' is not a count of seeds" in status
        seeds.value = "2"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen))
        [directory] = tmp_path.iterdir()
        assert directory.name.startswith("pentagon-seeds-")
        await wait_for(
            pilot, lambda: app.screen.info is not None and app.screen.info.done == 2, timeout=500
        )
        assert [run.name for run in app.screen.info.runs] == ["seed=3", "seed=4"]
        await pilot.press("g", "enter")  # the best seed, first by final loss
        await wait_for(pilot, lambda: app.session_dir is not None and app.current_run.step == 100)
        assert app.current_run.step == 100 and app.current_run.config.seed in (3, 4)
        best = sweep_info(directory).best
        assert app.session_dir == directory / best.name
        # The dashboard knows the seed is one of two, and which instances it is best at.
        await wait_for(pilot, lambda: app.dashboard.seeds is not None)
        assert app.dashboard.seeds.counts()["done"] == 2 and app.dashboard.seeds.name == best.name


@pytest.mark.parametrize(
    ("xs", "labels"),
    [((1e-3, 3e-3), ("0.001", "0.003")), ((0.25,), ("0.25",)), ((1, 2, 3), ("1", "2", "3"))],
)
async def test_the_chart_spreads_its_x_values_over_its_width(xs, labels) -> None:
    """Grid values on a linear axis land apart, whatever their scale: lr 0.001 and 0.003 were
    drawn in one column, under one label, with the x limits padded by a fixed 0.05."""
    from textual.app import App, ComposeResult

    from toygeom_tui.widgets.sweep.sweep_chart import SweepChart

    class ChartApp(App):
        def compose(self) -> ComposeResult:
            yield SweepChart()

    app = ChartApp()
    async with app.run_test(size=(80, 20)) as pilot:
        chart = app.query_one(SweepChart)
        lines = {0: [(x, 0.1 + 0.01 * i) for i, x in enumerate(xs)], 1: [(xs[0], 0.12)]}
        chart.show(lines, figure="final loss", x_key="lr", line_key="seed")
        await pilot.pause()
        text = chart.render().plain
        shown = [row for row in text.splitlines() if all(x in row for x in labels)]
        assert shown, f"every x label {labels} on the axis line"
        columns = [shown[0].index(label) for label in labels]
        assert columns == sorted(columns) and len(set(columns)) == len(columns)
        if len(xs) > 1:  # the outermost values near the plot's edges, not bunched together
            assert columns[-1] - columns[0] > 40, columns
