"""Sessions as format 2 wrote them (every snapshot inside the weights file), made from a saved
session of today's format."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from engine.session import RECORD_FILE, WEIGHTS_FILE
from engine.snapshot_files import file_name


def make_format_2(path: Path) -> None:
    """Rewrite a saved session as format 2 wrote it: snapshots.steps (n,) int64 and
    snapshots.W (n inst hidden feats) in weights.safetensors, no snapshot files, version 2."""
    record = json.loads((path / RECORD_FILE).read_text())
    files = record["snapshots"].pop("files")
    record["format_version"] = 2
    text = json.dumps(record, indent=2)
    tensors = load_file(path / WEIGHTS_FILE)
    weights = [load_file(path / file_name(step, digest))["W"] for step, digest in files]
    tensors["snapshots.steps"] = torch.tensor([step for step, _ in files], dtype=torch.int64)
    tensors["snapshots.W"] = torch.stack(weights) if weights else torch.zeros(0)
    (path / WEIGHTS_FILE).write_bytes(save(tensors, metadata={"session": text}))
    (path / RECORD_FILE).write_text(text + "\n")
    for step, digest in files:
        (path / file_name(step, digest)).unlink()
