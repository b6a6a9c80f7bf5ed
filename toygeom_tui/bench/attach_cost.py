"""What a viewer attached over the socket costs a headless run, and how far behind it sees.

    python -m toygeom_tui.bench.attach_cost [--seconds 10] [--rounds 3] [--preset NAME]

This process plays `toygeom-tui train`: a Trainer in a thread, served by a RunServer. Phases
alternate, `rounds` times: no viewer, then one viewer — a separate process (as a real
`attach` is) holding a RemoteRun for the phase. Throughput is steps/s per phase, the ratio is
one-viewer / no-viewer over the same rounds. Staleness is, for every metrics message the viewer
receives, its clock at receipt minus the run's clock when the message left (same machine, same
clock); the figure is its p95.

`measure()` returns the numbers (for `toygeom-tui bench`); `main()` prints them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

SETTLE_SECONDS = 1.0


def measure(seconds: float = 10.0, rounds: int = 3, preset_name: str = "feature-geometry") -> dict:
    from engine.config import preset
    from engine.remote.server import RunServer
    from engine.trainer import Trainer

    trainer = Trainer(preset(preset_name).replace(steps=10**9))
    with tempfile.TemporaryDirectory(prefix="toygeom-attach-") as tmp:
        server = RunServer(trainer, tmp, save=lambda: None).start()
        thread = threading.Thread(target=trainer.run, daemon=True)
        thread.start()
        while trainer.preparing:  # the first step builds the kernel: not part of any phase
            time.sleep(0.05)
        rates: dict[str, list[float]] = {"none": [], "one": []}
        staleness: list[float] = []
        try:
            for _ in range(rounds):
                rates["none"].append(_rate(trainer, seconds))
                viewer = _viewer(Path(tmp), seconds)
                rates["one"].append(_rate(trainer, seconds))
                out, _ = viewer.communicate(timeout=seconds + 60)
                staleness += json.loads(out.splitlines()[-1])
        finally:
            trainer.stop()
            thread.join()
            server.close()
    none, one = sum(rates["none"]), sum(rates["one"])
    return {
        "none_steps_per_s": none / rounds,
        "one_steps_per_s": one / rounds,
        "ratio": one / none,
        "staleness_p95_s": float(np.percentile(staleness, 95)) if staleness else float("nan"),
        "messages": float(len(staleness)),
    }


def _rate(trainer, seconds: float) -> float:
    time.sleep(SETTLE_SECONDS)
    s0, t0 = trainer.step, time.perf_counter()
    time.sleep(seconds)
    return (trainer.step - s0) / (time.perf_counter() - t0)


def _viewer(directory: Path, seconds: float) -> subprocess.Popen:
    """A viewer process, attached once this returns; it stays `seconds` + the settling time."""
    viewer = subprocess.Popen(
        [sys.executable, "-m", __spec__.name, "--viewer", str(directory)]
        + ["--seconds", str(seconds + SETTLE_SECONDS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert viewer.stdout is not None
    if viewer.stdout.readline().strip() != "attached":
        raise RuntimeError("the viewer could not attach")
    return viewer


def _view(directory: str, seconds: float) -> None:
    """The viewer's side: attach, then print every metrics message's staleness as JSON."""
    from engine.remote.client import RemoteRun

    lags: list[float] = []
    run = RemoteRun.connect(directory)
    run.on("log", lambda r: lags.append(time.time() - r.metric_time))
    print("attached", flush=True)
    time.sleep(seconds)
    run.close()
    print(json.dumps(lags[1:]))  # the first came with the catch-up, not live


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--preset", default="feature-geometry")
    parser.add_argument("--viewer", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.viewer:
        _view(args.viewer, args.seconds)
        return
    r = measure(args.seconds, args.rounds, args.preset)
    print(
        f"one viewer: {r['ratio']:.1%} of {r['none_steps_per_s']:.1f} steps/s; staleness p95 "
        f"{r['staleness_p95_s'] * 1000:.0f} ms over {int(r['messages'])} messages"
    )


if __name__ == "__main__":
    main()
