"""What the app costs while the default run trains: key-to-screen latency and throughput.

    python -m toygeom_tui.bench.app_cost [--seconds 15] [--rounds 2] [--preset NAME] [--size 160x48]

Each round has three phases: headless, the app watching (live charts, no input), and the app
with a key press every 250–500 ms.

One Trainer (the default feature-geometry config: its length, so the charts' x axis spans the
run, and its D_i cadence) trains in alternating phases in this process: headless (`Trainer.run`
in a thread, as `toygeom-tui train` does) and inside the app (Textual's headless driver, which
still lays out and renders every frame; only the final write to a terminal is skipped). Before
a phase that could reach the end of the run, the run is extended by its own length, so it never
finishes inside a phase. Throughput is steps/s per phase; the ratio is app / headless over the
same rounds.

Latency: during each app phase `j`/`k` are posted as key events every 250–500 ms, and the time
is taken from the post to the first rendered frame whose status line names the new instance
("status"), and to the first whose loss chart was drawn with it selected ("charts").

`measure()` returns the numbers (for `toygeom-tui bench`); `main()` prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time
from collections.abc import Callable

from textual import events

from engine.config import RunConfig, preset
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp

SETTLE_SECONDS = 1.0  # before each phase's measurement starts


def headless_rate(trainer: Trainer, seconds: float) -> float:
    thread = threading.Thread(target=trainer.run)
    thread.start()
    time.sleep(SETTLE_SECONDS)  # let the thread settle
    s0, t0 = trainer.step, time.perf_counter()
    time.sleep(seconds)
    rate = (trainer.step - s0) / (time.perf_counter() - t0)
    trainer.stop()
    thread.join()
    return rate


async def app_phase(
    trainer: Trainer, seconds: float, size: tuple[int, int], press_keys: bool = True
) -> tuple[float, list[float], list[float]]:
    """(steps/s with the app attached, status latencies, chart latencies), latencies in s.

    Without `press_keys` the app only watches (live charts, no input): the usual case.
    """
    app = ToygeomApp(trainer, autosave_seconds=0)
    # (time, status text, instance the loss chart was last rendered with) of every frame
    frames: list[tuple[float, str, int]] = []
    status: list[float] = []
    charts: list[float] = []
    async with app.run_test(size=size) as pilot:
        display = app._display
        chart = app.dashboard.loss_chart

        def timed_display(screen, renderable) -> None:
            display(screen, renderable)
            # The chart's newest state reached the screen once the compositor took its lines.
            drawn = chart.selected if chart.shown_version == chart.version else -1
            frames.append((time.perf_counter(), app.dashboard.status_bar.plain, drawn))

        app._display = timed_display  # type: ignore[method-assign]
        await pilot.pause(SETTLE_SECONDS)
        s0, t0 = trainer.step, time.perf_counter()
        n_inst = trainer.config.n_inst
        while not press_keys and time.perf_counter() - t0 < seconds:
            await asyncio.sleep(0.1)
        while press_keys and time.perf_counter() - t0 < seconds:
            selected = app.dashboard.selected
            key = "j" if selected < n_inst - 1 else "g"
            target = selected + 1 if key == "j" else 0
            expected = f"instance {target} of"
            frames.clear()
            sent = time.perf_counter()
            app.post_message(events.Key(key, key))
            while not any(drawn == target for _, _, drawn in frames):
                await asyncio.sleep(0.001)
                if time.perf_counter() - sent > 5:
                    raise RuntimeError(f"no frame showed instance {target} within 5 s")
            status.append(next(t for t, text, _ in frames if expected in text) - sent)
            charts.append(next(t for t, _, drawn in frames if drawn == target) - sent)
            await asyncio.sleep(random.uniform(0.25, 0.5))
        rate = (trainer.step - s0) / (time.perf_counter() - t0)
        app._display = display  # type: ignore[method-assign]
    trainer.stop()
    return rate, status, charts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _keep_running(trainer: Trainer, steps_ahead: int) -> None:
    """Extend the run (by its configured length) until `steps_ahead` more steps fit in it."""
    while trainer.total_steps - trainer.step < steps_ahead:
        trainer.extend(trainer.config.steps or 10_000)


def measure(
    seconds: float,
    rounds: int,
    size: tuple[int, int] = (160, 48),
    *,
    config: RunConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, float]:
    """Run `rounds` rounds of three phases of `seconds` each on `config` (default: the default
    run) and return throughputs (steps/s), ratios to headless and latencies (ms):

    headless_steps_per_s, watching_steps_per_s, keys_steps_per_s, watching_ratio, keys_ratio,
    status_p50_ms, status_p95_ms, status_max_ms, charts_p50_ms, charts_p95_ms, charts_max_ms,
    presses. `progress` is told what is happening, one line at a time; nothing is printed.
    """
    say = progress or (lambda line: None)
    config = config or RunConfig()
    trainer = Trainer(config)
    say(f"{config.name}: {config.n_inst} inst × {config.d_hidden} hidden × "
        f"{config.n_features} features, batch {config.batch_size}, {trainer.device}")  # fmt: skip
    say("warming up (compilation, first steps)...")
    _keep_running(trainer, 100)
    trainer.run(until=trainer.step + 20)
    t0 = time.perf_counter()
    trainer.run(until=trainer.step + 20)
    fastest = 20 / (time.perf_counter() - t0)

    headless, watching, attached, status, charts = [], [], [], [], []
    for round_ in range(rounds):
        for phase in range(3):
            _keep_running(trainer, int(2 * fastest * (seconds + 3 * SETTLE_SECONDS)) + 100)
            if phase == 0:
                headless.append(headless_rate(trainer, seconds))
                fastest = max(fastest, headless[-1])
            else:
                rate, lat_status, lat_charts = asyncio.run(
                    app_phase(trainer, seconds, size, press_keys=phase == 2)
                )
                (attached if phase == 2 else watching).append(rate)
                status += lat_status
                charts += lat_charts
        say(f"round {round_ + 1}: headless {headless[-1]:.1f} steps/s, app watching "
            f"{watching[-1]:.1f} steps/s, app with {len(lat_status)} key presses "
            f"{attached[-1]:.1f} steps/s")  # fmt: skip

    base = statistics.mean(headless)
    result = {
        "headless_steps_per_s": base,
        "watching_steps_per_s": statistics.mean(watching),
        "keys_steps_per_s": statistics.mean(attached),
        "watching_ratio": statistics.mean(watching) / base,
        "keys_ratio": statistics.mean(attached) / base,
        "presses": float(len(status)),
    }
    for name, values in (("status", status), ("charts", charts)):
        ms = [1000 * v for v in values] or [float("nan")]
        result[f"{name}_p50_ms"] = percentile(ms, 0.5)
        result[f"{name}_p95_ms"] = percentile(ms, 0.95)
        result[f"{name}_max_ms"] = max(ms)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="headless/watching/keys rounds")
    parser.add_argument("--preset", default=None, help="a preset instead of the default run")
    parser.add_argument("--size", default="160x48", help="terminal size for the app")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    config = preset(args.preset) if args.preset else RunConfig()
    r = measure(
        args.seconds,
        args.rounds,
        (width, height),
        config=config,
        progress=lambda line: print(line, flush=True),
    )
    base = r["headless_steps_per_s"]
    print(f"throughput: headless {base:.1f} steps/s; app watching "
          f"{r['watching_steps_per_s']:.1f} ({r['watching_ratio']:.1%}); "
          f"app with a key press every 250–500 ms {r['keys_steps_per_s']:.1f} "
          f"({r['keys_ratio']:.1%})")  # fmt: skip
    for name, label in (("status", "header"), ("charts", "charts")):
        print(f"key-to-screen latency ({label}) over {r['presses']:.0f} presses: "
              f"p50 {r[f'{name}_p50_ms']:.1f} ms, p95 {r[f'{name}_p95_ms']:.1f} ms, "
              f"max {r[f'{name}_max_ms']:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
