"""The user's keymap file: read, validated, applied through Textual's keymap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.config import RunConfig
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp, binding_ids
from toygeom_tui.keymap import config_path, read_keymap
from toygeom_tui.screens.dashboard import DashboardScreen
from toygeom_tui.screens.help import binding_rows

pytestmark = pytest.mark.timeout(60)


def test_the_config_file_follows_the_platform_convention(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert config_path() == tmp_path / "toygeom-tui" / "config.toml"
    out = subprocess.run(
        [sys.executable, "-m", "toygeom_tui", "--help"], capture_output=True, text=True
    )
    assert f"ids) in {config_path()}\n" in out.stdout and "[keymap]" in out.stdout


def test_reading_keeps_good_entries_and_names_bad_ones(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert read_keymap(path, {"app.quit"}) == ({}, []), "no file: defaults, no complaint"
    path.write_text(
        '[keymap]\n"app.quit" = "ctrl+q"\n"app.nope" = "x"\n"app.help" = ""\n"app.save" = 3\n'
    )
    keymap, problems = read_keymap(path, {"app.quit", "app.help", "app.save"})
    assert keymap == {"app.quit": "ctrl+q"}
    assert len(problems) == 3 and "'app.nope' is no binding id" in problems[0]
    path.write_text("[keymap\n")
    keymap, problems = read_keymap(path, {"app.quit"})
    assert keymap == {} and "not valid TOML" in problems[0]


def test_every_binding_id_is_known_to_the_keymap() -> None:
    ids = binding_ids()
    assert {"app.toggle_pause", "dashboard.next_instance", "instance_detail.sort"} <= ids


async def test_the_keymap_file_changes_a_binding(small_config: RunConfig, tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[keymap]\n"dashboard.next_instance" = "z"\n"no.such" = "y"\n')
    trainer = Trainer(small_config, compiled=False)
    app = ToygeomApp(trainer, autostart=False, keymap_path=path)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("z")
        assert app.dashboard.selected == 1, "z moves down now"
        await pilot.press("j")
        assert app.dashboard.selected == 1, "j no longer does"
        await pilot.press("k")
        assert app.dashboard.selected == 0, "the bindings not in the file keep their keys"
        warnings = [n.message for n in app._notifications if n.severity == "warning"]
        assert len(warnings) == 1 and "'no.such'" in warnings[0] and str(path) in warnings[0]
        rows = binding_rows(DashboardScreen.BINDINGS, app.keymap)
        assert ("z", "Next", "dashboard.next_instance") in rows, "help shows the remapped key"
