"""A run's group of seeds (engine.seeds) on a real `train --seeds 3` sweep, trained here: the best
seed per instance is the one whose saved session ends with the lowest loss there; a seed still
training joins when it finishes; a diverged seed, a NaN in the record and a tie, each as shown."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from sweeps import final_losses, seeds_sweep, train_pending

from engine.seeds import seed_group
from engine.sweep import DIVERGED, SWEEP_FILE, RunResult, Sweep, SweepError, spec_from_dict

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def sweep(seeds_made: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(seeds_made, tmp_path / "p3"))


def edit_record(sweep: Path, edit) -> None:
    record = json.loads((sweep / SWEEP_FILE).read_text())
    edit({run["name"]: run for run in record["runs"]})
    (sweep / SWEEP_FILE).write_text(json.dumps(record))  # NaN is written as NaN, as json allows


def test_the_best_seed_is_the_lowest_final_loss_of_each_instance(sweep: Path) -> None:
    losses = final_losses(sweep, "seed=0", "seed=1")
    group = seed_group(sweep / "seed=1")
    assert group is not None and group.seed == 1 and group.name == "seed=1"
    assert [run.name for run in group.runs] == ["seed=0", "seed=1", "seed=2"]
    assert group.counts()["done"] == 2 and group.filling  # seed 2 is still pending
    assert len(group.spread) == 8
    for one in group.spread:
        here = {seed: losses[seed][one.instance] for seed in losses}
        assert one.best_loss == pytest.approx(min(here.values()), rel=1e-6)
        assert here[one.best_seed] == min(here.values())
        assert one.worst_loss == pytest.approx(max(here.values()), rel=1e-6)
        assert one.seeds == 2
        assert group.is_best(one.instance) == (one.best_seed == 1)
        assert group.best_path(one.instance) == sweep / f"seed={one.best_seed}"
    assert {one.best_seed for one in group.spread} == {0, 1}  # each seed wins somewhere


def test_a_pending_seed_counts_once_it_finishes(sweep: Path) -> None:
    before = seed_group(sweep / "seed=0")
    assert before.neighbour(1) == sweep / "seed=1"  # seed 2 has no session yet: skipped
    assert before.neighbour(-1) == sweep / "seed=1"
    train_pending(sweep, "seed=2")
    after = seed_group(sweep / "seed=0")
    assert not after.filling and after.counts()["done"] == 3
    assert [one.seeds for one in after.spread] == [3] * 8
    losses = final_losses(sweep, "seed=0", "seed=1", "seed=2")
    assert [one.best_seed for one in after.spread] == [
        min(losses, key=lambda seed: losses[seed][i]) for i in range(8)
    ]
    assert after.neighbour(1) == sweep / "seed=1"
    assert after.neighbour(-1) == sweep / "seed=2"  # wraps round
    assert after.neighbour(2) == sweep / "seed=2"


def test_a_diverged_seed_is_counted_but_has_no_say(sweep: Path) -> None:
    record = Sweep.resume(sweep)
    error = "training diverged at step 10: instance 3 has a non-finite loss"
    record.finish(RunResult("seed=2", DIVERGED, {}, None, 0.5, error))
    group = seed_group(sweep / "seed=0")
    assert group.counts() == {"pending": 0, "done": 2, "failed": 0, "diverged": 1}
    assert not group.filling
    assert [one.seeds for one in group.spread] == [2] * 8
    assert group.neighbour(1) == group.neighbour(-1) == sweep / "seed=1"


def test_a_nan_in_the_record_is_left_out_of_that_instance(sweep: Path) -> None:
    losses = final_losses(sweep, "seed=0", "seed=1")

    def poison(runs: dict) -> None:
        runs["seed=0"]["figures"]["per_instance"]["loss"][0] = math.nan
        runs["seed=0"]["figures"]["per_instance"]["loss"][1] = None
        runs["seed=1"]["figures"]["per_instance"]["loss"][1] = math.inf

    edit_record(sweep, poison)
    group = seed_group(sweep / "seed=0")
    first, second = group.spread[0], group.spread[1]
    assert (first.best_seed, first.seeds) == (1, 1)
    assert first.best_loss == first.worst_loss == pytest.approx(losses[1][0], rel=1e-6)
    assert second.best_seed is None and second.seeds == 0 and math.isnan(second.best_loss)
    assert group.best_path(1) is None and not group.is_best(1)
    assert [one.seeds for one in group.spread[2:]] == [2] * 6


def test_a_tie_goes_to_the_seed_listed_first(sweep: Path) -> None:
    def tie(runs: dict) -> None:
        runs["seed=1"]["figures"] = runs["seed=0"]["figures"]

    edit_record(sweep, tie)
    group = seed_group(sweep / "seed=1")
    assert [one.best_seed for one in group.spread] == [0] * 8
    assert all(one.best_loss == one.worst_loss for one in group.spread)
    assert not any(group.is_best(i) for i in range(8))


def test_what_is_not_a_group_of_seeds(sweep: Path, tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    shutil.copytree(sweep / "seed=0", loose)  # the same session, outside any sweep
    assert seed_group(loose) is None
    assert seed_group(sweep / "seed=7") is None  # no such run in the record
    lone = seeds_sweep(tmp_path / "one", seeds=1, done=0)
    assert seed_group(lone / "seed=0") is None  # a single seed has no siblings
    lrs = spec_from_dict({"preset": "pentagon", "grid": {"lr": [1e-3, 3e-3]}})
    Sweep.create(tmp_path / "lrs", lrs)
    assert seed_group(tmp_path / "lrs" / "lr=0.001") is None  # a grid without seeds
    assert seed_group(sweep / "seed=0" / ".." / "seed=1").seed == 1


def test_a_broken_record_is_one_error(sweep: Path) -> None:
    (sweep / SWEEP_FILE).write_text("{not json")
    with pytest.raises(SweepError, match="not valid JSON"):
        seed_group(sweep / "seed=0")
