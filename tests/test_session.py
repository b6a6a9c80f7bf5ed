"""Sessions: round trip, bit-exact resume, and every kind of broken or hostile file."""

from __future__ import annotations

import itertools
import json
import os
import pickle
import shutil
import struct
import threading
import time

import pytest
import torch
from safetensors.torch import save_file

from engine.autosave import Autosaver
from engine.config import RunConfig
from engine.history import Snapshots
from engine.session import (
    RECORD_FILE,
    WEIGHTS_FILE,
    SessionError,
    capture,
    load_saved,
    load_session,
    mark_stopped,
    read_record,
    save_session,
    session_info,
    write_session,
)
from engine.snapshot_files import FOLDER, NAME, file_name
from engine.trainer import Trainer


@pytest.fixture
def saved(tmp_path, small_config: RunConfig):
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "s")
    return trainer, tmp_path / "s"


def test_round_trip_restores_everything(saved) -> None:
    trainer, path = saved
    loaded = load_session(path, compiled=False)
    assert loaded.config == trainer.config
    assert (loaded.step, loaded.total_steps) == (60, trainer.total_steps)
    assert loaded.state == "ready", "an unfinished session waits to be resumed"
    assert (loaded.latest_frobenius_sq == trainer.latest_frobenius_sq).all()
    assert torch.equal(loaded.W, trainer.W) and torch.equal(loaded.b_final, trainer.b_final)
    ours, theirs = loaded.state_tensors(), trainer.state_tensors()
    assert ours.keys() == theirs.keys() and "optimizer.W.exp_avg_sq" in ours
    for name, tensor in ours.items():
        assert torch.equal(tensor, theirs[name]), name
    for a, b in zip(loaded.history.metrics_arrays(), trainer.history.metrics_arrays(), strict=True):
        assert (a == b).all()
    info = session_info(path)
    assert info.step == 60 and info.config.name == "small" and not info.running
    record = json.loads((path / RECORD_FILE).read_text())
    assert record["format"] == "toygeom-session" and record["format_version"] == 3


def test_a_saved_session_loads_as_a_value_without_a_trainer(saved, monkeypatch) -> None:
    trainer, path = saved
    trainer.run(until=100)  # snapshots and history past the save must not appear
    loaded = load_session(path, compiled=False)

    def no_trainer(*args, **kwargs):
        raise AssertionError("load_saved built a Trainer")

    monkeypatch.setattr(Trainer, "__init__", no_trainer)
    value = load_saved(path)
    assert value.config == loaded.config and value.directory == path
    assert (value.step, value.total_steps) == (60, loaded.total_steps)
    assert torch.equal(value.W, loaded.W) and torch.equal(value.b_final, loaded.b_final)
    assert (value.latest_loss == loaded.latest_loss).all() and value.latest_loss.shape == (4,)
    assert (value.latest_frobenius_sq == loaded.latest_frobenius_sq).all()
    for a, b in zip(value.history.metrics_arrays(), loaded.history.metrics_arrays(), strict=True):
        assert (a == b).all()
    assert value.snapshots.steps == loaded.snapshots.steps and len(value.snapshots) > 0
    assert value.snapshots.steps[-1] <= 60
    for step in value.snapshots.steps:
        assert torch.equal(value.snapshots.at(step), loaded.snapshots.at(step))


def test_resume_is_bit_exact(tmp_path, small_config: RunConfig) -> None:
    straight = Trainer(small_config, compiled=False)
    straight.run()
    first = Trainer(small_config, compiled=False)
    first.run(until=small_config.steps // 2)
    save_session(first, tmp_path / "half")
    resumed = load_session(tmp_path / "half", compiled=False)
    resumed.run()
    save_session(resumed, tmp_path / "full")
    assert load_session(tmp_path / "full", compiled=False).state == "done"
    assert torch.equal(resumed.W, straight.W)
    assert torch.equal(resumed.b_final, straight.b_final)
    _, loss_a, _ = straight.history.metrics_arrays()
    _, loss_b, _ = resumed.history.metrics_arrays()
    assert (loss_a == loss_b).all(), "the history continues seamlessly"


def _expect(path, *words: str) -> str:
    """The one-line SessionError of loading `path`, to train on or as a value (the same)."""
    with pytest.raises(SessionError) as err:
        load_session(path, compiled=False)
    message = str(err.value)
    with pytest.raises(SessionError) as as_value:
        load_saved(path)
    assert str(as_value.value) == message
    assert "\n" not in message
    for word in words:
        assert word in message, message
    return message


def test_missing_and_foreign_directories(tmp_path) -> None:
    _expect(tmp_path / "nope", "no such session")
    (tmp_path / "plain").mkdir()
    _expect(tmp_path / "plain", "not a session")
    (tmp_path / "file").write_text("x")
    _expect(tmp_path / "file", "not a directory")


def test_missing_weights(saved) -> None:
    _, path = saved
    (path / WEIGHTS_FILE).unlink()
    _expect(path, WEIGHTS_FILE, "missing")


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("[1, 2, 3]", ["expected a JSON object"]),
        ("{not json", ["not valid JSON"]),
        ('{"format": "something-else"}', ["not a toygeom session"]),
    ],
)
def test_bad_records(saved, content: str, words: list[str]) -> None:
    _, path = saved
    (path / WEIGHTS_FILE).unlink()  # the embedded copy would otherwise stand in
    (path / RECORD_FILE).write_text(content)
    _expect(path, RECORD_FILE, *words)


def _edit_record(path, **changes) -> None:
    record = json.loads((path / RECORD_FILE).read_text())
    record.update(changes)
    record["saved_at"] = 1e12  # newer than the weights' embedded copy
    (path / RECORD_FILE).write_text(json.dumps(record))


def test_a_session_whose_engine_drew_other_batches_says_so(saved) -> None:
    _, path = saved
    assert load_session(path, compiled=False).load_note is None, "this engine's own session"
    _edit_record(path, engine_version="0.1.0")
    note = load_session(path, compiled=False).load_note
    assert "engine 0.1.0" in note and "other batches" in note
    _edit_record(path, engine_version="0.2.0")  # its uniform batches are this engine's
    assert load_session(path, compiled=False).load_note is None


def test_a_normal_data_session_of_engine_0_2_says_its_batches_differ(tmp_path) -> None:
    """Engine 0.2.0 drew normal magnitudes with torch's log, cos and square root."""
    trainer = Trainer(RunConfig(n_inst=2, n_features=6, d_hidden=2, steps=4, data="normal"),
                      compiled=False)  # fmt: skip
    trainer.run()
    path = tmp_path / "normal"
    save_session(trainer, path)
    assert load_session(path, compiled=False).load_note is None
    _edit_record(path, engine_version="0.2.0")
    assert "engine 0.2.0, which drew other batches" in load_session(path, compiled=False).load_note


def test_future_and_wrong_versions(saved) -> None:
    _, path = saved
    _edit_record(path, format_version=99)
    _expect(path, "format version 99", "upgrade")
    _edit_record(path, format_version="1")
    _expect(path, "format_version")


def test_shapes_that_disagree_with_the_config(saved) -> None:
    trainer, path = saved
    _edit_record(path, config=trainer.config.replace(n_features=21).to_dict())
    _expect(path, WEIGHTS_FILE, "W is", "(4, 5, 21)")


def test_invalid_config_in_record(saved) -> None:
    _, path = saved
    record = json.loads((path / RECORD_FILE).read_text())
    record["config"]["n_features"] = -1
    _edit_record(path, config=record["config"])
    _expect(path, "invalid config", "n_features")


def test_truncated_weights(saved) -> None:
    _, path = saved
    blob = (path / WEIGHTS_FILE).read_bytes()
    (path / WEIGHTS_FILE).write_bytes(blob[: len(blob) // 2])
    _expect(path, WEIGHTS_FILE, "truncated")


def test_pickle_renamed_to_safetensors_is_never_unpickled(saved) -> None:
    _, path = saved

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch /tmp/toygeom-pwned",))

    (path / WEIGHTS_FILE).write_bytes(pickle.dumps(Boom()))
    _expect(path, WEIGHTS_FILE, "not a safetensors file")
    assert not os.path.exists("/tmp/toygeom-pwned")


def test_torch_save_file_is_refused(saved) -> None:
    trainer, path = saved
    torch.save({"W": trainer.W}, path / WEIGHTS_FILE)
    _expect(path, WEIGHTS_FILE)


def test_huge_declared_header(saved) -> None:
    _, path = saved
    (path / WEIGHTS_FILE).write_bytes(struct.pack("<Q", 2**60) + b"{}")
    _expect(path, WEIGHTS_FILE, "not a safetensors file")


def test_nan_weights(saved) -> None:
    trainer, path = saved
    tensors = trainer.state_tensors()
    tensors["W"][0, 0, 0] = float("nan")
    save_file(tensors, path / WEIGHTS_FILE)
    _expect(path, "W contains NaN")


def test_wrong_dtype(saved) -> None:
    trainer, path = saved
    tensors = trainer.state_tensors()
    tensors["W"] = tensors["W"].double()
    save_file(tensors, path / WEIGHTS_FILE)
    _expect(path, "W is torch.float64")


def test_a_failing_disk_keeps_the_previous_save(saved, monkeypatch) -> None:
    trainer, path = saved

    def files() -> dict[str, bytes]:  # snapshots/ too
        return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}

    before = files()
    trainer.run(until=80)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("engine.atomic.os.fsync", full_disk)
    with pytest.raises(SessionError, match="No space left on device"):
        save_session(trainer, path)
    monkeypatch.undo()
    assert files() == before, "every file as it was, and no temp files left"
    assert load_session(path, compiled=False).step == 60


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_folder(saved) -> None:
    trainer, path = saved
    path.chmod(0o555)
    try:
        with pytest.raises(SessionError, match="cannot save"):
            save_session(trainer, path)
    finally:
        path.chmod(0o755)


def test_crash_between_the_two_renames_loads_the_newer_weights(saved) -> None:
    trainer, path = saved
    old_record = (path / RECORD_FILE).read_bytes()
    trainer.run(until=90)
    save_session(trainer, path)
    (path / RECORD_FILE).write_bytes(old_record)  # as if killed before the record's rename
    assert load_session(path, compiled=False).step == 90


def _stamps(path) -> dict[str, tuple[int, int, int]]:
    """name -> (inode, size, mtime_ns) of each file under `path` (snapshots/ too, by relative
    path): a save writes a file as a new one renamed into place, so every file it wrote has a
    new stamp."""
    stats = {str(p.relative_to(path)): p.stat() for p in path.rglob("*") if p.is_file()}
    return {name: (st.st_ino, st.st_size, st.st_mtime_ns) for name, st in stats.items()}


def _written(before: dict, after: dict) -> dict[str, int]:
    """The files (name -> bytes) that are new or rewritten between two `_stamps`."""
    return {name: stamp[1] for name, stamp in after.items() if before.get(name) != stamp}


def _snapshot_files(path) -> set[str]:
    """The snapshot files on disk, as paths relative to the session (as file_name gives them)."""
    folder = path / FOLDER
    found = folder.iterdir() if folder.is_dir() else ()
    return {f"{FOLDER}/{p.name}" for p in found if NAME.fullmatch(p.name)}


def _listed(path) -> set[str]:
    """The snapshot files the session's record names."""
    record = json.loads((path / RECORD_FILE).read_text())
    return {file_name(step, digest) for step, digest in record["snapshots"]["files"]}


def test_a_save_writes_only_the_snapshots_it_has_not_written(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run()
    path = tmp_path / "s"
    save_session(trainer, path)
    assert _snapshot_files(path) == _listed(path) and len(_listed(path)) == len(trainer.snapshots)
    all_snapshots = len(trainer.snapshots) * trainer.W.numel() * 4  # bytes
    before = _stamps(path)
    save_session(trainer, path)  # nothing new since: an autosave late in a run
    written = _written(before, _stamps(path))
    assert sorted(written) == [RECORD_FILE, WEIGHTS_FILE], "no snapshot file written again"
    assert sum(written.values()) < all_snapshots, "less than the snapshots' own bytes"

    had = _listed(path)
    trainer.extend(50)
    trainer.run()  # keeps a few new snapshots
    before = _stamps(path)
    save_session(trainer, path)
    written = _written(before, _stamps(path))
    new = _listed(path) - had
    assert new and sorted(written) == sorted({RECORD_FILE, WEIGHTS_FILE} | new)


def test_a_dropped_snapshot_loses_its_file(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.snapshots = Snapshots(trainer.log_every, capacity=4)  # soon full: each new drops one
    trainer.snapshots.offer(0, trainer.W)
    path = tmp_path / "s"
    trainer.run(until=60)
    save_session(trainer, path)
    first = _snapshot_files(path)
    trainer.run(until=150)
    save_session(trainer, path)
    assert _snapshot_files(path) == _listed(path) and len(_listed(path)) == 4
    assert first - _listed(path), "some snapshot was dropped, and its file went with it"
    loaded = load_session(path, compiled=False)
    assert loaded.snapshots.steps == trainer.snapshots.steps and loaded.load_note is None


class Crash(BaseException):
    """The process dies here (kill -9, power cut): no except clause of the save runs."""


def _same_save(a, b) -> bool:
    """Whether two Trainers hold one and the same saved state: step, weights, every snapshot."""
    return (
        a.step == b.step
        and torch.equal(a.W, b.W)
        and a.snapshots.steps == b.snapshots.steps
        and all(torch.equal(a.snapshots.at(s), b.snapshots.at(s)) for s in a.snapshots.steps)
    )


def _dies_at(n: int, real):
    """`real`, except that its call number `n` (from 0) is where the process dies."""
    calls = itertools.count()

    def call(*args, **kwargs):
        if next(calls) == n:
            raise Crash
        return real(*args, **kwargs)

    return call


@pytest.mark.parametrize("call", ["replace", "unlink"])
def test_a_crash_anywhere_in_a_save_leaves_one_whole_save(
    tmp_path, small_config, monkeypatch, call
) -> None:
    """Die at each rename (or removal) of a save in turn: what loads is the previous save or
    the new one, whole, never a mix; the next save clears what the dead one left."""
    trainer = Trainer(small_config, compiled=False)
    trainer.snapshots = Snapshots(trainer.log_every, capacity=4)  # the save adds and drops some
    trainer.snapshots.offer(0, trainer.W)
    trainer.run(until=60)
    save_session(trainer, tmp_path / "previous")
    previous = load_session(tmp_path / "previous", compiled=False)
    trainer.run(until=120)
    real = getattr(os, call)
    outcomes = []
    for n in itertools.count():
        path = shutil.copytree(tmp_path / "previous", tmp_path / f"crash-{n}")
        monkeypatch.setattr(os, call, _dies_at(n, real))
        try:
            save_session(trainer, path)
            crashed = False
        except Crash:
            crashed = True
        finally:
            monkeypatch.undo()
        loaded = load_session(path, compiled=False)
        assert loaded.load_note is None, "every snapshot it lists is there"
        if _same_save(loaded, trainer):
            outcomes.append("new")
        else:
            assert _same_save(loaded, previous), f"a crash at {call} #{n} mixed two saves"
            outcomes.append("previous")
        save_session(trainer, path)  # the next save, after a restart
        assert _snapshot_files(path) == _listed(path), "nothing left behind"
        if not crashed:
            break
    if call == "replace":  # each new snapshot, then the weights' rename commits, then the record
        assert outcomes[0] == "previous" and outcomes[-2:] == ["new", "new"], outcomes
        assert len(outcomes) >= 4, outcomes
    else:  # the dropped snapshots' files go only once the new save is whole
        assert outcomes == ["new"] * len(outcomes) and len(outcomes) >= 2, outcomes


def test_diverged_weights_are_not_saved(saved) -> None:
    trainer, path = saved
    with torch.no_grad():
        trainer.W[0, 0, 0] = float("inf")
    with pytest.raises(SessionError, match="not finite"):
        save_session(trainer, path)
    assert load_session(path, compiled=False).step == 60


def test_mark_stopped_clears_running_and_keeps_the_save(saved) -> None:
    trainer, path = saved
    save_session(trainer, path, running=True)
    assert session_info(path).running
    mark_stopped(path)
    assert not session_info(path).running
    assert load_session(path, compiled=False).step == 60


# -- autosave -------------------------------------------------------------------------------------
def test_autosaver_saves_every_interval_and_reports_each_save(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False, log_every=10)
    saved: list[bool] = []
    autosaver = Autosaver(tmp_path / "auto", interval=0, on_saved=saved.append)
    trainer.on("log", autosaver)
    trainer.on("log", lambda t: autosaver.wait())  # each write done before the next log
    trainer.run(until=30)
    assert saved == [True, True, True] and session_info(tmp_path / "auto").running
    autosaver.save(trainer, running=False)
    assert saved[-1] is False and not session_info(tmp_path / "auto").running

    (tmp_path / "file").write_text("not a folder")
    errors: list[SessionError] = []
    failing = Autosaver(tmp_path / "file" / "auto", interval=0, on_error=errors.append)
    failing.save(trainer, running=True)
    assert len(errors) == 1 and "cannot save" in str(errors[0])


def test_a_save_after_the_last_one_does_not_mark_the_session_running(
    tmp_path, small_config
) -> None:
    """`train` ends with finish(); a viewer's save that its server thread runs later (it asks
    running=True) must not leave a record that says running once the process has gone."""
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=20)
    autosaver = Autosaver(tmp_path / "run", interval=0)
    autosaver.save(trainer, running=True)
    assert session_info(tmp_path / "run").running
    autosaver.finish(trainer)
    autosaver.save(trainer, running=True)  # the viewer's, late
    assert not session_info(tmp_path / "run").running
    assert read_record(tmp_path / "run")["writer"]["running"] is False


@pytest.fixture
def stalled_disk(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The first fsync of the test (whoever makes it) stalls until `release` is set; `started`
    says it began. Every later one goes straight to the real fsync."""
    started, release = threading.Event(), threading.Event()
    real = os.fsync

    def fsync(fd: int) -> None:
        if not started.is_set():
            started.set()
            assert release.wait(30), "the test never let the write go on"
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return started, release


def test_an_autosave_leaves_the_disk_to_a_thread_of_its_own(
    tmp_path, small_config, stalled_disk
) -> None:
    started, release = stalled_disk
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    saved: list[bool] = []
    autosaver = Autosaver(tmp_path / "s", interval=0, on_saved=saved.append)
    autosaver(trainer)  # as the loop calls it: returns while its write is stalled
    assert started.wait(10) and autosaver.writing
    assert saved == [] and not (tmp_path / "s" / RECORD_FILE).exists()
    trainer.run(until=80)  # training goes on meanwhile
    autosaver(trainer)  # a write is under way: this call starts none
    release.set()
    autosaver.wait()
    assert saved == [True] and load_session(tmp_path / "s", compiled=False).step == 60


def test_a_final_save_waits_for_the_write_under_way(tmp_path, small_config, stalled_disk) -> None:
    started, release = stalled_disk
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    saved: list[bool] = []
    autosaver = Autosaver(tmp_path / "s", interval=0, on_saved=saved.append)
    autosaver(trainer)
    assert started.wait(10)
    trainer.run()
    final = threading.Thread(target=autosaver.save, args=(trainer,), kwargs={"running": False})
    final.start()
    final.join(0.5)
    assert final.is_alive(), "the final save waits for the autosave under way"
    release.set()
    final.join(30)
    assert saved == [True, False], "in the order they were written"
    info = session_info(tmp_path / "s")
    assert info.step == trainer.step and not info.running


def test_two_saves_of_one_directory_take_turns(tmp_path, small_config, stalled_disk) -> None:
    started, release = stalled_disk
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    autosaver = Autosaver(tmp_path / "s", interval=0)
    autosaver(trainer)
    assert started.wait(10)
    trainer.run(until=120)
    manual = threading.Thread(target=save_session, args=(trainer, tmp_path / "s"))
    manual.start()  # the app's `s` while the autosave writes
    manual.join(0.5)
    assert manual.is_alive(), "it waits for its turn: the two saves' files never interleave"
    release.set()
    manual.join(30)
    autosaver.wait()
    loaded = load_session(tmp_path / "s", compiled=False)
    assert _same_save(loaded, trainer) and loaded.load_note is None
    assert _snapshot_files(tmp_path / "s") == _listed(tmp_path / "s")


def test_a_save_never_goes_back_to_an_earlier_capture(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=60)
    earlier = capture(trainer, running=True)  # an autosave's copy, its write not yet begun
    trainer.run(until=100)
    save_session(trainer, tmp_path / "s")  # a later save gets to the disk first
    write_session(earlier, tmp_path / "s")
    assert load_session(tmp_path / "s", compiled=False).step == 100
    assert not session_info(tmp_path / "s").running
    save_session(trainer, tmp_path / "s", running=True)
    mark_stopped(tmp_path / "s")
    write_session(capture(trainer, running=True), tmp_path / "s")  # a capture after: written
    assert session_info(tmp_path / "s").running


def test_an_autosave_error_reaches_on_error_or_the_next_call(tmp_path, small_config) -> None:
    trainer = Trainer(small_config, compiled=False)
    trainer.run(until=20)
    (tmp_path / "file").write_text("not a folder")
    errors: list[SessionError] = []
    autosaver = Autosaver(tmp_path / "file" / "s", interval=0, on_error=errors.append)
    autosaver(trainer)
    autosaver.wait()
    assert len(errors) == 1 and "cannot save" in str(errors[0])
    quiet = Autosaver(tmp_path / "file" / "s", interval=0)
    quiet(trainer)
    while quiet.writing:
        time.sleep(0.01)
    with pytest.raises(SessionError, match="cannot save"):
        quiet(trainer)  # on the training thread, as when it saved there


def test_jumps_kept_from_thinned_records_are_saved_and_loaded(tmp_path) -> None:
    from engine.jumps import Jump, history_jumps
    from toygeom_tui.export import session_jumps

    trainer = Trainer(RunConfig(name="kept", n_features=5, d_hidden=2, n_inst=2, steps=20,
                                device="cpu"), compiled=False)  # fmt: skip
    trainer.run()
    kept = [Jump(8, 4, 1, 3, "1/2", "2/5", 0.25, 0.125), Jump(12, 6, 0, 0, "0", "1", None, 0.5)]
    trainer.history.restore_jumps(kept)
    save_session(trainer, tmp_path / "run")
    loaded = load_session(tmp_path / "run", compiled=False)
    assert loaded.history.kept_jumps() == sorted(kept, key=lambda j: j.step)
    assert set(history_jumps(loaded.history)) >= set(kept)
    assert [j["step"] for j in session_jumps(tmp_path / "run")["jumps"]][:2] == [8, 12]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"instance": 2}, "does not fit this run"),  # n_inst is 2
        ({"feature": -1}, "does not fit this run"),
        ({"left_step": 9}, "does not fit this run"),  # after its step
        ({"after": "1/2"}, "two different named fractions"),
        ({"before": "7/9"}, "two different named fractions"),
        ({"step": 8.0}, "are integers"),
        ({"loss_after": "x"}, "finite number or null"),
        ({"extra": 1}, "a jump has the fields"),
    ],
)
def test_a_saved_jump_that_does_not_fit_is_a_one_line_error(tmp_path, change, words) -> None:
    from engine.jumps import Jump

    trainer = Trainer(RunConfig(name="kept", n_features=5, d_hidden=2, n_inst=2, steps=5,
                                device="cpu"), compiled=False)  # fmt: skip
    trainer.run()
    trainer.history.restore_jumps([Jump(8, 4, 1, 3, "1/2", "2/5", 0.25, 0.125)])
    directory = save_session(trainer, tmp_path / "run")
    record = json.loads((directory / RECORD_FILE).read_text())
    record["jumps"][0].update(change)
    record["saved_at"] = 1e12  # newer than the weights' embedded copy: this one is read
    (directory / RECORD_FILE).write_text(json.dumps(record))
    with pytest.raises(SessionError, match="field 'jumps'") as err:
        load_session(directory, compiled=False)
    assert words in str(err.value) and "\n" not in str(err.value)
