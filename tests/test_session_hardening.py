"""Loading a session never hangs and never shows a traceback, whatever its directory holds."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine import Trainer, preset
from engine.safe_read import UnsafeFile, read_regular
from engine.session import SessionError, load_session, save_session, session_info
from toygeom_tui.cli import main


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    trainer = Trainer(preset("pentagon").replace(steps=20))
    trainer.run()
    return save_session(trainer, tmp_path_factory.mktemp("s") / "run")


def copy_of(saved: Path, tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    directory.mkdir(parents=True)
    for name in ("session.json", "weights.safetensors"):
        (directory / name).write_bytes((saved / name).read_bytes())
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
