"""Geometry as JSON or CSV, and history as CSV: of a saved session (the `export` command) or of a
live Trainer (the app's export)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import torch

from engine.config import RunConfig, resolve_feature_probability
from engine.geometry import InstanceGeometry, analyze
from engine.session import RECORD_FILE, config_from_record, load_tensors, read_record

CSV_COLUMNS = (
    "instance",
    "feature_probability",
    "feature",
    "norm",
    "dimensionality",
    "interference",
    "nearest_fraction",
    "fraction_distance",
    "configuration",
    "component",
    "component_size",
    "component_rank",
    "partners",
)


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def session_geometry(directory: str | Path, k_partners: int = 5) -> dict[str, Any]:
    """The export document: run facts plus per-instance, per-feature geometry.

    Raises engine.session.SessionError for a missing or invalid session.
    """
    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    tensors = load_tensors(directory, config)
    losses = record.get("final_loss") or [None] * config.n_inst
    return _document(str(directory), config, record["step"], tensors["W"], losses, k_partners)


def trainer_geometry(trainer: Any, k_partners: int = 5) -> dict[str, Any]:
    """The export document of a live engine Trainer, from one consistent `snapshot()`.

    Raises ValueError for non-finite weights (a diverged run has no geometry).
    """
    W, _, step = trainer.snapshot()
    loss = trainer.latest_loss
    losses = [None] * trainer.config.n_inst if loss is None else [_num(v) for v in loss.tolist()]
    where = str(trainer.session_dir) if trainer.session_dir is not None else None
    return _document(where, trainer.config, step, W, losses, k_partners)


def _document(
    where: str | None,
    config: RunConfig,
    step: int,
    W: torch.Tensor,
    losses: list[float | None],
    k_partners: int,
) -> dict[str, Any]:
    """W (inst hidden feats); losses (inst,) with None where unknown."""
    p = resolve_feature_probability(config)[:, 0].tolist()
    instances = analyze(W, k_partners=k_partners)
    return {
        "session": where,
        "name": config.name,
        "step": step,
        "n_features": config.n_features,
        "d_hidden": config.d_hidden,
        "instances": [_instance(g, p[g.index], losses[g.index]) for g in instances],
    }


def _instance(g: InstanceGeometry, p: float, loss: float | None) -> dict[str, Any]:
    return {
        "index": g.index,
        "feature_probability": p,
        "loss": loss,
        "frobenius_sq": _num(g.frobenius_sq),
        "dims_per_feature": _num(g.dims_per_feature),
        "sum_dimensionality": _num(sum(f.dimensionality for f in g.features)),
        "features": [
            {
                "index": f.index,
                "norm": _num(f.norm),
                "dimensionality": _num(f.dimensionality),
                "interference": _num(f.interference),
                "nearest_fraction": f.nearest_fraction,
                "fraction_distance": _num(f.fraction_distance),
                "configuration": f.configuration,
                "component": f.component,
                "component_size": f.component_size,
                "component_rank": f.component_rank,
                "partners": [
                    {"index": q.index, "cosine": _num(q.cosine), "dot": _num(q.dot)}
                    for q in sorted(f.partners, key=lambda q: -abs(q.cosine))
                ],
            }
            for f in g.features
        ],
    }


def geometry_json(directory: str | Path, k_partners: int = 5) -> str:
    return document_json(session_geometry(directory, k_partners))


def document_json(doc: dict[str, Any]) -> str:
    """A geometry document (session_geometry, trainer_geometry) as JSON text."""
    return json.dumps(doc, indent=1) + "\n"


def history_csv(history: Any) -> str:
    """An engine History as CSV: one row per (logged step, instance)."""
    steps, loss, frob = history.metrics_arrays()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("step", "instance", "loss", "frobenius_sq"))
    for row, step in enumerate(steps.tolist()):
        for inst in range(loss.shape[1]):
            writer.writerow((step, inst, f"{loss[row, inst]:.6g}", f"{frob[row, inst]:.6g}"))
    return out.getvalue()


def session_history_csv(directory: str | Path) -> str:
    """The history of a saved session as CSV (loads the session without training it)."""
    from engine.session import load_session

    return history_csv(load_session(directory, compiled=False).history)


def geometry_csv(directory: str | Path, k_partners: int = 5) -> str:
    return document_csv(session_geometry(directory, k_partners))


def document_csv(doc: dict[str, Any]) -> str:
    """A geometry document as CSV: one row per (instance, feature), columns CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inst in doc["instances"]:
        for f in inst["features"]:
            partners = " ".join(f"{q['index']}:{q['cosine']:+.3f}" for q in f["partners"])
            # CSV_COLUMNS[3:-1] are the feature's own fields, under the same names.
            fields = [f[name] for name in CSV_COLUMNS[3:-1]]
            writer.writerow(
                [inst["index"], inst["feature_probability"], f["index"], *fields, partners]
            )
    return out.getvalue()
