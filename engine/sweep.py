"""Sweeps: a base config times a `[grid]` of values; every combination is one run and one session.

    DIR/sweep.json        the sweep record: the spec, and per run its grid values, status
                          (pending, done, failed, diverged) and final figures; rewritten
                          atomically each time a run finishes
    DIR/<run name>/       that run's session (engine.session), named from its grid values,
                          e.g. `lr=0.001,seed=2`

A spec is TOML: the keys of a run's config (`preset` included) plus a `[grid]` table whose keys
are config keys and whose values are lists; the runs are their Cartesian product in the order
written. `seed_spec` makes the spec of `train --seeds N`: a grid over the seed alone, so seed k
of it trains exactly what `train --seed k` trains.

A run is trained by `train_run` wherever it is executed (a local process, a Ray worker) and comes
back as its session's files as bytes; `write_session_files` puts them under DIR. Executors live
in `engine.sweep_local` and `engine.sweep_ray`; `Sweep` drives either of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine.atomic import write_bytes_atomic, write_text_atomic
from engine.config import ConfigError, RunConfig, from_settings, preset, read_toml
from engine.safe_read import UnsafeFile, read_regular

FORMAT = "toygeom-sweep"
FORMAT_VERSION = 1
SWEEP_FILE = "sweep.json"
MAX_RECORD_BYTES = 64 << 20  # a record of thousands of runs is a few MB
POLL_SECONDS = 0.2  # how soon an executor notices it was asked to stop
MAX_RUNS = 10_000  # a grid larger than this is far likelier a typo than a plan
PENDING, DONE, FAILED, DIVERGED = "pending", "done", "failed", "diverged"
STATUSES = (PENDING, DONE, FAILED, DIVERGED)
FIGURES = ("loss", "frobenius_sq", "dims_star", "on_fractions")  # per-run scalars, see figures()
_UNSAFE = re.compile(r"[^A-Za-z0-9._+\-=~]")  # replaced by _ in a value's label
_RUN_NAME = re.compile(r"[A-Za-z0-9_+\-=~][A-Za-z0-9._+\-=~,]*")  # labels joined by commas


class SweepError(Exception):
    """A sweep directory that cannot be read or written; one line naming file and problem."""


@dataclass(frozen=True)
class SweepRun:
    """One combination of grid values and the config it makes."""

    name: str  # directory name under the sweep, from the grid values
    values: dict[str, Any]  # grid key -> this run's value, in grid order
    config: RunConfig


@dataclass(frozen=True)
class SweepSpec:
    """A base (config keys as written, `preset` included) and a grid of key -> list of values."""

    base: dict[str, Any]
    grid: dict[str, list]
    runs: tuple[SweepRun, ...] = field(compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {**self.base, "grid": self.grid}


def value_label(value: Any) -> str:
    """A grid value as it appears in a run's name: 0.001, 1e-05, true, uniform; a table or list
    by its values joined with '-' (geometric-0.5), cut to 48 characters plus a short hash."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Mapping):
        text = "-".join(value_label(v) for v in value.values())
    elif isinstance(value, list | tuple):
        text = "-".join(value_label(v) for v in value)
    else:
        text = str(value)
    text = _UNSAFE.sub("_", text)
    if len(text) > 48:
        digest = hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:8]
        text = f"{text[:39]}~{digest}"
    return text


def spec_from_dict(data: Mapping[str, Any], *, where: str = "spec") -> SweepSpec:
    """Validate a spec and expand its runs; ConfigError (one line naming the key) if it is bad."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a table of settings")
    base = {k: v for k, v in data.items() if k != "grid"}
    grid = data.get("grid")
    if grid is None:
        raise ConfigError(
            f"{where}: grid: missing; a sweep needs a [grid] table of lists, e.g. lr = [1e-3, 3e-3]"
        )
    if not isinstance(grid, Mapping) or not grid:
        raise ConfigError(f"{where}: grid: expected a table of key = [values], e.g. seed = [0, 1]")
    allowed = {f for f in RunConfig.__dataclass_fields__} | {"preset"}
    n_runs = 1
    for key, values in grid.items():
        if key not in allowed:
            raise ConfigError(
                f"{where}: grid.{key}: unknown setting; allowed: {', '.join(sorted(allowed))}"
            )
        if key in base:
            raise ConfigError(f"{where}: {key}: set both at the top and in [grid]; keep one")
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"{where}: grid.{key}: expected a non-empty list of values, got {values!r}"
            )
        labels = [value_label(v) for v in values]
        for label in labels:
            if labels.count(label) > 1:
                raise ConfigError(f"{where}: grid.{key}: value {label} appears twice")
        n_runs *= len(values)
    if n_runs > MAX_RUNS:
        raise ConfigError(f"{where}: grid: {n_runs:,} runs is more than {MAX_RUNS:,}; shrink it")
    if "preset" in base:  # a bad base preset is named once, not once per run
        try:
            preset(base["preset"])
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
    runs = tuple(_expand(base, dict(grid), where))
    return SweepSpec(dict(base), {k: list(v) for k, v in grid.items()}, runs)


def _expand(base: dict[str, Any], grid: dict[str, list], where: str) -> Iterator[SweepRun]:
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo, strict=True))
        name = ",".join(f"{k}={value_label(v)}" for k, v in values.items())
        try:
            config = from_settings(base | values, where=where)
        except ConfigError as err:
            raise ConfigError(f"{where}: run {name}: {err}") from None
        except TypeError as err:
            raise ConfigError(f"{where}: run {name}: {err}") from None
        yield SweepRun(name, values, config)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a spec from TOML."""
    return spec_from_dict(read_toml(path, "sweep spec"), where=str(path))


def seed_spec(config: RunConfig, n_seeds: int) -> SweepSpec:
    """The sweep of `train --seeds N`: seeds config.seed … config.seed + N − 1 of one config."""
    if n_seeds < 1:
        raise ConfigError(f"seeds: {n_seeds} is out of range; give at least 1")
    base = {k: v for k, v in config.to_dict().items() if k != "seed"}
    return spec_from_dict({**base, "grid": {"seed": [config.seed + k for k in range(n_seeds)]}})


# -- one run, wherever it executes -----------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    """What a finished run sends back: its session's files as bytes, figures and how it ended."""

    name: str
    status: str  # DONE, DIVERGED or FAILED
    files: dict[str, bytes]  # file name -> content; empty unless DONE
    figures: dict[str, Any] | None
    seconds: float
    error: str | None = None


def train_run(name: str, config: dict[str, Any], threads: int | None = None) -> RunResult:
    """Train one run to its end in this process and return its session as bytes.

    `config` is a RunConfig's dict (plain data, so any executor can ship it); `threads` sets
    torch's intra-op threads here (an executor running several runs at once gives each a share).
    Never raises for the run's own failure: that comes back as a FAILED result.
    """
    import torch

    from engine.session import save_session
    from engine.trainer import DIVERGED as TRAINER_DIVERGED
    from engine.trainer import Trainer

    start = time.perf_counter()
    try:
        if threads:
            torch.set_num_threads(threads)
        trainer = Trainer(RunConfig.from_dict(config))
        state = trainer.run()
        seconds = time.perf_counter() - start
        if state == TRAINER_DIVERGED:
            return RunResult(name, DIVERGED, {}, None, seconds, trainer.error)
        with tempfile.TemporaryDirectory(prefix="toygeom-run-") as tmp:
            save_session(trainer, tmp)
            files = {  # by path in the session: snapshots/ holds one file per snapshot
                str(p.relative_to(tmp)): p.read_bytes()
                for p in sorted(Path(tmp).rglob("*"))
                if p.is_file()
            }
        return RunResult(name, DONE, files, figures(trainer.W, trainer.latest_loss), seconds)
    except Exception as err:  # reported in the sweep record, the sweep goes on
        seconds = time.perf_counter() - start
        return RunResult(name, FAILED, {}, None, seconds, f"{type(err).__name__}: {err}")


def figures(W: Any, loss: Any) -> dict[str, Any]:
    """A run's final figures. W (inst hidden feats); loss (inst,) final loss per instance.

    loss: summed over instances (as the session browser shows it); frobenius_sq and dims_star:
    means over instances; on_fractions: represented features whose D_i sits within NAME_TOL of
    a named fraction, over all instances; plus the per-instance lists behind the means.
    """
    from engine.geometry import NAME_TOL, analyze, dims_per_feature, frobenius_sq

    frob = frobenius_sq(W).double().cpu().tolist()
    dstar = dims_per_feature(W).double().cpu().tolist()
    losses = [float(v) for v in loss.tolist()] if loss is not None else []
    on = sum(
        f.configuration != "not represented" and f.fraction_distance < NAME_TOL
        for inst in analyze(W.detach().cpu(), k_partners=0)
        for f in inst.features
    )
    return {
        "loss": math.fsum(losses) if losses else None,
        "frobenius_sq": math.fsum(frob) / len(frob),
        "dims_star": math.fsum(dstar) / len(dstar),
        "on_fractions": int(on),
        "per_instance": {"loss": losses, "frobenius_sq": frob, "dims_star": dstar},
    }


def write_session_files(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write a run's session files under `directory`, each atomically, session.json last (a
    session whose record is missing is not listed, so a crash between files leaves no half)."""
    from engine.session import RECORD_FILE
    from engine.snapshot_files import FOLDER, NAME

    directory.mkdir(parents=True, exist_ok=True)
    for name in sorted(files, key=lambda n: n == RECORD_FILE):
        folder, _, file = name.rpartition("/")  # a plain name, or snapshots/ and one of its names
        plain = not folder and bool(file) and not file.startswith(".")
        if not plain and not (folder == FOLDER and NAME.fullmatch(file)):
            raise SweepError(f"{directory}: refusing a session file named {name!r}")
        if folder:
            (directory / folder).mkdir(exist_ok=True)
        write_bytes_atomic(directory / name, files[name])


# -- the record ------------------------------------------------------------------------------------
def is_sweep(directory: Path) -> bool:
    return (Path(directory) / SWEEP_FILE).is_file()


def read_record(directory: str | Path) -> dict[str, Any]:
    """The validated sweep record of `directory`; SweepError if it is missing or broken."""
    path = Path(directory) / SWEEP_FILE
    if not os.path.lexists(path):
        raise SweepError(f"{directory}: not a sweep (no {SWEEP_FILE})")
    try:  # regular files only, bounded: a FIFO or a link to /dev/zero must not hang a scan
        record = json.loads(read_regular(path, MAX_RECORD_BYTES).decode("utf-8"))
    except UnsafeFile as err:
        raise SweepError(str(err)) from None
    except (UnicodeDecodeError, RecursionError) as err:
        raise SweepError(f"{path}: cannot read ({err})") from None
    except json.JSONDecodeError as err:
        raise SweepError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise SweepError(f"{path}: not a toygeom sweep record")
    version = record.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise SweepError(f"{path}: format version {version!r} is not one this toygeom-tui reads")
    runs = record.get("runs")
    if not isinstance(record.get("spec"), dict) or not isinstance(runs, list):
        raise SweepError(f"{path}: spec or runs missing")
    for run in runs:
        if not isinstance(run, dict) or not isinstance(run.get("name"), str):
            raise SweepError(f"{path}: a run entry has no name")
        if run.get("status") not in STATUSES or not isinstance(run.get("values"), dict):
            raise SweepError(f"{path}: run {run['name']!r} has no valid status or values")
        if not _RUN_NAME.fullmatch(run["name"]):
            raise SweepError(f"{path}: run name {run['name']!r} is not a safe directory name")
    return record


def load_sweep_spec(directory: str | Path) -> SweepSpec:
    """The spec a sweep directory was started with."""
    try:
        return spec_from_dict(read_record(directory)["spec"], where=str(Path(directory)))
    except ConfigError as err:
        raise SweepError(str(err)) from None


class Executor(Protocol):
    """Runs SweepRuns somewhere and yields their results as they finish (any order). Once `stop`
    is set it yields nothing more and ends what is still running before it returns."""

    def run(self, runs: list[SweepRun], stop: threading.Event) -> Iterator[RunResult]: ...


class Sweep:
    """A sweep directory being filled: which runs are missing, and a record kept up to date."""

    def __init__(self, directory: str | Path, spec: SweepSpec) -> None:
        self.directory = Path(directory)
        self.spec = spec
        now = time.time()
        self.record: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "spec": spec.to_dict(),
            "created_at": now,
            "saved_at": now,
            "runs": [
                {"name": r.name, "values": r.values, "status": PENDING, "figures": None}
                for r in spec.runs
            ],
        }
        self._entries = {entry["name"]: entry for entry in self.record["runs"]}

    @classmethod
    def create(cls, directory: str | Path, spec: SweepSpec) -> Sweep:
        """A new sweep in `directory` (absent or empty); its record is written at once."""
        directory = Path(directory)
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            if is_sweep(directory):
                raise SweepError(f"{directory}: already holds a sweep; continue it with --resume")
            raise SweepError(f"{directory}: exists and is not empty; choose another --out")
        sweep = cls(directory, spec)
        sweep.save()
        return sweep

    @classmethod
    def resume(cls, directory: str | Path) -> Sweep:
        """The sweep in `directory`, with each run's status taken from the record and its session:
        a run marked done whose session is missing or unfinished is pending again."""
        from engine.session import SessionError, session_info

        old = read_record(directory)
        sweep = cls(directory, load_sweep_spec(directory))
        sweep.record["created_at"] = old.get("created_at", sweep.record["created_at"])
        for entry in old["runs"]:
            mine = sweep._entries.get(entry["name"])
            if mine is None:
                continue
            mine.update({k: entry.get(k) for k in ("status", "figures", "error", "seconds")})
            if mine["status"] == DONE:
                try:
                    info = session_info(sweep.directory / mine["name"])
                    complete = info.step >= info.total_steps
                except SessionError:
                    complete = False
                if not complete:
                    mine.update(status=PENDING, figures=None)
        return sweep

    def missing(self) -> list[SweepRun]:
        """Runs still to do: pending or failed (diverged ones are a result, not retried)."""
        return [r for r in self.spec.runs if self._entries[r.name]["status"] in (PENDING, FAILED)]

    def finish(self, result: RunResult) -> None:
        """Store a finished run: its session first, then the record that says it is done."""
        if result.status == DONE:
            write_session_files(self.directory / result.name, result.files)
        entry = self._entries[result.name]
        entry.update(
            status=result.status,
            figures=result.figures,
            error=result.error,
            seconds=round(result.seconds, 3),
        )
        self.save()

    def save(self) -> None:
        self.record["saved_at"] = time.time()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            write_text_atomic(
                self.directory / SWEEP_FILE, json.dumps(self.record, indent=2, allow_nan=False)
            )
        except OSError as err:
            raise SweepError(f"{self.directory}: cannot write ({err.strerror or err})") from None

    def counts(self) -> dict[str, int]:
        return {s: sum(e["status"] == s for e in self.record["runs"]) for s in STATUSES}

    def run(
        self,
        executor: Executor,
        on_finished: Callable[[RunResult], None] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        """Run every missing run on `executor`, storing each as it finishes, until all are done
        or `stop` is set (a signal handler may set it: each store completes first)."""
        results = executor.run(self.missing(), stop or threading.Event())
        with contextlib.closing(results):  # if a store fails, the executor still ends its runs
            for result in results:
                self.finish(result)
                if on_finished is not None:
                    on_finished(result)


# -- reading a sweep back (views, notebooks) ------------------------------------------------------
FIGURE_LABELS = {
    "loss": "final loss",
    "frobenius_sq": "‖W‖²_F",
    "dims_star": "D*",
    "on_fractions": "on fractions",
}


@dataclass(frozen=True)
class SweepRunInfo:
    """One run as the record has it; `figures` only when it is done."""

    name: str
    values: dict[str, Any]
    status: str
    figures: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class SweepInfo:
    """What a sweep holds, read from its record alone (cheap)."""

    path: Path
    base: dict[str, Any]
    grid: dict[str, list]
    runs: tuple[SweepRunInfo, ...]
    saved_at: float

    @property
    def done(self) -> int:
        return sum(run.status == DONE for run in self.runs)

    @property
    def best(self) -> SweepRunInfo | None:
        """The done run with the lowest final loss."""
        scored = [r for r in self.runs if r.figures and r.figures.get("loss") is not None]
        return min(scored, key=lambda r: r.figures["loss"], default=None)


def sweep_info(directory: str | Path) -> SweepInfo:
    """Summary of the sweep in `directory`; SweepError if its record is missing or broken."""
    record = read_record(directory)
    spec = record["spec"]
    grid = spec.get("grid") if isinstance(spec.get("grid"), dict) else {}
    runs = tuple(
        SweepRunInfo(
            r["name"],
            r["values"],
            r["status"],
            r.get("figures") if isinstance(r.get("figures"), dict) else None,
            r.get("error"),
        )
        for r in record["runs"]
    )
    base = {k: v for k, v in spec.items() if k != "grid"}
    return SweepInfo(Path(directory), base, grid, runs, float(record.get("saved_at") or 0.0))


def figure_lines(
    runs: Iterable[SweepRunInfo], figure: str, x_key: str, line_key: str | None
) -> dict[Any, list[tuple[Any, float]]]:
    """`figure` against grid key `x_key`, one line per value of `line_key` (None: one line):
    {line value: [(x value, y), …] in the order the values first appear}. Where other grid keys
    vary too (seeds, say), y is the mean over those runs; runs not done are left out."""
    sums: dict[Any, dict[Any, list[float]]] = {}
    for run in runs:
        y = (run.figures or {}).get(figure)
        if run.status != DONE or y is None:
            continue
        line = _hashable(run.values.get(line_key)) if line_key is not None else None
        x = _hashable(run.values.get(x_key))
        sums.setdefault(line, {}).setdefault(x, []).append(float(y))
    return {
        line: [(x, math.fsum(ys) / len(ys)) for x, ys in points.items()]
        for line, points in sums.items()
    }


def _hashable(value: Any) -> Any:
    """Grid values may be tables or lists; those group by their label."""
    return value if isinstance(value, int | float | str | bool | None) else value_label(value)


@dataclass(frozen=True)
class InstanceSeeds:
    """One instance over the seeds of one configuration: the best (lowest final loss) seed and
    the spread, best to worst final loss, over the seeds with a finite final loss there."""

    instance: int
    best_seed: Any | None  # None: no seed has a finite final loss at this instance
    best_loss: float  # nan when best_seed is None
    worst_loss: float  # the worst seed's final loss; nan when best_seed is None
    seeds: int  # how many seeds the best and the spread are over


def seed_siblings(runs: Iterable[SweepRunInfo], values: Mapping[str, Any]) -> list[SweepRunInfo]:
    """The runs, in record order, that have a seed and share `values` except the seed: one
    configuration's seeds, whatever state each is in."""
    others = {k: _hashable(v) for k, v in values.items() if k != "seed"}
    return [
        run
        for run in runs
        if "seed" in run.values
        and {k: _hashable(v) for k, v in run.values.items() if k != "seed"} == others
    ]


def seed_spread(runs: Iterable[SweepRunInfo], values: Mapping[str, Any]) -> list[InstanceSeeds]:
    """Per instance, the best (lowest final loss) seed and the spread over the done runs that
    share `values` except the seed: what a run's seeds agree on and where one got stuck.

    A run not done (pending, failed, diverged) has no final loss and is left out; so is a
    non-finite loss at one instance (a record written by hand may hold NaN). A tie goes to the
    seed listed first. [] when no seed is done."""
    per_seed = {
        _hashable(run.values["seed"]): losses
        for run in seed_siblings(runs, values)
        if run.status == DONE and (losses := _instance_losses(run)) is not None
    }
    if not per_seed:
        return []
    spread = []
    for i in range(min(len(losses) for losses in per_seed.values())):
        finite = {seed: losses[i] for seed, losses in per_seed.items() if math.isfinite(losses[i])}
        if not finite:
            spread.append(InstanceSeeds(i, None, math.nan, math.nan, 0))
            continue
        best = min(finite, key=finite.__getitem__)  # min keeps the first of equal losses
        spread.append(InstanceSeeds(i, best, finite[best], max(finite.values()), len(finite)))
    return spread


def _instance_losses(run: SweepRunInfo) -> list[float] | None:
    """A done run's final loss per instance from its figures; anything but a number is nan."""
    per_instance = (run.figures or {}).get("per_instance")
    losses = per_instance.get("loss") if isinstance(per_instance, dict) else None
    if not isinstance(losses, list):
        return None
    return [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
        for v in losses
    ]
