"""`toygeom-tui`: the app with no subcommand; else `train`, `sweep`, `ps`, `export`, `presets`,
`open`, `bench`.

Heavy imports (torch, textual) happen inside the commands so `--help` stays instant.
Every user error is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from toygeom_tui.clock import clock

EXIT_USAGE = 2


class UserError(Exception):
    """A problem the user can fix; printed as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from toygeom_tui.keymap import config_path

    parser = _Parser(
        prog="toygeom-tui",
        description="Train toy models of superposition and watch their feature geometry.",
        epilog="With no command, opens the app on the default run (feature-geometry).\n"
        "Keys are remapped in a [keymap] table of binding id = keys (? in the app lists the\n"
        f"ids) in {config_path()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_options(parser)
    _add_no_mouse(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train headless with a progress bar, then save")
    _add_run_options(train, in_command=True)
    train.add_argument("--resume", metavar="DIR", help="continue a saved session")
    train.add_argument(
        "--out", metavar="DIR", help="session directory (default sessions/NAME-TIME)"
    )
    train.add_argument(
        "--autosave",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="save every SECONDS while training (0: only at the end); default 30",
    )
    train.add_argument(
        "--eager",
        action="store_true",
        help="the plain torch step: no fused CPU kernel, no torch.compile (slower; same math)",
    )
    train.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        help="train seeds S..S+N-1 of the config (S = --seed, default 0) as a sweep in --out",
    )
    train.add_argument(
        "--detach",
        action="store_true",
        help="train in the background (log in DIR/train.log); print the session path and return",
    )
    _add_executor_options(train)

    sweep = sub.add_parser(
        "sweep",
        help="run every combination of a spec's [grid], each a session under --out",
        description="Run a sweep: SPEC.toml is a run's config (preset included) plus a [grid] "
        "table of key = [values]; every combination is a run, saved as a session under --out "
        "with a sweep.json record. Runs locally (--jobs) or as Ray tasks (--ray).",
    )
    sweep.add_argument("spec", nargs="?", metavar="SPEC.toml", help="the sweep spec")
    sweep.add_argument("--out", metavar="DIR", help="sweep directory (default sessions/SPEC-TIME)")
    sweep.add_argument("--resume", metavar="DIR", help="run what a sweep directory still misses")
    _add_executor_options(sweep)

    ps = sub.add_parser(
        "ps", help="list the runs training now under sessions/ (or ROOT), and those that died"
    )
    ps.add_argument("root", nargs="?", metavar="ROOT", help="where to look (default sessions/)")
    ps.add_argument("--json", action="store_true", help="one JSON list, for scripts")

    export = sub.add_parser("export", help="write the geometry of a saved session")
    export.add_argument("session", metavar="DIR")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--partners", type=int, default=5, metavar="K", help="partners per feature")
    what = export.add_mutually_exclusive_group()
    what.add_argument(
        "--history", action="store_true", help="the loss and ‖W‖²_F history (CSV) instead"
    )
    what.add_argument(
        "--at",
        type=int,
        metavar="STEP",
        help="the geometry of the latest weight snapshot at or before STEP (its `step` says which)",
    )
    what.add_argument(
        "--jumps", action="store_true", help="the jump list: features changing level (see README)"
    )

    sub.add_parser("presets", help="list the presets")

    attach = sub.add_parser(
        "attach",
        help="open the app on a running run (DIR, or the one under sessions/); q detaches",
    )
    attach.add_argument("session", nargs="?", metavar="DIR", help="default: the run training now")
    _add_no_mouse(attach, in_command=True)

    open_ = sub.add_parser(
        "open",
        help="open a saved session in the app (attach if it trains), or a sweep: its table "
        "over its best run",
    )
    open_.add_argument("session", metavar="DIR")
    _add_device(open_, in_command=True)
    _add_no_mouse(open_, in_command=True)

    bench = sub.add_parser(
        "bench",
        help="measure every speed figure (engine vs the plain loop, app cost, memory, startup)",
        description="Measure the speed figures in one run (~10 min; --quick ~3 min) and print "
        "them with their targets. Progress goes to stderr, the table to stdout. A sweep's "
        "throughput (24 pentagon runs as one sweep vs 24 train processes) is measured by "
        "python -m toygeom_tui.bench.sweep_rate.",
    )
    bench.add_argument("--quick", action="store_true", help="short rounds: a smoke test")
    bench.add_argument(
        "--only",
        nargs="+",
        choices=("engine", "app", "memory", "startup", "attach"),
        metavar="SECTION",
        help="some of: engine app memory startup attach (default all)",
    )
    return parser


def _add_executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, metavar="N", help="runs at once on this machine (default: one per core)"
    )
    parser.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run as Ray tasks on the cluster at ADDRESS (host:port, or auto); needs the ray extra",
    )
    parser.add_argument(
        "--cpus-per-run", type=float, default=1.0, metavar="N", help="CPUs a Ray task asks for"
    )
    parser.add_argument(
        "--gpus-per-run",
        type=float,
        default=0.0,
        metavar="F",
        help="GPUs a Ray task asks for (a fraction such as 0.25 shares one GPU; default 0)",
    )


# Options taken both before a command and after it (`toygeom-tui --steps 500 train` and
# `toygeom-tui train --steps 500`). After it they default to SUPPRESS: a command's own default
# (None) would otherwise overwrite the value given before it, and `--config F train` trained the
# default config. Which command uses which is checked in `_check_options`.
def _add_run_options(parser: argparse.ArgumentParser, in_command: bool = False) -> None:
    default = argparse.SUPPRESS if in_command else None
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", metavar="NAME", default=default,
                        help="start from a preset (see `presets`)")  # fmt: skip
    source.add_argument("--config", metavar="FILE", default=default, help="a TOML config file")
    parser.add_argument("--steps", type=int, metavar="N", default=default,
                        help="total training steps")  # fmt: skip
    parser.add_argument("--seed", type=int, metavar="S", default=default, help="random seed")
    _add_device(parser, in_command)


def _add_device(parser: argparse.ArgumentParser, in_command: bool = False) -> None:
    parser.add_argument("--device", metavar="D", default=argparse.SUPPRESS if in_command else None,
                        help="auto, cpu, cuda or cuda:N")  # fmt: skip


def _add_no_mouse(parser: argparse.ArgumentParser, in_command: bool = False) -> None:
    parser.add_argument("--no-mouse", action="store_true",
                        default=argparse.SUPPRESS if in_command else False,
                        help="leave the mouse to the terminal")  # fmt: skip


# The options of the top-level parser each command acts on; any other one given is refused
# rather than silently dropped (`--steps 500 export DIR`).
_RUN_OPTIONS = ("preset", "config", "steps", "seed", "device")
_USES = {"app": {*_RUN_OPTIONS, "no_mouse"}, "train": set(_RUN_OPTIONS),
         "open": {"device", "no_mouse"}, "attach": {"no_mouse"}}  # fmt: skip


def _check_options(args: argparse.Namespace, command: str) -> None:
    if args.preset is not None and args.config is not None:
        raise UserError("--preset and --config both name a config: give one")
    # By identity: 0 == False, and --steps 0 or --seed 0 are given too.
    given = [k for k in (*_RUN_OPTIONS, "no_mouse") if getattr(args, k) is not None
             and getattr(args, k) is not False]  # fmt: skip
    unused = [k for k in given if k not in _USES.get(command, set())]
    if unused:
        names = ", ".join("--" + k.replace("_", "-") for k in unused)
        raise UserError(f"{names}: not an option of {command} (see toygeom-tui {command} --help)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.raw_argv = argv
    try:
        command = args.command or "app"
        _check_options(args, command)
        return COMMANDS[command](args)
    except UserError as err:
        print(f"toygeom-tui: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("toygeom-tui: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `export … | head`: the reader left; that is not an error to report
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, as a shell reports a command killed by it


def _config_from(args: argparse.Namespace) -> Any:
    """The RunConfig the flags describe (preset or file, then overrides)."""
    from engine.config import ConfigError, RunConfig, load_toml, preset

    try:
        if args.config:
            config = load_toml(args.config)
        elif args.preset:
            config = preset(args.preset)
        else:
            config = RunConfig()
        overrides = {k: getattr(args, k) for k in ("steps", "seed", "device")}
        overrides = {k: v for k, v in overrides.items() if v is not None}
        return config.replace(**overrides) if overrides else config
    except ConfigError as err:
        raise UserError(str(err)) from None


def _load(directory: str, **kwargs: Any) -> Any:
    from engine.session import SessionError, load_session

    try:
        return load_session(directory, **kwargs)
    except SessionError as err:
        raise UserError(str(err)) from None


# -- train ----------------------------------------------------------------------------------------
def cmd_train(args: argparse.Namespace) -> int:
    import signal

    from engine.autosave import Autosaver
    from engine.remote.lock import SessionBusy, WriterLock
    from engine.remote.server import RunServer
    from engine.session import new_session_dir
    from engine.trainer import DIVERGED, Trainer

    if args.seeds is not None:
        return _train_seeds(args)
    if args.jobs is not None or args.ray is not None:
        raise UserError("--jobs and --ray run several seeds: add --seeds N")
    compiled = False if args.eager else None
    if args.resume and (args.preset or args.config or args.seed is not None):
        raise UserError("--resume continues a session's own config; drop --preset/--config/--seed")
    config = None if args.resume else _config_from(args)
    out = Path(args.out or args.resume or new_session_dir(config.name))
    _refuse_if_trained(out)
    _check_writable(out, resuming=bool(args.resume))
    if args.detach:
        return _detach(args, out)
    if args.resume:  # loading only reads; the lock below decides who writes
        trainer = _load(args.resume, device=args.device, compiled=compiled)
        if trainer.load_note:
            print(f"toygeom-tui: {out}: {trainer.load_note}", file=sys.stderr)
        if args.steps is not None:
            if args.steps < trainer.step:
                raise UserError(f"--steps {args.steps} is below the session's step {trainer.step}")
            trainer.total_steps = args.steps
    else:
        trainer = Trainer(config, compiled=compiled)
    try:
        lock = WriterLock(out).acquire()
    except SessionBusy as err:
        raise UserError(str(err)) from None
    except OSError as err:
        raise UserError(f"{out}: cannot write ({err.strerror or err})") from None

    autosaver = Autosaver(
        out, args.autosave, on_error=lambda e: print(f"\ntoygeom-tui: {e}", file=sys.stderr)
    )
    progress = ProgressLine(trainer)
    idle = trainer.step >= trainer.total_steps  # --steps 0, or a resume at its total already
    if not idle:
        progress.begin(trainer)
        trainer.on("log", progress)
    if args.autosave > 0:
        trainer.on("log", autosaver)
    server = RunServer(trainer, out, save=lambda: autosaver.save(trainer, running=True)).start()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: trainer.stop())
    start_step, t0 = trainer.step, time.perf_counter()
    state = trainer.run()
    elapsed = time.perf_counter() - t0
    if not idle:
        progress.finish()
    autosaver.finish(trainer)  # a viewer's save that comes later cannot say running any more
    server.close()
    lock.release()
    done = trainer.step - start_step
    rate = done / elapsed if elapsed > 0 else 0.0
    if state == DIVERGED:
        print(f"toygeom-tui: {trainer.error}", file=sys.stderr)
    if idle:
        what = "the model as initialized" if trainer.step == 0 else "unchanged"
        print(f"{state}: nothing to train at step {trainer.step}/{trainer.total_steps}; "
              f"saved {out} ({what})")  # fmt: skip
        return 0
    print(
        f"{state}: {done} steps in {elapsed:.{1 if elapsed >= 1 else 3}f} s "
        f"({rate:.1f} steps/s), step {trainer.step}/{trainer.total_steps}, saved {out}"
    )
    return 1 if state == DIVERGED else 0


def _train_seeds(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.session import new_session_dir
    from engine.sweep import Sweep, SweepError, seed_spec

    if args.resume:
        raise UserError(f"--seeds and --resume: continue seeds with sweep --resume {args.resume}")
    if args.eager:
        raise UserError("--eager is for one run; --seeds trains with the fastest step")
    if args.detach:
        raise UserError("--detach is for one run; run the seeds under nohup or tmux")
    config = _config_from(args)
    executor = _executor(args)
    try:
        spec = seed_spec(config, args.seeds)
        out = Path(args.out) if args.out else new_session_dir(f"{config.name}-seeds")
        sweep = Sweep.create(out, spec)
    except (ConfigError, SweepError) as err:
        raise UserError(str(err)) from None
    return _run_sweep(sweep, executor)


# -- sweep ----------------------------------------------------------------------------------------
def cmd_sweep(args: argparse.Namespace) -> int:
    from engine.config import ConfigError
    from engine.session import new_session_dir
    from engine.sweep import Sweep, SweepError, load_spec

    executor = _executor(args)
    try:
        if args.resume:
            if args.spec or args.out:
                raise UserError("--resume DIR continues that sweep's own spec; drop SPEC and --out")
            sweep = Sweep.resume(args.resume)
        elif args.spec:
            spec = load_spec(args.spec)
            out = Path(args.out) if args.out else new_session_dir(Path(args.spec).stem)
            sweep = Sweep.create(out, spec)
        else:
            raise UserError("sweep needs SPEC.toml (with --out DIR) or --resume DIR")
    except (ConfigError, SweepError) as err:
        raise UserError(str(err)) from None
    return _run_sweep(sweep, executor)


def _executor(args: argparse.Namespace) -> Any:
    if args.jobs is not None and args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: give at least 1")
    if args.ray is None:
        from engine.sweep_local import LocalExecutor

        return LocalExecutor(args.jobs)
    if args.jobs is not None:
        raise UserError("--jobs is for this machine; on Ray each run asks for --cpus-per-run")
    if args.cpus_per_run <= 0 or args.gpus_per_run < 0:
        raise UserError("--cpus-per-run must be above 0 and --gpus-per-run at least 0")
    from engine.sweep_ray import RayExecutor, RayUnavailable, import_ray

    try:
        import_ray()
    except RayUnavailable as err:
        raise UserError(str(err)) from None
    return RayExecutor(args.ray, cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run)


def _run_sweep(sweep: Any, executor: Any) -> int:
    """Run what `sweep` misses with progress on stderr; 1 if a run failed, 130 on Ctrl-C."""
    import signal
    import threading

    from engine.sweep import DONE, SweepError
    from engine.sweep_ray import RayUnavailable

    missing = sweep.missing()
    total = len(sweep.spec.runs)
    progress = SweepProgress(total, total - len(missing))
    # A signal only asks to stop: the executor notices within a moment, ends its runs, and no
    # write is cut short (an exception raised mid-loop could leave the workers running).
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sweep.run(executor, progress, stop)
    except (SweepError, RayUnavailable) as err:
        progress.finish()
        raise UserError(str(err)) from None
    progress.finish()
    counts = sweep.counts()
    if stop.is_set():
        print(
            f"toygeom-tui: interrupted: {counts[DONE]}/{total} runs done in {sweep.directory}; "
            f"run the rest with: toygeom-tui sweep --resume {sweep.directory}",
            file=sys.stderr,
        )
        return 130
    bad = total - counts[DONE]
    summary = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    print(f"sweep {sweep.directory}: {summary} ({len(missing)} run now, {progress.elapsed()})")
    if bad:
        print(
            f"toygeom-tui: {bad} runs not done (see {sweep.directory}/sweep.json); "
            f"retry failed ones with: toygeom-tui sweep --resume {sweep.directory}",
            file=sys.stderr,
        )
    return 1 if bad else 0


class SweepProgress:
    """Called with each finished run: one line for it, then the overall bar with ETA (redrawn
    in place under the lines on a terminal)."""

    def __init__(self, total: int, already: int, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total, self.already, self.finished = total, already, 0
        self.start = time.perf_counter()
        if self.tty:
            self.stream.write(self.bar())
            self.stream.flush()

    def __call__(self, result: Any) -> None:
        self.finished += 1
        figures = result.figures or {}
        loss = figures.get("loss")
        detail = f"loss {loss:.4g}" if loss is not None else (result.error or "")
        line = (
            f"[{self.already + self.finished}/{self.total}] {result.name}  {result.status}  "
            f"{detail}  {result.seconds:.1f} s"
        )
        if self.tty:
            self.stream.write(f"\r\033[K{line}\n{self.bar()}")
        else:
            self.stream.write(f"{line}\n{self.bar()}\n")
        self.stream.flush()

    def bar(self) -> str:
        done, width = self.already + self.finished, 24
        filled = int(width * done / max(self.total, 1))
        seconds = time.perf_counter() - self.start
        per_run = seconds / self.finished if self.finished else float("inf")
        rate = 60.0 / per_run if self.finished else 0.0
        eta = per_run * (self.total - done)
        return (
            f"[{'#' * filled}{'.' * (width - filled)}] {done}/{self.total} runs  "
            f"{rate:.1f} runs/min  ETA {clock(eta)}"
        )

    def elapsed(self) -> str:
        return clock(time.perf_counter() - self.start)

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _refuse_if_trained(out: Path) -> None:
    """One writer per session: name the live one (engine.remote.lock)."""
    from engine.remote.lock import SessionBusy, holder

    pid = holder(out)
    if pid is not None:
        raise UserError(str(SessionBusy(out, pid or None)))


def _detach(args: argparse.Namespace, out: Path) -> int:
    """Run this same `train` headless in the background (engine.remote.background), its output
    in DIR/train.log; print the path once it serves the session, or its last line (exit 2)."""
    from engine.remote.background import BackgroundError, start_headless

    argv = [a for a in (args.raw_argv or sys.argv[1:]) if a != "--detach"]
    if not args.out:
        argv += ["--out", str(out)]
    try:
        start_headless(argv, out)
    except BackgroundError as err:
        raise UserError(str(err)) from None
    print(out)
    return 0


def _check_writable(out: Path, *, resuming: bool) -> None:
    """Refuse an --out that would overwrite anything but the session being resumed."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    from engine.remote.address import SOCKET_FILE
    from engine.remote.background import LOG_FILE
    from engine.remote.lock import LOCK_FILE
    from engine.snapshot_files import FOLDER, NAME

    def left_by_a_run_that_never_saved(p: Path) -> bool:
        """Its log, lock or socket, or the snapshot files of a first save cut short."""
        if p.name == FOLDER and p.is_dir() and not p.is_symlink():
            return all(NAME.fullmatch(q.name) for q in p.iterdir())
        return p.name in (LOG_FILE, LOCK_FILE, SOCKET_FILE)

    if not out.is_dir() or all(left_by_a_run_that_never_saved(p) for p in out.iterdir()):
        return
    if not (out / "session.json").exists():
        raise UserError(f"{out}: a non-empty directory that is not a session; choose another --out")
    if not resuming:
        raise UserError(
            f"{out}: already holds a session; continue it with --resume {out} "
            "or choose another --out"
        )


class ProgressLine:
    """A "log" observer drawing one progress line (redrawn in place on a terminal).

    The rate and ETA count from the first record on, once the step is built or compiled (the
    first step's seconds, once per machine or process); until then the line says so.
    """

    def __init__(self, trainer: Any, stream: Any = None, every: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every if self.tty else 10.0
        self.last = 0.0
        self.mark: tuple[float, int] | None = None  # (time, step) of the first record
        self.rated = False  # a line with a rate was written

    def begin(self, trainer: Any) -> None:
        """Draw the line before the first step (which may take seconds to prepare)."""
        self._write(self.line(trainer, time.perf_counter()))

    def __call__(self, trainer: Any) -> None:
        now = time.perf_counter()
        last = trainer.step >= trainer.total_steps
        if self.mark is None:
            self.mark = (now, trainer.step)
            if not last:
                return
        elif self.rated and now - self.last < self.every and not last:
            return
        self.rated = True
        self.last = now
        self._write(self.line(trainer, now))

    def _write(self, line: str) -> None:
        self.stream.write(("\r" if self.tty else "") + line + ("" if self.tty else "\n"))
        self.stream.flush()

    def line(self, trainer: Any, now: float) -> str:
        done, total = trainer.step, max(trainer.total_steps, 1)
        width = 24
        filled = int(width * done / total)
        if trainer.preparing:
            speed = "preparing the step… (the first run builds or compiles it)"
        elif self.mark is None or done == self.mark[1] or now <= self.mark[0]:
            speed = ""  # finished within the first record: no rate to tell
        else:
            rate = (done - self.mark[1]) / (now - self.mark[0])
            speed = f"{rate:.1f} steps/s  ETA {clock((total - done) / rate)}"
        bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
        if trainer.latest_loss is not None:
            bar += f"  loss {trainer.latest_loss.sum():.4g}"
        return f"{bar}  {speed}" if speed else bar

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -- ps -------------------------------------------------------------------------------------------
def cmd_ps(args: argparse.Namespace) -> int:
    import json

    from engine.paths import SESSIONS_ROOT
    from engine.remote.listing import died, running
    from engine.remote.lock import died_note

    root = args.root or SESSIONS_ROOT
    rows = [
        {
            "directory": str(directory),
            "pid": hello["pid"],
            "step": hello.get("step"),
            "total": hello.get("total"),
            "steps_per_second": round(hello.get("rate", 0.0), 1),
            "state": hello["state"],
        }
        for directory, hello in running(root)
    ]
    # Runs that died after an autosave (killed, crashed, a reboot): after logging back in,
    # `ps` is where one looks for a run, so it says what became of it.
    rows += [
        {
            "directory": str(directory),
            "pid": None,
            "step": record.get("step"),
            "total": record.get("total_steps"),
            "steps_per_second": None,
            "state": "interrupted",
        }
        for directory, record in died(root)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no runs training under {root}", file=sys.stderr)
        return 0
    width = max(len("directory"), *(len(r["directory"]) for r in rows))
    print(f"{'directory':<{width}}  {'pid':>7}  {'step/total':>17}  {'steps/s':>8}  state")
    for r in rows:
        steps = f"{r['step']}/{r['total']}" if r["step"] is not None else "?"
        pid = "—" if r["pid"] is None else r["pid"]
        rate = "—" if r["steps_per_second"] is None else f"{r['steps_per_second']:.1f}"
        print(f"{r['directory']:<{width}}  {pid:>7}  {steps:>17}  {rate:>8}  {r['state']}")
    for r in rows:
        if r["state"] == "interrupted":
            print(
                f"{r['directory']}: {died_note(r['step'])}; "
                f"toygeom-tui train --resume {r['directory']} --detach resumes it",
                file=sys.stderr,
            )
    return 0


# -- export ---------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from engine.session import SessionError
    from toygeom_tui.export import (
        document_json,
        geometry_csv,
        geometry_json,
        jumps_csv,
        session_history_csv,
        session_jumps,
    )

    if args.at is not None and args.at < 0:
        raise UserError(f"--at {args.at}: a step is >= 0")
    try:
        if args.history:
            text = session_history_csv(args.session)
        elif args.jumps:
            doc = session_jumps(args.session)
            text = document_json(doc) if args.format == "json" else jumps_csv(doc)
        elif args.format == "json":
            text = geometry_json(args.session, args.partners, args.at)
        else:
            text = geometry_csv(args.session, args.partners, args.at)
    except SessionError as err:
        raise UserError(str(err)) from None
    if args.output:
        from engine.atomic import write_text_atomic

        try:
            write_text_atomic(Path(args.output), text)
        except OSError as err:
            raise UserError(f"{args.output}: cannot write ({err.strerror or err})") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


# -- presets --------------------------------------------------------------------------------------
def cmd_presets(args: argparse.Namespace) -> int:
    from engine.config import PRESET_ABOUT, PRESETS

    print(f"{'name':<16}{'features':>9}{'hidden':>8}{'inst':>6}{'steps':>8}  about")
    for name, c in PRESETS.items():
        print(
            f"{name:<16}{c.n_features:>9}{c.d_hidden:>8}{c.n_inst:>6}{c.steps:>8}  "
            f"{PRESET_ABOUT[name]}"
        )
    return 0


# -- the app --------------------------------------------------------------------------------------
# The app paints its start screen before these make their run (toygeom_tui.app.Opening): each
# `make` runs on a worker and is the first to import torch.
def cmd_app(args: argparse.Namespace) -> int:
    from engine.presets import unknown_preset
    from toygeom_tui.app import Opened, Opening, run_app

    if args.preset and (problem := unknown_preset(args.preset)):
        raise UserError(problem)  # at once: the rest of a config's checks need torch

    def make(stage: Any) -> Opened:
        config = _config_from(args)
        stage("building the model")
        from engine.trainer import Trainer

        return Opened(Trainer(config))

    what = args.config or args.preset or "feature-geometry"
    run_app(Opening(f"a new run: {what}", make), mouse=not args.no_mouse)
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    """Open a session; one that a `train` process serves is attached to."""
    from toygeom_tui.app import Opened, Opening, run_app

    directory = Path(args.session)

    def make(stage: Any) -> Opened:
        from engine.remote.listing import probe
        from engine.sweep import SweepError, is_sweep, sweep_info

        if is_sweep(directory):  # its best run on the dashboard, the sweep's screen over it
            try:
                best = sweep_info(directory).best
            except SweepError as err:
                raise UserError(str(err)) from None
            if best is None:
                raise UserError(
                    f"{directory}: no run of this sweep has finished yet; resume it with "
                    f"toygeom-tui sweep --resume {directory}"
                )
            stage(f"loading its best run, {best.name}")
            trainer = _load(str(directory / best.name), device=args.device)
            return Opened(trainer, directory / best.name, trainer.load_note, sweep=directory)
        if probe(directory) is not None:
            return _connect(directory, stage)
        stage("loading the session")
        trainer = _load(args.session, device=args.device)
        return Opened(trainer, directory, trainer.load_note)

    run_app(Opening(str(directory), make), mouse=not args.no_mouse)
    return 0


def cmd_attach(args: argparse.Namespace) -> int:
    from engine.remote.listing import running
    from engine.session import SESSIONS_ROOT

    if args.session:
        return _attach(Path(args.session), mouse=not args.no_mouse)
    runs = running(SESSIONS_ROOT)
    if not runs:
        raise UserError(
            f"no run is training under {SESSIONS_ROOT}/; start one with toygeom-tui train --detach"
        )
    directory = runs[0][0] if len(runs) == 1 else choose_run(runs, sys.stdin, sys.stderr)
    return _attach(directory, mouse=not args.no_mouse)


def choose_run(runs: list[tuple[Path, dict[str, Any]]], stdin: Any, stderr: Any) -> Path:
    """Ask which of several running runs to attach to: a numbered list, a number typed back."""
    for i, (directory, hello) in enumerate(runs, 1):
        step, total = hello.get("step", "?"), hello.get("total", "?")
        stderr.write(f"{i:>3}  {directory}  step {step}/{total}  {hello['state']}\n")
    stderr.write(f"attach to which run? [1-{len(runs)}] ")
    stderr.flush()
    answer = stdin.readline().strip()
    if answer.isdigit() and 1 <= int(answer) <= len(runs):
        return runs[int(answer) - 1][0]
    raise UserError(
        f"no run chosen ({answer or 'nothing'} typed); name one: toygeom-tui attach DIR"
    )


def _attach(directory: Path, *, mouse: bool) -> int:
    from toygeom_tui.app import Opening, run_app

    run_app(Opening(f"{directory} (attaching)", lambda stage: _connect(directory, stage)),
            mouse=mouse)  # fmt: skip
    return 0


def _connect(directory: Path, stage: Any) -> Any:
    """The Opened of the run a `train` process serves from `directory`."""
    from engine.remote.client import RemoteError, RemoteRun
    from toygeom_tui.app import Opened

    stage("connecting to its process")
    try:
        return Opened(RemoteRun.connect(directory), directory)
    except RemoteError as err:
        raise UserError(str(err)) from None


def cmd_bench(args: argparse.Namespace) -> int:
    from toygeom_tui.bench import report

    sections = args.only or list(report.SECTIONS)
    machine = report.machine()
    if "engine" in sections:  # which kernel the engine's figures come from
        from engine import fused_cpu

        machine += f"; kernel: {fused_cpu.describe()}"
    print(f"bench on {machine}", file=sys.stderr, flush=True)
    figures = report.run(sections, args.quick, lambda line: print(line, file=sys.stderr))
    print(f"{machine}{' (--quick)' if args.quick else ''}")
    print(report.table(figures))
    return 0


COMMANDS = {
    "app": cmd_app,
    "train": cmd_train,
    "sweep": cmd_sweep,
    "ps": cmd_ps,
    "export": cmd_export,
    "presets": cmd_presets,
    "open": cmd_open,
    "attach": cmd_attach,
    "bench": cmd_bench,
}
