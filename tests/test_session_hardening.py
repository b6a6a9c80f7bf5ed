"""Loading a session never hangs and never shows a traceback, whatever its directory holds."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from engine import Trainer, preset
from engine.safe_read import UnsafeFile, read_regular, read_safetensors, safetensors_header
from engine.session import (
    RECORD_FILE,
    SessionError,
    load_saved,
    load_session,
    save_session,
    session_info,
)
from engine.snapshot_files import FOLDER, file_name
from toygeom_tui.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    trainer = Trainer(preset("pentagon").replace(steps=20))
    trainer.run()
    return save_session(trainer, tmp_path_factory.mktemp("s") / "run")


def copy_of(saved: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(parents=True)
    shutil.copytree(saved, directory, dirs_exist_ok=True)  # record, weights, snapshots/
    return directory


def refused(directory: Path) -> str:
    """The one-line SessionError each way of loading gives (and no other exception)."""
    messages = []
    for load in (session_info, load_session):
        with pytest.raises(SessionError) as err:
            load(directory)
        messages.append(str(err.value))
    assert all("\n" not in m for m in messages)
    return messages[-1]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["session.json", "weights.safetensors"])
def test_a_fifo_is_refused_without_blocking(saved, tmp_path, name):
    directory = copy_of(saved, tmp_path)
    (directory / name).unlink()
    os.mkfifo(directory / name)
    assert "not a regular file" in refused(directory)


@pytest.mark.parametrize("name", ["session.json", "weights.safetensors"])
def test_links_are_refused_even_to_a_good_file(saved, tmp_path, name):
    directory = copy_of(saved, tmp_path)
    (directory / name).rename(tmp_path / name)
    (directory / name).symlink_to(tmp_path / name)
    assert "symbolic link" in refused(directory)


def test_a_link_to_dev_zero_is_refused(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    (directory / "weights.safetensors").unlink()
    (directory / "weights.safetensors").symlink_to("/dev/zero")
    assert "symbolic link" in refused(directory)


def test_enormous_files_are_refused_unread(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    with (directory / "weights.safetensors").open("r+b") as f:
        f.truncate(1 << 36)  # 64 GiB, sparse
    assert "far too large" in refused(directory)
    with (directory / "session.json").open("r+b") as f:
        f.truncate(1 << 24)
    assert "far too large" in refused(directory)


def test_deeply_nested_json_is_refused(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    (directory / "session.json").write_text("[" * 500_000 + "]" * 500_000)
    assert "nested too deeply" in refused(directory)


WRONG = [None, True, -1, 1.5, "x", [], {}, [1, "a"], {"a": []}]
FIELDS = [
    "format_version",
    "step",
    "total_steps",
    "config",
    "saved_at",
    "created_at",
    "history",
    "writer",
    "final_loss",
    "snapshots",
    "jumps",
]


@pytest.mark.parametrize("field", FIELDS)
def test_wrong_types_in_the_record_are_one_line_errors_or_harmless(saved, tmp_path, field):
    for i, value in enumerate(WRONG):
        directory = copy_of(saved, tmp_path / str(i))
        record = json.loads((directory / "session.json").read_text())
        record[field] = value
        if field != "saved_at":
            record["saved_at"] = 1e12  # newer than the weights' copy: this one is read
        (directory / "session.json").write_text(json.dumps(record))
        for load in (session_info, load_session):
            try:
                load(directory)
            except SessionError as err:
                assert "\n" not in str(err)


def test_the_cli_says_one_line_and_exits_2(saved, tmp_path, capsys):
    directory = copy_of(saved, tmp_path)
    (directory / "session.json").unlink()
    os.mkfifo(directory / "session.json")
    assert main(["export", str(directory)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a regular file" in err


def _break_garbage(path: Path, tmp_path: Path) -> None:
    path.write_bytes(pickle.dumps({"W": [1.0, 2.0]}))


def _break_missing(path: Path, tmp_path: Path) -> None:
    path.unlink()


def _break_truncated(path: Path, tmp_path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def _break_enormous(path: Path, tmp_path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(1 << 36)  # 64 GiB, sparse


def _break_link(path: Path, tmp_path: Path) -> None:
    path.rename(tmp_path / "elsewhere")
    path.symlink_to(tmp_path / "elsewhere")  # a link, even to the right content


def _break_fifo(path: Path, tmp_path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _break_other_snapshot(path: Path, tmp_path: Path) -> None:
    first = sorted(path.parent.glob("*.safetensors"))[0]
    path.write_bytes(first.read_bytes())  # a whole snapshot file, of another step


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (_break_garbage, "not a safetensors file"),
        (_break_missing, "missing"),
        (_break_truncated, "truncated"),
        (_break_enormous, "far too large"),
        (_break_link, "symbolic link"),
        (_break_fifo, "not a regular file"),
        (_break_other_snapshot, "not the snapshot its name says"),
    ],
)
def test_a_damaged_snapshot_file_is_left_out_and_named(saved, tmp_path, capsys, damage, words):
    directory = copy_of(saved, tmp_path)
    intact = load_session(directory)
    files = json.loads((directory / RECORD_FILE).read_text())["snapshots"]["files"]
    step, digest = files[1]
    damage(directory / file_name(step, digest), tmp_path)
    loaded = load_session(directory)  # the weights, the history and every other snapshot
    assert loaded.snapshots.steps == [s for s in intact.snapshots.steps if s != step]
    assert loaded.step == intact.step and (loaded.W == intact.W).all()
    note = loaded.load_note
    assert file_name(step, digest) in note and words in note and "\n" not in note, note
    assert load_saved(directory).note == note
    assert main(["export", str(directory), "--at", str(step)]) == 2  # not another step's, unsaid
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and file_name(step, digest) in err and words in err, err
    save_session(loaded, directory)  # saved again, it lists and keeps only what it holds
    assert not os.path.lexists(directory / file_name(step, digest))
    assert load_session(directory).load_note is None
    if damage is _break_link:
        assert (tmp_path / "elsewhere").exists(), "a link's target is never touched"


def test_read_regular_reads_a_regular_file_within_its_limit(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    assert read_regular(path, 5) == b"12345"
    with pytest.raises(UnsafeFile, match="too large"):
        read_regular(path, 4)
    with pytest.raises(UnsafeFile, match="cannot read"):
        read_regular(tmp_path / "missing", 4)
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_regular(tmp_path, 4)


def test_read_safetensors_checks_the_header_of_the_bytes_it_returns(tmp_path):
    import torch
    from safetensors.torch import save

    path = tmp_path / "t.safetensors"
    blob = save({"W": torch.ones(2, 3)}, metadata={"session": "{}"})
    path.write_bytes(blob)
    header, data = read_safetensors(path, len(blob))
    assert data == blob and header == safetensors_header(path, len(blob))
    assert header["W"]["shape"] == [2, 3] and header["__metadata__"] == {"session": "{}"}
    for damaged, words in ((blob[:-4], "truncated or corrupt"), (blob[:5], "truncated"),
                           (b"\xff" * 8 + blob[8:], "not a safetensors file")):  # fmt: skip
        path.write_bytes(damaged)
        with pytest.raises(UnsafeFile, match=words):
            read_safetensors(path, len(blob))


@pytest.mark.timeout(60)
def test_a_snapshots_folder_that_is_a_link_is_not_followed(saved, tmp_path):
    directory = copy_of(saved, tmp_path)
    steps = load_session(directory).snapshots.steps
    (directory / FOLDER).rename(tmp_path / "elsewhere")
    (directory / FOLDER).symlink_to(tmp_path / "elsewhere")  # even to the right files
    loaded = load_session(directory)
    assert steps and loaded.snapshots.steps == []
    assert "not a folder" in loaded.load_note and "\n" not in loaded.load_note
    loaded.extend(20)
    loaded.run()  # new snapshots to write: into a folder of the session's own
    save_session(loaded, directory)
    assert (directory / FOLDER).is_dir() and not (directory / FOLDER).is_symlink()
    assert load_session(directory).snapshots.steps == loaded.snapshots.steps != []
    assert sorted(p.name for p in (tmp_path / "elsewhere").iterdir()) == sorted(
        p.name for p in saved.joinpath(FOLDER).iterdir()
    ), "nothing written through the link, nothing removed there"


@pytest.mark.timeout(60)
def test_a_snapshot_file_cut_short_is_written_again_by_the_next_save(saved, tmp_path):
    """A snapshot file that lost its end on disk (a full disk, an interrupted copy) while the run
    goes on is left out by a load, and the run's next save writes it again; the intact files
    are left as they are (a save reads 8 bytes of each, it does not rewrite them)."""
    directory = copy_of(saved, tmp_path)
    trainer = load_session(directory)
    steps = trainer.snapshots.steps
    cut, intact = sorted((directory / FOLDER).iterdir())[:2]
    cut.write_bytes(cut.read_bytes()[:-1])
    before = intact.stat()
    damaged = load_session(directory)
    assert len(damaged.snapshots.steps) == len(steps) - 1 and damaged.load_note
    save_session(trainer, directory)  # what the autosaver does next
    again = load_session(directory)
    assert again.snapshots.steps == steps and not again.load_note
    after = intact.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
