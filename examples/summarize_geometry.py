"""Summarise an exported geometry: D* per instance and how features cluster on named fractions.

toygeom-tui train --out sessions/fg
toygeom-tui export sessions/fg > fg.json
python examples/summarize_geometry.py fg.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter


def main(path: str) -> None:
    with open(path) as f:
        doc = json.load(f)
    print(
        f"{doc['name']}: {doc['n_features']} features in {doc['d_hidden']} dims, step {doc['step']}"
    )
    print(
        f"{'inst':>4} {'1/p':>6} {'loss':>8} {'‖W‖²':>7} {'D*':>6} {'ΣD_i':>6}  "
        "features within 0.02 of a named fraction (learned features only)"
    )
    near: Counter[str] = Counter()
    learned_total = 0
    for inst in doc["instances"]:
        learned = [f for f in inst["features"] if f["configuration"] != "not represented"]
        learned_total += len(learned)
        on_line = Counter(f["nearest_fraction"] for f in learned if f["fraction_distance"] < 0.02)
        near.update(on_line)
        top = ", ".join(f"{label}×{n}" for label, n in on_line.most_common(4))
        loss = inst["loss"] if inst["loss"] is not None else float("nan")
        print(
            f"{inst['index']:>4} {1 / inst['feature_probability']:>6.2f} {loss:>8.4f} "
            f"{inst['frobenius_sq']:>7.1f} {inst['dims_per_feature']:>6.3f} "
            f"{inst['sum_dimensionality']:>6.2f}  {len(learned):>3} learned; {top}"
        )
    share = sum(near.values()) / max(learned_total, 1)
    print(
        f"all instances: {share:.0%} of learned features within 0.02 of a named fraction: "
        + ", ".join(f"{label}×{n}" for label, n in near.most_common())
    )


if __name__ == "__main__":
    main(sys.argv[1])
