"""Geometry as JSON or CSV, history as CSV, and the jump list as JSON or CSV: of a saved session
(the `export` command) or of a live run (the app's export).

A feature's partners are the other features j with the largest |Ŵ_i·W_j| (the terms of D_i's
denominator), in that order, as everywhere in the app."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from engine import jumps
from engine.config import RunConfig, resolve_feature_probability
from engine.geometry import InstanceGeometry, analyze
from engine.session import (
    FIRST_SNAPSHOT_VERSION,
    RECORD_FILE,
    SessionError,
    config_from_record,
    kept_jumps,
    load_tensors,
    read_record,
    saved_snapshots,
)

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


JUMP_COLUMNS = tuple(field for field in jumps.Jump.__slots__)


def session_geometry(
    directory: str | Path, k_partners: int = 5, at: int | None = None
) -> dict[str, Any]:
    """The export document: run facts plus per-instance, per-feature geometry; `at`: of the
    latest weight snapshot at or before that step (the saved weights count as one), its `step`
    saying which.

    Raises engine.session.SessionError for a missing or invalid session, or no such snapshot.
    """
    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    tensors = load_tensors(directory, config)
    losses = record.get("final_loss") or [None] * config.n_inst
    if at is None or at >= record["step"]:
        return _document(str(directory), config, record["step"], tensors["W"], losses, k_partners)
    step, W = _snapshot_at_or_before(directory, record, tensors, at)
    return _document(str(directory), config, step, W, _logged_loss(tensors, step), k_partners)


def _snapshot_at_or_before(
    directory: Path, record: dict[str, Any], tensors: dict[str, torch.Tensor], at: int
) -> tuple[int, torch.Tensor]:
    if record["format_version"] < FIRST_SNAPSHOT_VERSION:
        raise SessionError(
            f"{directory}: saved in session format {record['format_version']}, which kept no "
            f"weight snapshots; only its saved step {record['step']} can be exported"
        )
    try:
        saved = saved_snapshots(directory, record, tensors)
    except ValueError as err:
        raise SessionError(f"{directory}: weight snapshots do not fit ({err})") from None
    steps = saved.steps.tolist() if saved is not None else []
    files = (record.get("snapshots") or {}).get("files")  # format 3: what the session lists
    listed = [step for step, _ in files] if files is not None else steps
    wanted = max((s for s in listed if s <= at), default=None)
    if wanted is None:
        first = f"the first is at step {listed[0]}" if listed else "it has none"
        raise SessionError(f"{directory}: no weight snapshot at or before step {at} ({first})")
    if wanted in saved.unreadable:  # never another step's in its place, unsaid
        raise SessionError(
            f"{saved.unreadable[wanted]}; the weight snapshot at step {wanted} cannot be exported"
        )
    W = saved.W[steps.index(wanted)]
    if W.shape != tensors["W"].shape or not bool(torch.isfinite(W).all()):
        raise SessionError(f"{directory}: weight snapshot at step {wanted} is broken")
    return wanted, W


def _logged_loss(tensors: dict[str, torch.Tensor], step: int) -> list[float | None]:
    """Each instance's logged loss at `step` (None where the history has no record there)."""
    steps = tensors.get("history.metrics.steps")
    values = tensors.get("history.metrics.values")
    n_inst = tensors["W"].shape[0]
    if steps is None or values is None:
        return [None] * n_inst
    found = np.flatnonzero(steps.numpy() == step)
    if not len(found):
        return [None] * n_inst
    return [_num(v) for v in values[found[0], 0].tolist()]


def session_jumps(directory: str | Path) -> dict[str, Any]:
    """The jump list of a saved session (engine.jumps): run facts, the criteria, every jump."""
    directory = Path(directory)
    record = read_record(directory)
    config = config_from_record(record, directory / RECORD_FILE)
    tensors = load_tensors(directory, config)
    arrays = {k: v.numpy() for k, v in tensors.items() if k.startswith("history.")}
    found = []
    if "history.dims.steps" in arrays:
        metrics = arrays["history.metrics.values"]
        found = jumps.find_jumps(
            arrays["history.dims.steps"],
            arrays["history.dims.values"],
            arrays["history.metrics.steps"],
            metrics[:, 0] if len(metrics) else None,
        )
    found = jumps.merge_jumps(kept_jumps(record, directory), found)  # as history_jumps
    return {
        "session": str(directory),
        "name": config.name,
        "step": record["step"],
        "criteria": {
            "level_tol": jumps.LEVEL_TOL,
            "level_margin": jumps.LEVEL_MARGIN,
            "hold_records": jumps.HOLD_RECORDS,
            "max_transition_records": jumps.MAX_TRANSITION_RECORDS,
            "suddenness": jumps.SUDDENNESS,
        },
        "jumps": [jump.as_dict() for jump in found],
    }


def jumps_csv(doc: dict[str, Any]) -> str:
    """A jump document (session_jumps) as CSV: one row per jump, columns JUMP_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JUMP_COLUMNS)
    for jump in doc["jumps"]:
        writer.writerow(["" if jump[c] is None else jump[c] for c in JUMP_COLUMNS])
    return out.getvalue()


def run_geometry(run: Any, k_partners: int = 5) -> dict[str, Any]:
    """The export document of a live run (engine.run.Run, or a Trainer), from one consistent
    `snapshot()`.

    Raises ValueError for non-finite weights (a diverged run has no geometry).
    """
    W, _, step = run.snapshot()
    loss = run.latest_loss
    losses = [None] * run.config.n_inst if loss is None else [_num(v) for v in loss.tolist()]
    where = str(run.session_dir) if run.session_dir is not None else None
    return _document(where, run.config, step, W, losses, k_partners)


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
                    {
                        "index": q.index,
                        "projection": _num(q.projection),
                        "cosine": _num(q.cosine),
                        "dot": _num(q.dot),
                    }
                    for q in f.partners  # by |Ŵ_i·W_j|, descending (engine.geometry)
                ],
            }
            for f in g.features
        ],
    }


def geometry_json(directory: str | Path, k_partners: int = 5, at: int | None = None) -> str:
    return document_json(session_geometry(directory, k_partners, at))


def document_json(doc: dict[str, Any]) -> str:
    """A geometry document (session_geometry, run_geometry) as JSON text."""
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
    """The history of a saved session as CSV."""
    from engine.session import load_saved

    return history_csv(load_saved(directory).history)


def geometry_csv(directory: str | Path, k_partners: int = 5, at: int | None = None) -> str:
    return document_csv(session_geometry(directory, k_partners, at))


def document_csv(doc: dict[str, Any]) -> str:
    """A geometry document as CSV: one row per (instance, feature), columns CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for inst in doc["instances"]:
        for f in inst["features"]:
            partners = " ".join(f"{q['index']}:{q['projection']:+.3f}" for q in f["partners"])
            # CSV_COLUMNS[3:-1] are the feature's own fields, under the same names.
            fields = [f[name] for name in CSV_COLUMNS[3:-1]]
            writer.writerow(
                [inst["index"], inst["feature_probability"], f["index"], *fields, partners]
            )
    return out.getvalue()
