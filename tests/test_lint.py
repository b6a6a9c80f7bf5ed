"""The code stays ruff-clean (the rules are in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is in the test extra")
def test_ruff_check_is_clean() -> None:
    command = [sys.executable, "-m", "ruff", "check", str(ROOT)]
    out = subprocess.run(command, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
