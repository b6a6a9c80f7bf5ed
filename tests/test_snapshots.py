"""Weight snapshots: their schedule, exactness, and their life in sessions (save, load, resume,
sessions of format 1, saved before snapshots existed, and of format 2, which kept them all in
the weights file)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import load_file, save
from sessions_v1 import make_format_1
from sessions_v2 import make_format_2

from engine.history import SNAPSHOT_CAPACITY, SNAPSHOT_GROWTH, Snapshots
from engine.session import RECORD_FILE, WEIGHTS_FILE, SessionError, load_session, save_session
from engine.snapshot_files import FOLDER, NAME, file_name
from engine.trainer import Trainer


def test_schedule_is_dense_early_sparse_later_and_bounded() -> None:
    snapshots = Snapshots(every=10)
    W = torch.zeros(1, 2, 3)
    for step in range(0, 2_000_001, 10):
        snapshots.offer(step, W)
    steps = snapshots.steps
    assert len(steps) == SNAPSHOT_CAPACITY
    assert steps[0] == 0 and steps[-1] > 2_000_000 / SNAPSHOT_GROWTH
    assert all(s % 10 == 0 for s in steps)
    assert steps[1:4] == [10, 20, 30], "every log interval at first"
    gaps = [math.log((b + 10) / (a + 10)) for a, b in zip(steps, steps[1:], strict=False)]
    even = math.log(2_000_010 / 10) / SNAPSHOT_CAPACITY  # the gap of a perfectly even spread
    late = [g for g, s in zip(gaps, steps, strict=False) if s > 1_000]
    assert max(late) < 2.5 * even, "thinning keeps the spacing even in log(step)"


def test_offers_off_the_log_grid_or_not_due_are_refused() -> None:
    snapshots = Snapshots(every=10)
    W = torch.ones(1, 2, 3)
    assert snapshots.offer(0, W) and not snapshots.offer(5, W) and not snapshots.offer(0, W)
    assert snapshots.offer(10, W * 2)
    assert torch.equal(snapshots.at(10), W * 2)
    assert snapshots.at_or_before(9) == 0 and snapshots.at_or_before(10_000) == 10
    with pytest.raises(KeyError):
        snapshots.at(5)


def test_a_snapshot_is_exactly_the_weights_of_a_run_trained_to_its_step(small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run()
    steps = trainer.snapshots.steps
    assert steps[0] == 0 and steps[-1] <= small_config.steps and len(steps) > 15
    for step in (steps[0], steps[7], steps[-3]):
        again = Trainer(small_config, compiled=False)
        again.run(until=step)
        assert torch.equal(trainer.snapshots.at(step), again.W), step


def _straight_and_half(config):
    """The run trained to its end in one go, and the same run stopped at step 110."""
    straight = Trainer(config, compiled=False)
    straight.run()
    half = Trainer(config, compiled=False)
    half.run(until=110)
    return straight, half


def test_snapshots_survive_save_load_and_resume(tmp_path, small_config) -> None:
    straight, half = _straight_and_half(small_config)
    save_session(half, tmp_path / "half")
    loaded = load_session(tmp_path / "half", compiled=False)
    assert loaded.snapshots.steps == half.snapshots.steps
    for step in half.snapshots.steps:
        assert torch.equal(loaded.snapshots.at(step), half.snapshots.at(step))
    loaded.run()
    save_session(loaded, tmp_path / "full")
    again = load_session(tmp_path / "full", compiled=False)
    assert again.snapshots.steps == straight.snapshots.steps, "resume keeps the schedule"
    for step in straight.snapshots.steps:
        assert torch.equal(again.snapshots.at(step), straight.snapshots.at(step)), step
    record = json.loads((tmp_path / "full" / RECORD_FILE).read_text())
    assert record["format_version"] == 3
    folder = tmp_path / "full" / FOLDER
    on_disk = {f"{FOLDER}/{p.name}" for p in folder.iterdir() if NAME.fullmatch(p.name)}
    assert on_disk == {file_name(step, digest) for step, digest in record["snapshots"]["files"]}
    assert [step for step, _ in record["snapshots"]["files"]] == straight.snapshots.steps
    assert "snapshots.W" not in load_file(tmp_path / "full" / WEIGHTS_FILE), "each in its file"


def test_a_format_2_session_loads_and_resumes_as_before(tmp_path, small_config) -> None:
    straight, half = _straight_and_half(small_config)
    save_session(half, tmp_path / "v2")
    make_format_2(tmp_path / "v2")
    loaded = load_session(tmp_path / "v2", compiled=False)
    assert loaded.step == 110 and torch.equal(loaded.W, half.W) and loaded.load_note is None
    assert loaded.snapshots.steps == half.snapshots.steps
    for step in half.snapshots.steps:
        assert torch.equal(loaded.snapshots.at(step), half.snapshots.at(step))
    loaded.run()
    save_session(loaded, tmp_path / "v2")  # saved again, it is format 3
    assert json.loads((tmp_path / "v2" / RECORD_FILE).read_text())["format_version"] == 3
    again = load_session(tmp_path / "v2", compiled=False)
    assert again.snapshots.steps == straight.snapshots.steps and torch.equal(again.W, straight.W)
    for step in straight.snapshots.steps:
        assert torch.equal(again.snapshots.at(step), straight.snapshots.at(step)), step


def test_a_format_1_session_loads_without_history_to_travel_through(tmp_path, small_config):
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "old")
    make_format_1(tmp_path / "old")
    loaded = load_session(tmp_path / "old", compiled=False)
    assert torch.equal(loaded.W, trainer.W)
    assert loaded.snapshots.steps == [] and loaded.snapshots.unrecorded_until == 60
    loaded.run(until=150)
    assert loaded.snapshots.steps and loaded.snapshots.steps[0] >= 60
    save_session(loaded, tmp_path / "old")
    again = load_session(tmp_path / "old", compiled=False)
    assert again.snapshots.unrecorded_until == 60, "the gap is remembered after an upgrade"
    make_format_1(tmp_path / "old")
    empty = load_session(tmp_path / "old", compiled=False)
    save_session(empty, tmp_path / "none-yet")  # saved before any snapshot is due
    assert load_session(tmp_path / "none-yet", compiled=False).snapshots.steps == []


def test_snapshots_that_do_not_fit_are_one_line(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "s")
    make_format_2(tmp_path / "s")
    path = tmp_path / "s" / WEIGHTS_FILE
    tensors = load_file(path)
    tensors["snapshots.steps"] = tensors["snapshots.steps"].flip(0)
    record = (tmp_path / "s" / RECORD_FILE).read_text()
    path.write_bytes(save(tensors, metadata={"session": record}))
    with pytest.raises(SessionError, match="snapshots do not fit"):
        load_session(tmp_path / "s", compiled=False)


@pytest.mark.parametrize(
    ("files", "words"),
    [
        (lambda files: files[::-1], "not steps of this run"),
        (lambda files: [[10**9, files[0][1]]], "not steps of this run"),
        (lambda files: [[0, "../../etc/passwd"]], "no valid list"),
        (lambda files: {"0": files[0][1]}, "no valid list"),
    ],
)
def test_a_list_of_snapshot_files_that_cannot_be_ours_is_one_line(
    tmp_path, small_config, files, words
) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "s")
    record = json.loads((tmp_path / "s" / RECORD_FILE).read_text())
    record["snapshots"]["files"] = files(record["snapshots"]["files"])
    record["saved_at"] = 1e12  # newer than the weights' own copy, so this one is read
    (tmp_path / "s" / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(SessionError, match=words) as err:
        load_session(tmp_path / "s", compiled=False)
    assert "\n" not in str(err.value) and RECORD_FILE in str(err.value)


def test_memory_of_a_full_store_is_bounded() -> None:
    snapshots = Snapshots(every=1, capacity=4)
    for step in range(100):
        snapshots.offer(step, torch.full((1, 1, 1), float(step)))
    assert len(snapshots) == 4 and snapshots.steps[0] == 0
    assert [float(snapshots.at(s)) for s in snapshots.steps] == [float(s) for s in snapshots.steps]
