"""One run's seeds, seen from that run: a session inside a sweep whose grid has `seed` (what
`train --seeds N` and the new-run form's seeds field make, or any sweep with a seed key) has as
siblings the runs sharing every other grid value. Together they are its group of seeds: per
instance, which seed did best (lowest final loss) and the spread to the worst (seed_spread).

Read from the sweep record alone (a bounded read of one regular file, engine.safe_read), so a
view can read it again every few seconds while a sweep still running fills it in.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.sweep import (
    DONE,
    PENDING,
    STATUSES,
    InstanceSeeds,
    SweepRunInfo,
    is_sweep,
    seed_siblings,
    seed_spread,
    sweep_info,
)


@dataclass(frozen=True)
class SeedGroup:
    """The seeds of the configuration of run `name` in `sweep`, as its record has them now."""

    sweep: Path  # the sweep directory; each run's session is sweep / run.name
    name: str  # the run being shown
    runs: tuple[SweepRunInfo, ...]  # the group's runs in record order, this one included
    spread: tuple[InstanceSeeds, ...]  # per instance, over the done runs

    @property
    def seed(self) -> Any:
        return self._run(self.name).values["seed"]

    def counts(self) -> dict[str, int]:
        """How many of the group's runs are in each status (pending, done, failed, diverged)."""
        return {s: sum(run.status == s for run in self.runs) for s in STATUSES}

    @property
    def filling(self) -> bool:
        """Some seed is still to train: its loss joins the spread when it finishes."""
        return any(run.status == PENDING for run in self.runs)

    def is_best(self, instance: int) -> bool:
        """Whether the run shown has the lowest final loss of its seeds at `instance`."""
        return instance < len(self.spread) and self.spread[instance].best_seed == self.seed

    def best_path(self, instance: int) -> Path | None:
        """The session of the best seed at `instance`; None before any seed has a loss there."""
        if instance >= len(self.spread) or self.spread[instance].best_seed is None:
            return None
        best = self.spread[instance].best_seed
        return next(self.sweep / r.name for r in self.runs if r.values["seed"] == best)

    def neighbour(self, delta: int) -> Path | None:
        """The session `delta` done seeds after this one in the group's order, wrapping round;
        None when no other seed is done (only a done run has a session)."""
        done = [run.name for run in self.runs if run.status == DONE or run.name == self.name]
        if len(done) < 2:
            return None
        return self.sweep / done[(done.index(self.name) + delta) % len(done)]

    def seen_from(self, session_dir: str | Path) -> SeedGroup | None:
        """The same group with the run in `session_dir` as the one shown; None if it is not one
        of the group's runs."""
        directory = _run_dir(session_dir)
        if directory.parent != self.sweep or all(r.name != directory.name for r in self.runs):
            return None
        return dataclasses.replace(self, name=directory.name)

    def _run(self, name: str) -> SweepRunInfo:
        return next(run for run in self.runs if run.name == name)


def seed_group(session_dir: str | Path) -> SeedGroup | None:
    """The group of seeds the session in `session_dir` belongs to; None when it is no run of a
    sweep with seeds, or the only seed of its configuration. SweepError if the sweep's record
    cannot be read."""
    directory = _run_dir(session_dir)
    sweep = directory.parent
    if not is_sweep(sweep):
        return None
    info = sweep_info(sweep)
    this = next((run for run in info.runs if run.name == directory.name), None)
    if this is None or "seed" not in this.values:
        return None
    runs = tuple(seed_siblings(info.runs, this.values))
    if len(runs) < 2:
        return None
    return SeedGroup(sweep, this.name, runs, tuple(seed_spread(runs, this.values)))


def _run_dir(session_dir: str | Path) -> Path:
    """`session_dir` absolute and without . or .. (which would hide its name), links kept."""
    return Path(os.path.abspath(session_dir))
