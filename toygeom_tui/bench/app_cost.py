"""What the app costs while the default run trains: key-to-screen latency and throughput.

    python -m toygeom_tui.bench.app_cost [--seconds 15] [--rounds 2] [--preset NAME] [--size 160x48]

Each round has three phases: headless, the app watching (live charts, no input), and the app
with a key press every 250–500 ms.

One Trainer (the default feature-geometry config, steps raised so it never finishes) trains in
alternating phases in this process: headless (`Trainer.run` in a thread, as `toygeom-tui train`
does) and inside the app (Textual's headless driver, which still lays out and renders every
frame; only the final write to a terminal is skipped). Throughput is steps/s per phase; the ratio
is app / headless over the same rounds.

Latency: during each app phase `j`/`k` are posted as key events every 250–500 ms, and the time
is taken from the post to the first rendered frame whose status line names the new instance.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import threading
import time

from textual import events

from engine.config import RunConfig, preset
from engine.trainer import Trainer
from toygeom_tui.app import ToygeomApp


def headless_rate(trainer: Trainer, seconds: float) -> float:
    thread = threading.Thread(target=trainer.run)
    thread.start()
    time.sleep(1.0)  # let the thread settle
    s0, t0 = trainer.step, time.perf_counter()
    time.sleep(seconds)
    rate = (trainer.step - s0) / (time.perf_counter() - t0)
    trainer.stop()
    thread.join()
    return rate


async def app_phase(
    trainer: Trainer, seconds: float, size: tuple[int, int], press_keys: bool = True
) -> tuple[float, list[float], list[float]]:
    """(steps/s with the app attached, header latencies, chart latencies), latencies in s.

    Without `press_keys` the app only watches (live charts, no input): the usual case.
    """
    app = ToygeomApp(trainer, autosave_seconds=0)
    # (time, status text, instance the loss chart last rendered) of every frame
    frames: list[tuple[float, str, int]] = []
    header: list[float] = []
    charts: list[float] = []
    async with app.run_test(size=size) as pilot:
        display = app._display
        chart = app.dashboard.loss_chart

        def timed_display(screen, renderable) -> None:
            display(screen, renderable)
            drawn = chart.selected if chart._strips_key == chart_key() else -1
            frames.append((time.perf_counter(), str(app.dashboard.status_bar.render()), drawn))

        def chart_key() -> tuple:
            return (chart._data_version, chart.size, app.theme)

        app._display = timed_display  # type: ignore[method-assign]
        await pilot.pause(1.0)
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
            header.append(next(t for t, text, _ in frames if expected in text) - sent)
            charts.append(next(t for t, _, drawn in frames if drawn == target) - sent)
            await asyncio.sleep(random.uniform(0.25, 0.5))
        rate = (trainer.step - s0) / (time.perf_counter() - t0)
        app._display = display  # type: ignore[method-assign]
    trainer.stop()
    return rate, header, charts


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="headless/app pairs")
    parser.add_argument("--preset", default=None, help="a preset instead of the default run")
    parser.add_argument("--size", default="160x48", help="terminal size for the app")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    config = preset(args.preset) if args.preset else RunConfig()
    trainer = Trainer(config.replace(steps=10**9))
    print(f"{config.name}: {config.n_inst} inst × {config.d_hidden} hidden × "
          f"{config.n_features} features, batch {config.batch_size}, {trainer.device}")  # fmt: skip
    print("warming up (compilation, first steps)...", flush=True)
    trainer.run(until=trainer.step + 20)

    headless, watching, attached, header, charts = [], [], [], [], []
    for round_ in range(args.rounds):
        headless.append(headless_rate(trainer, args.seconds))
        watch_rate, _, _ = asyncio.run(
            app_phase(trainer, args.seconds, (width, height), press_keys=False)
        )
        watching.append(watch_rate)
        rate, lat_header, lat_charts = asyncio.run(
            app_phase(trainer, args.seconds, (width, height))
        )
        attached.append(rate)
        header += lat_header
        charts += lat_charts
        print(f"round {round_ + 1}: headless {headless[-1]:.1f} steps/s, app watching "
              f"{watch_rate:.1f} steps/s, app with {len(lat_header)} key presses "
              f"{rate:.1f} steps/s", flush=True)  # fmt: skip

    base = statistics.mean(headless)
    print(f"throughput: headless {base:.1f} steps/s; app watching "
          f"{statistics.mean(watching):.1f} ({statistics.mean(watching) / base:.1%}); "
          f"app with a key press every 250–500 ms {statistics.mean(attached):.1f} "
          f"({statistics.mean(attached) / base:.1%})")  # fmt: skip
    for name, values in (("header", header), ("charts", charts)):
        ms = [1000 * v for v in values]
        print(f"key-to-screen latency ({name}) over {len(ms)} presses: "
              f"p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
              f"max {max(ms):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
