"""Start-up costs a user feels: `toygeom-tui --help`, and the app's first paint in a terminal.

    python -m toygeom_tui.bench.startup [--runs 3] [--against REV]

The app is timed in a real terminal (tmux, 120×40), from starting `toygeom-tui --preset
pentagon` to the first capture of the pane that shows its start screen (first paint), and to
the first that shows the dashboard's loss chart (its run is made: torch imported, the model
built). Needs tmux. `--against REV` starts this tree's app and that git revision's (its files
taken with `git archive`) in alternating rounds, and gives both.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CLI = [sys.executable, "-m", "toygeom_tui"]
_servers = itertools.count()


def help_seconds() -> float:
    start = time.perf_counter()
    subprocess.run([*CLI, "--help"], check=True, capture_output=True)
    return time.perf_counter() - start


def paint_seconds(workdir: Path, tree: Path | None = None) -> tuple[float, float]:
    """(first paint, dashboard) seconds of one start of the app (of the source in `tree`, if
    given; else of this one)."""
    socket = f"toygeom-bench-{os.getpid()}-{next(_servers)}"  # a fresh server each run
    command = " ".join([*CLI, "--preset", "pentagon"])
    if tree is not None:
        command = f"PYTHONPATH={shlex.quote(str(tree))} {command}"
    start = time.perf_counter()
    subprocess.run(["tmux", "-L", socket, "new-session", "-d", "-x", "120", "-y", "40",
                    "-c", str(workdir), command], check=True)  # fmt: skip
    first = None
    try:
        while True:
            pane = subprocess.run(["tmux", "-L", socket, "capture-pane", "-p"],
                                  capture_output=True, text=True).stdout  # fmt: skip
            now = time.perf_counter() - start
            if first is None and ("opening a new run" in pane or "loss" in pane):
                first = now
            if "loss" in pane:
                return first, now
            if now > 60:
                raise RuntimeError("the app did not paint within 60 s")
            time.sleep(0.02)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True)


def measure(runs: int = 3) -> dict[str, float]:
    """Medians over `runs`: `help_s`, and `first_paint_s` and `dashboard_s` (absent without
    tmux)."""
    result = {"help_s": statistics.median(help_seconds() for _ in range(runs))}
    if shutil.which("tmux") is not None:
        with tempfile.TemporaryDirectory() as workdir:  # the app autosaves into ./sessions
            paints = [paint_seconds(Path(workdir)) for _ in range(runs)]
        result["first_paint_s"] = statistics.median(first for first, _ in paints)
        result["dashboard_s"] = statistics.median(dashboard for _, dashboard in paints)
    return result


def against(revision: str, runs: int) -> dict[str, list[tuple[float, float]]]:
    """(first paint, dashboard) of each start, this tree's and `revision`'s, alternating."""
    here = Path(__file__).resolve().parents[2]
    starts: dict[str, list[tuple[float, float]]] = {"this tree": [], revision: []}
    with tempfile.TemporaryDirectory() as tree, tempfile.TemporaryDirectory() as workdir:
        archive = subprocess.run(["git", "-C", str(here), "archive", revision],
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        for _ in range(runs):
            starts["this tree"].append(paint_seconds(Path(workdir)))
            starts[revision].append(paint_seconds(Path(workdir), Path(tree)))
    return starts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--against", metavar="REV", help="also time this git revision's app")
    args = parser.parse_args()
    if args.against:
        for name, starts in against(args.against, args.runs).items():
            firsts = ", ".join(f"{first:.2f}" for first, _ in starts)
            dashboards = ", ".join(f"{dashboard:.2f}" for _, dashboard in starts)
            print(f"{name}: first paint {firsts} s; dashboard {dashboards} s")
        return
    r = measure(args.runs)
    print(f"toygeom-tui --help: median {r['help_s']:.2f} s over {args.runs} runs")
    if "first_paint_s" not in r:
        print("first paint: skipped (no tmux)")
    else:
        print(f"app first paint: median {r['first_paint_s']:.2f} s over {args.runs} runs")
        print(f"app dashboard drawn: median {r['dashboard_s']:.2f} s over {args.runs} runs")


if __name__ == "__main__":
    main()
