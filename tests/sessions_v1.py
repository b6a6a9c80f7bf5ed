"""Sessions as format 1 wrote them (before weight snapshots), made from a saved session."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save

from engine.session import RECORD_FILE, WEIGHTS_FILE


def make_format_1(path: Path) -> None:
    """Rewrite a saved session as format 1 wrote it: no snapshots, version 1."""
    record = json.loads((path / RECORD_FILE).read_text())
    record["format_version"] = 1
    del record["snapshots"]
    text = json.dumps(record, indent=2)
    tensors = load_file(path / WEIGHTS_FILE)
    kept = {k: v for k, v in tensors.items() if not k.startswith("snapshots.")}
    (path / WEIGHTS_FILE).write_bytes(save(kept, metadata={"session": text}))
    (path / RECORD_FILE).write_text(text + "\n")
