"""A saved session's geometry as JSON or CSV (the `export` command; the app's export too)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from engine.config import resolve_feature_probability
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
    p = resolve_feature_probability(config)[:, 0].tolist()
    losses = record.get("final_loss") or [None] * config.n_inst
    instances = analyze(tensors["W"], k_partners=k_partners)
    return {
        "session": str(directory),
        "name": config.name,
        "step": record["step"],
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
    return json.dumps(session_geometry(directory, k_partners), indent=1) + "\n"


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


def session_history_csv(directory: str | Path, k_partners: int = 5) -> str:
    """The history of a saved session as CSV (loads the session without training it)."""
    from engine.session import load_session

    return history_csv(load_session(directory, compiled=False).history)


def geometry_csv(directory: str | Path, k_partners: int = 5) -> str:
    doc = session_geometry(directory, k_partners)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inst in doc["instances"]:
        for f in inst["features"]:
            partners = " ".join(f"{q['index']}:{q['cosine']:+.3f}" for q in f["partners"])
            writer.writerow(
                [
                    inst["index"],
                    inst["feature_probability"],
                    f["index"],
                    f["norm"],
                    f["dimensionality"],
                    f["interference"],
                    f["nearest_fraction"],
                    f["fraction_distance"],
                    f["configuration"],
                    f["component"],
                    f["component_size"],
                    f["component_rank"],
                    partners,
                ]
            )
    return out.getvalue()
