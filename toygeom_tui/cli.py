"""`toygeom-tui`: the app with no subcommand; else `train`, `export`, `presets`, `open`, `bench`.

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
    parser = _Parser(
        prog="toygeom-tui",
        description="Train toy models of superposition and watch their feature geometry.",
        epilog="With no command, opens the app on the default run (feature-geometry).",
    )
    _add_run_options(parser)
    parser.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    train = sub.add_parser("train", help="train headless with a progress bar, then save")
    _add_run_options(train)
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
    train.add_argument("--eager", action="store_true", help="skip torch.compile (slower)")

    export = sub.add_parser("export", help="write the geometry of a saved session")
    export.add_argument("session", metavar="DIR")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    export.add_argument("--partners", type=int, default=5, metavar="K", help="partners per feature")
    export.add_argument(
        "--history", action="store_true", help="the loss and ‖W‖²_F history (CSV) instead"
    )

    sub.add_parser("presets", help="list the presets")

    open_ = sub.add_parser("open", help="open a saved session in the app")
    open_.add_argument("session", metavar="DIR")
    open_.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    open_.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal")

    bench = sub.add_parser(
        "bench",
        help="measure every speed figure (engine vs the plain loop, app cost, memory, startup)",
        description="Measure the speed figures in one run (~10 min; --quick ~3 min) and print "
        "them with their targets. Progress goes to stderr, the table to stdout.",
    )
    bench.add_argument("--quick", action="store_true", help="short rounds: a smoke test")
    bench.add_argument(
        "--only",
        nargs="+",
        choices=("engine", "app", "memory", "startup"),
        metavar="SECTION",
        help="some of: engine app memory startup (default all)",
    )
    return parser


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", metavar="NAME", help="start from a preset (see `presets`)")
    source.add_argument("--config", metavar="FILE", help="a TOML config file")
    parser.add_argument("--steps", type=int, metavar="N", help="total training steps")
    parser.add_argument("--seed", type=int, metavar="S", help="random seed")
    parser.add_argument("--device", metavar="D", help="auto, cpu, cuda or cuda:N")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        command = args.command or "app"
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
    from engine.session import new_session_dir
    from engine.trainer import DIVERGED, Trainer

    compiled = False if args.eager else None
    if args.resume:
        if args.preset or args.config:
            raise UserError("--resume continues a session's own config; drop --preset/--config")
        trainer = _load(args.resume, device=args.device, compiled=compiled)
        if args.steps is not None:
            if args.steps < trainer.step:
                raise UserError(f"--steps {args.steps} is below the session's step {trainer.step}")
            trainer.total_steps = args.steps
        out = Path(args.out) if args.out else Path(args.resume)
    else:
        config = _config_from(args)
        trainer = Trainer(config, compiled=compiled)
        out = Path(args.out) if args.out else new_session_dir(config.name)
    _check_writable(out, resuming=bool(args.resume))

    autosaver = Autosaver(
        out, args.autosave, on_error=lambda e: print(f"\ntoygeom-tui: {e}", file=sys.stderr)
    )
    progress = ProgressLine(trainer)
    progress.begin(trainer)
    trainer.on("log", progress)
    if args.autosave > 0:
        trainer.on("log", autosaver)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: trainer.stop())
    start_step, t0 = trainer.step, time.perf_counter()
    state = trainer.run()
    elapsed = time.perf_counter() - t0
    progress.finish()
    autosaver.save(trainer, running=False)
    done = trainer.step - start_step
    rate = done / elapsed if elapsed > 0 else 0.0
    if state == DIVERGED:
        print(f"toygeom-tui: {trainer.error}", file=sys.stderr)
    print(
        f"{state}: {done} steps in {elapsed:.1f} s ({rate:.1f} steps/s), "
        f"step {trainer.step}/{trainer.total_steps}, saved {out}"
    )
    return 1 if state == DIVERGED else 0


def _check_writable(out: Path, *, resuming: bool) -> None:
    """Refuse an --out that would overwrite anything but the session being resumed."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a directory; choose another --out")
    if not out.is_dir() or not any(out.iterdir()):
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


# -- export ---------------------------------------------------------------------------------------
def cmd_export(args: argparse.Namespace) -> int:
    from engine.session import SessionError
    from toygeom_tui.export import geometry_csv, geometry_json, session_history_csv

    try:
        if args.history:
            text = session_history_csv(args.session)
        elif args.format == "json":
            text = geometry_json(args.session, args.partners)
        else:
            text = geometry_csv(args.session, args.partners)
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
def cmd_app(args: argparse.Namespace) -> int:
    config = _config_from(args)
    from engine.trainer import Trainer
    from toygeom_tui.app import run_app

    trainer = Trainer(config)
    run_app(trainer, mouse=not args.no_mouse)
    return 0


def cmd_open(args: argparse.Namespace) -> int:
    """Open a session; one that a live `train` process is still writing is followed read-only."""
    from engine.session import SessionError, session_info

    directory = Path(args.session)
    try:
        running = session_info(directory).running
    except SessionError as err:
        raise UserError(str(err)) from None
    if running:
        from engine.follow import Follower
        from toygeom_tui.app import run_app

        try:
            follower = Follower(directory)
        except SessionError as err:
            raise UserError(str(err)) from None
        run_app(follower.trainer, follow=follower, mouse=not args.no_mouse)
        return 0
    trainer = _load(args.session, device=args.device)
    from toygeom_tui.app import run_app

    run_app(trainer, session_dir=directory, mouse=not args.no_mouse)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from toygeom_tui.bench import report

    sections = args.only or list(report.SECTIONS)
    machine = report.machine()
    print(f"bench on {machine}", file=sys.stderr, flush=True)
    figures = report.run(sections, args.quick, lambda line: print(line, file=sys.stderr))
    print(f"{machine}{' (--quick)' if args.quick else ''}")
    print(report.table(figures))
    return 0


COMMANDS = {
    "app": cmd_app,
    "train": cmd_train,
    "export": cmd_export,
    "presets": cmd_presets,
    "open": cmd_open,
    "bench": cmd_bench,
}
