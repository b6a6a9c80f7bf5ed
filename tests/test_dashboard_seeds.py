"""The dashboard and instance list on one seed of a real `train --seeds 3` sweep (trained here,
seed 2 left pending): each instance's best seed (★ where it is the seed shown) and the spread,
{ } and b opening the right sibling, a seed that finishes while the app is open filling in, and
nothing of it outside a group of seeds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sweeps import best_seeds, final_losses, train_pending
from test_app import notifications, wait_for
from test_sessions_screen import screen_text

from engine.session import load_session
from toygeom_tui.app import ToygeomApp
from toygeom_tui.widgets.dashboard.instance_list import HEADER, InstanceList
from toygeom_tui.widgets.dashboard.seed_status import KEYS_HINT, SeedStatus

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def sweep(seeds_made: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(seeds_made, tmp_path / "p3"))


def app_on(session: Path) -> ToygeomApp:
    return ToygeomApp(load_session(session, compiled=False), sessions_root=session.parent)


def seeds_line(app: ToygeomApp) -> str:
    return app.dashboard.query_one(SeedStatus).plain


def list_rows(app: ToygeomApp) -> list[str]:
    """The instance list's lines as drawn: the header, then a row per instance."""
    widget = app.dashboard.instance_list
    return [widget.render_line(y).text for y in range(1 + app.current_run.config.n_inst)]


async def seeds_shown(app: ToygeomApp, pilot, seed: int) -> None:
    await wait_for(
        pilot, lambda: app.dashboard.seeds is not None and app.dashboard.seeds.seed == seed
    )
    await wait_for(pilot, lambda: seeds_line(app).startswith(f"seed {seed} "))


async def test_the_best_seed_of_each_instance_is_shown_and_marked(sweep: Path) -> None:
    best = best_seeds(sweep, "seed=0", "seed=1")
    assert set(best) == {0, 1}  # each seed wins somewhere: the marks have something to show
    app = app_on(sweep / "seed=0")
    async with app.run_test(size=(140, 40)) as pilot:
        await seeds_shown(app, pilot, 0)
        await pilot.pause()
        assert app.dashboard.instance_list.has_class("-seeds")
        header, *rows = list_rows(app)
        assert header.split() == [*HEADER.split(), "seed", "best", "worst"]
        losses = final_losses(sweep, "seed=0", "seed=1")
        for i, row in enumerate(rows):
            cells = row.split()
            assert cells[0] == str(i)
            seed_cell, best_loss, worst_loss = cells[-3:]
            assert seed_cell == ("★" if best[i] == 0 else "") + str(best[i]), row
            assert best_loss == f"{min(losses[0][i], losses[1][i]):.3g}"
            assert worst_loss == f"{max(losses[0][i], losses[1][i]):.3g}"
        line = seeds_line(app)
        assert line.startswith("seed 0 · 2/3 seeds done · inst 0: best ")
        assert f"seed {best[0]} " in line and "worst" in line and line.endswith(KEYS_HINT)
        assert ("★" in line) == (best[0] == 0)


async def test_the_seed_keys_open_the_next_previous_and_best_seed(sweep: Path) -> None:
    best = best_seeds(sweep, "seed=0", "seed=1")
    app = app_on(sweep / "seed=0")
    async with app.run_test(size=(140, 40)) as pilot:
        await seeds_shown(app, pilot, 0)
        await pilot.press("right_curly_bracket")  # }: the next finished seed
        await seeds_shown(app, pilot, 1)
        assert app.session_dir == sweep / "seed=1" and app.current_run.config.seed == 1
        await pilot.press("right_curly_bracket")  # seed 2 is pending: round to seed 0
        await seeds_shown(app, pilot, 0)
        assert app.session_dir == sweep / "seed=0"
        await pilot.press("left_curly_bracket")  # {: the previous one, round again
        await seeds_shown(app, pilot, 1)
        where_0_wins = best.index(0)
        await pilot.press("g", *["j"] * where_0_wins, "b")  # b: this instance's best seed
        await seeds_shown(app, pilot, 0)
        assert app.session_dir == sweep / "seed=0" and app.dashboard.selected == where_0_wins
        assert "★" in seeds_line(app)
        await pilot.press("b")  # already the best there: stays, and says so
        await wait_for(pilot, lambda: any("already the best" in m for m in notifications(app)))
        assert app.session_dir == sweep / "seed=0"


async def test_a_seed_that_finishes_while_shown_fills_in(sweep: Path) -> None:
    app = app_on(sweep / "seed=0")
    async with app.run_test(size=(140, 40)) as pilot:
        await seeds_shown(app, pilot, 0)
        assert "2/3 seeds done" in seeds_line(app)
        train_pending(sweep, "seed=2")  # as the sweep's worker would, while the app watches
        await wait_for(pilot, lambda: "3/3 seeds done" in seeds_line(app), timeout=30)
        assert [one.seeds for one in app.dashboard.seeds.spread] == [3] * 8
        best = best_seeds(sweep, "seed=0", "seed=1", "seed=2")
        assert [one.best_seed for one in app.dashboard.seeds.spread] == best


async def test_at_80x24_the_seeds_line_fits(sweep: Path) -> None:
    app = app_on(sweep / "seed=1")
    async with app.run_test(size=(80, 24)) as pilot:
        await seeds_shown(app, pilot, 1)
        await pilot.pause()
        assert not app.dashboard.query_one(InstanceList).display  # narrow: the line says it
        [shown] = [line for line in screen_text(app).splitlines() if "seeds done" in line]
        assert shown.rstrip().endswith(KEYS_HINT), shown  # nothing cut off
        await pilot.press("j", "j", "j")
        await wait_for(pilot, lambda: "inst 3: best" in seeds_line(app))


async def test_outside_a_group_of_seeds_nothing_changes(sweep: Path, tmp_path: Path) -> None:
    loose = tmp_path / "sessions" / "loose"
    shutil.copytree(sweep / "seed=0", loose)
    app = app_on(loose)
    async with app.run_test(size=(140, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.dashboard.seeds is None
        assert not app.dashboard.query_one(SeedStatus).display
        assert not app.dashboard.instance_list.has_class("-seeds")
        assert list_rows(app)[0].rstrip() == HEADER
        assert app.dashboard.instance_list.outer_size.width == 44
        await pilot.press("b")
        await wait_for(pilot, lambda: any("not one seed" in m for m in notifications(app)))
        assert app.session_dir == loose


async def test_a_terminal_too_small_hides_the_seeds_line_too(sweep: Path) -> None:
    app = app_on(sweep / "seed=0")
    async with app.run_test(size=(50, 15)) as pilot:
        await wait_for(pilot, lambda: app.dashboard.seeds is not None)
        await pilot.pause()
        assert not app.dashboard.query_one(SeedStatus).display
        assert "seeds done" not in screen_text(app)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.dashboard.query_one(SeedStatus).display)
