"""What a viewer attached over the socket costs a headless run, and how far behind it sees.

    python -m toygeom_tui.bench.attach_cost [--seconds 6] [--rounds 5] [--preset NAME]

This process plays `toygeom-tui train`: a Trainer in a thread, served by a RunServer. One viewer
process (a separate interpreter, as a real `attach` is) lives through the whole measurement and
attaches or detaches when told, so its start-up and exit fall in no phase. Phases alternate,
none / one / none / ... / none: `rounds` one-viewer phases, each bracketed by two no-viewer
phases, and its round's ratio is its rate over the mean of those two (a load that drifts over
the run cancels to first order). The figure is the median of the rounds' ratios, with their
spread. Staleness is, for every live metrics message, the viewer's clock at receipt minus the
run's clock when the message left (same machine, same clock); the figure is its p95.

The viewer competes for the same cores as the run (2 on the project's box, both the kernel's):
whatever CPU it uses comes out of the run's rate, and the ratio includes that, as it would for
a user attached on the same machine. So that a gap can be told from noise (other processes on a
shared box), the CPU the viewer process and the server thread used in the one-viewer phases is
reported too, as a share of one core.

`measure()` returns the numbers (for `toygeom-tui bench`); `main()` prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SETTLE_SECONDS = 1.0  # after attaching or detaching: the greeting and catch-up are not measured


def measure(seconds: float = 6.0, rounds: int = 5, preset_name: str = "feature-geometry") -> dict:
    from engine.config import preset
    from engine.remote.server import RunServer
    from engine.trainer import Trainer

    trainer = Trainer(preset(preset_name).replace(steps=10**9))
    with tempfile.TemporaryDirectory(prefix="toygeom-attach-") as tmp:
        server = RunServer(trainer, tmp, save=lambda: None).start()
        thread = threading.Thread(target=trainer.run, daemon=True)
        thread.start()
        viewer = _Viewer(Path(tmp))
        while trainer.preparing:  # the first step builds the kernel: not part of any phase
            time.sleep(0.05)
        none: list[float] = []
        one: list[float] = []
        staleness: list[float] = []
        viewer_cpu = server_cpu = 0.0
        try:
            none.append(_rate(trainer, seconds))
            for _ in range(rounds):
                viewer.attach()
                cpu0 = (viewer.cpu(), _thread_cpu(server.native_id))
                one.append(_rate(trainer, seconds))
                viewer_cpu += viewer.cpu() - cpu0[0]
                server_cpu += _thread_cpu(server.native_id) - cpu0[1]
                staleness += viewer.detach()
                none.append(_rate(trainer, seconds))
        finally:
            viewer.close()
            trainer.stop()
            thread.join()
            server.close()
    ratios = [o / ((a + b) / 2) for o, a, b in zip(one, none, none[1:], strict=False)]
    measured = rounds * (seconds + SETTLE_SECONDS)
    return {
        "none_steps_per_s": statistics.mean(none),
        "one_steps_per_s": statistics.mean(one),
        "ratio": statistics.median(ratios),
        "ratios": ratios,
        "viewer_cpu": viewer_cpu / measured,
        "server_cpu": server_cpu / measured,
        "staleness_p95_s": float(np.percentile(staleness, 95)) if staleness else float("nan"),
        "messages": float(len(staleness)),
    }


def _rate(trainer, seconds: float) -> float:
    time.sleep(SETTLE_SECONDS)
    s0, t0 = trainer.step, time.perf_counter()
    time.sleep(seconds)
    return (trainer.step - s0) / (time.perf_counter() - t0)


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(stat_path: str) -> float:
    """User + system CPU seconds from a /proc .../stat file (0 once the task is gone)."""
    try:
        with open(stat_path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _thread_cpu(native_id: int | None) -> float:
    return _cpu_seconds(f"/proc/self/task/{native_id}/stat") if native_id else 0.0


class _Viewer:
    """The viewer process, attaching and detaching when told (one line each on its stdin)."""

    def __init__(self, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __spec__.name, "--viewer", str(directory)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":  # imports done: they cost no phase
            raise RuntimeError("the viewer process did not start")

    def _say(self, word: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the viewer process ended on {word!r}")
        return answer

    def attach(self) -> None:
        if self._say("attach").strip() != "attached":
            raise RuntimeError("the viewer could not attach")

    def detach(self) -> list[float]:
        """Detach; the staleness of every live metrics message while it was attached."""
        return json.loads(self._say("detach"))

    def cpu(self) -> float:
        return _cpu_seconds(f"/proc/{self.proc.pid}/stat")

    def close(self) -> None:
        with self.proc:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # end of input: the viewer exits
            self.proc.wait(timeout=60)


def _view(directory: str) -> None:
    """The viewer's side: on "attach", attach; on "detach", print the lags seen, as JSON."""
    from engine.remote.client import RemoteRun

    print("ready", flush=True)
    for command in sys.stdin:
        if command.strip() == "attach":
            lags: list[float] = []
            run = RemoteRun.connect(directory)
            run.on("log", lambda r, lags=lags: lags.append(time.time() - r.metric_time))
            print("attached", flush=True)
        elif command.strip() == "detach":
            run.close()
            print(json.dumps(lags[1:]), flush=True)  # the first came with the catch-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--preset", default="feature-geometry")
    parser.add_argument("--viewer", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewer:
        _view(args.viewer)
        return
    r = measure(args.seconds, args.rounds, args.preset)
    print(summary(r))


def summary(r: dict) -> str:
    """One line of the figures."""
    return (
        f"one viewer: {r['ratio']:.1%} of {r['none_steps_per_s']:.1f} steps/s (median of "
        f"{len(r['ratios'])} rounds, {min(r['ratios']):.1%}–{max(r['ratios']):.1%}); viewer "
        f"process {r['viewer_cpu']:.1%} of a core, server thread {r['server_cpu']:.1%}; "
        f"staleness p95 {r['staleness_p95_s'] * 1000:.0f} ms over {int(r['messages'])} messages"
    )


if __name__ == "__main__":
    main()
