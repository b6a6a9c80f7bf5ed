"""The user's keys: a `[keymap]` table of binding id → keys in config.toml, in the platform's
config directory (~/.config/toygeom-tui on Linux, ~/Library/Application Support/toygeom-tui on
macOS, %APPDATA%\\toygeom-tui on Windows; platformdirs knows each convention). Example:

    [keymap]
    "app.toggle_pause" = "ctrl+t"            # p no longer pauses; ctrl+t does
    "dashboard.next_instance" = "j,down,n"   # comma-separated keys, as in a Binding

The app hands the table to Textual's keymap (`App.set_keymap`). An entry that cannot apply
(unknown id, empty or non-string keys) is left out and reported, so the default stays.
No textual import here: the CLI names the path in `--help` without loading the app.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from pathlib import Path

CONFIG_FILE = "config.toml"


def config_path() -> Path:
    """Where the user's config.toml lives (it need not exist)."""
    from platformdirs import user_config_path

    return user_config_path("toygeom-tui", appauthor=False) / CONFIG_FILE


def read_keymap(path: Path, binding_ids: Collection[str]) -> tuple[dict[str, str], list[str]]:
    """(keymap, problems): the entries of `path`'s [keymap] that name one of `binding_ids` with
    keys, and one short line per entry (or file problem) that was left out. A missing file is
    no problem: it is an empty keymap."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, []
    except (OSError, UnicodeDecodeError) as err:
        return {}, [f"cannot read it ({getattr(err, 'strerror', None) or err})"]
    try:
        table = tomllib.loads(text).get("keymap", {})
    except tomllib.TOMLDecodeError as err:
        return {}, [f"not valid TOML ({err})"]
    if not isinstance(table, dict):
        return {}, ["keymap is not a table; write [keymap] and binding id = keys under it"]
    keymap, problems = {}, []
    for binding_id, keys in table.items():
        if binding_id not in binding_ids:
            problems.append(f"{binding_id!r} is no binding id (? lists them)")
        elif not _valid_keys(keys):
            problems.append(f'{binding_id!r}: keys must be a string like "ctrl+t" or "j,down"')
        else:
            keymap[binding_id] = keys
    return keymap, problems


def _valid_keys(keys: object) -> bool:
    """A non-empty, comma-separated list of key names without spaces (one key may be ",")."""
    if not isinstance(keys, str) or not keys.strip():
        return False
    names = [keys] if keys == "," else keys.split(",")
    return all(name and not any(c.isspace() for c in name) for name in names)
