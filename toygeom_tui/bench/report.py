"""`toygeom-tui bench`: every speed figure the project promises, measured in one run.

Sections, in order (each also runs alone, see its module):
    engine   steps/s of the curriculum's plain loop vs what `train` reports, every preset, and
             the default run's share of the fp32 matmul rate, or of the FMA peak where torch.mm
             falls short of it (train_rate); on CUDA when there is a device, the Trainer vs
             the plain loop (engine_rate);
    app      throughput with the app attached vs headless, key-to-screen latency (app_cost);
    memory   RSS over a 1,000,000-step run of the small model with the app attached (memory);
    startup  `toygeom-tui --help` and the app's first paint in a real terminal (startup);
    attach   a served run with one viewer process attached vs none, and the viewer's staleness
             (attach_cost).
`--quick` shortens every section (a 100,000-step memory run): a smoke test, not the figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

SECTIONS = ("engine", "app", "memory", "startup", "attach")


@dataclass(frozen=True)
class Figure:
    name: str
    value: float | None  # None: not measured here (say why in `shown`)
    shown: str
    target: str
    met: bool | None  # None: no target, or not measured


def _engine(quick: bool, say: Callable[[str], None]) -> list[Figure]:
    import torch

    from engine.config import PRESETS
    from toygeom_tui.bench import engine_rate, train_rate

    rounds = 1 if quick else 3
    say(f"engine: {rounds} rounds of the plain loop and `train` on every preset, fp32 matmul")
    r = train_rate.measure(
        list(PRESETS), rounds, quick, progress=lambda line: say(f"engine {line}")
    )
    # The machine's fp32 rate: torch.mm's, or the FMA peak where torch's BLAS falls short of it
    # (MKL on an AMD Zen 5 runs at ~40% of the peak; on the Intel Xeon #13 was filed on, at it).
    gflops = r["matmul"]["gflops"]
    peak = max(gflops, r["peak"].get("gflops", 0.0))
    rate_name = "fp32 peak" if peak > gflops else "fp32 matmul"
    figures = []
    for name, cfg in PRESETS.items():
        plain, train = r[name]["plain"], r[name]["train"]
        ratio = train / plain
        share = train * train_rate.step_flops(cfg) / 1e9 / peak
        aim = train_rate.TARGETS.get(name, 5.0)
        shown = f"{ratio:.1f}× ({plain:.1f} → {train:.1f} steps/s; {share:.0%} of {rate_name})"
        figures.append(Figure(f"{name}: train vs plain loop", ratio, shown, f"≥ {aim:g}×",
                              ratio >= aim))  # fmt: skip
        if name == "feature-geometry":
            # What the ratio's target asks of this machine: the plain loop's speed relative to
            # its matmul rate differs between CPUs, so a ratio can ask for more than a kernel
            # with a batch to draw can reach (over 90% of the matmul rate on some).
            asked = aim * plain * train_rate.step_flops(cfg) / 1e9 / peak
            of_mm = train * train_rate.step_flops(cfg) / 1e9 / gflops
            rates = (
                f"{peak:.0f} GFLOP/s, the FMA peak; 2048³ torch.mm {gflops:.0f} GFLOP/s, "
                f"{of_mm:.0%}"
                if peak > gflops
                else f"{gflops:.0f} GFLOP/s (2048³ torch.mm)"
            )
            figures.append(Figure(f"default run: share of the {rate_name} rate", share,
                                  f"{share:.0%} of {rates}; {aim:g}× would be {asked:.0%}",
                                  "≥ 60%", share >= 0.6))  # fmt: skip
    if not torch.cuda.is_available():
        figures.append(Figure("CUDA", None, "skipped: no CUDA device", "—", None))
        return figures
    seconds = 1.0 if quick else 3.0
    for name in ("default", "pentagon"):
        cfg = engine_rate.CONFIGS[name].replace(device="cuda")
        rates = engine_rate.measure(cfg, rounds + 1, seconds)
        ratio = rates["trainer"] / rates["plain"]
        shown = f"{ratio:.2f}× ({rates['plain']:.1f} → {rates['trainer']:.1f} steps/s)"
        figures.append(Figure(f"{name} on cuda: Trainer vs plain loop", ratio, shown, "—", None))
    return figures


def _app(quick: bool, say: Callable[[str], None]) -> list[Figure]:
    from toygeom_tui.bench import app_cost

    seconds, rounds = (5.0, 1) if quick else (12.0, 3)
    say(f"app: {rounds} rounds of headless / watching / key presses, {seconds:g} s each")
    r = app_cost.measure(seconds, rounds)
    return [
        Figure("app watching vs headless", r["watching_ratio"],
               f"{r['watching_ratio']:.0%} of {r['headless_steps_per_s']:.1f} steps/s", "≥ 90%",
               r["watching_ratio"] >= 0.9),
        Figure("app with a key press every 250–500 ms", r["keys_ratio"],
               f"{r['keys_ratio']:.0%}", "≥ 90%", r["keys_ratio"] >= 0.9),
        Figure("key → status line, p95", r["status_p95_ms"],
               f"{r['status_p95_ms']:.0f} ms ({int(r['presses'])} presses)", "< 100 ms",
               r["status_p95_ms"] < 100),
        Figure("key → charts redrawn, p95", r["charts_p95_ms"],
               f"{r['charts_p95_ms']:.0f} ms", "< 100 ms", r["charts_p95_ms"] < 100),
    ]  # fmt: skip


def _memory(quick: bool, say: Callable[[str], None]) -> list[Figure]:
    from toygeom_tui.bench import memory

    steps = 100_000 if quick else 1_000_000
    say(f"memory: {steps:,} steps of the pentagon model with the app attached")
    r = memory.measure(steps)
    shown = (
        f"{r['growth_mb']:+.1f} MB from step {steps // 10:,} to {steps:,} "
        f"(RSS {r['rss_last_mb']:.0f} MB; history {int(r['history_records'])} records)"
    )
    return [Figure(f"memory over {steps:,} steps", r["growth_mb"], shown, "flat (< 5 MB)",
                   r["growth_mb"] < 5)]  # fmt: skip


def _startup(quick: bool, say: Callable[[str], None]) -> list[Figure]:
    from toygeom_tui.bench import startup

    say("startup: --help and first paint in tmux")
    r = startup.measure(runs=1 if quick else 3)
    figures = [Figure("toygeom-tui --help", r["help_s"], f"{r['help_s']:.2f} s", "< 1 s",
                      r["help_s"] < 1)]  # fmt: skip
    if "first_paint_s" in r:
        paint, dashboard = r["first_paint_s"], r["dashboard_s"]
        figures.append(Figure("app first paint", paint, f"{paint:.2f} s", "< 2 s", paint < 2))
        figures.append(Figure("app dashboard drawn (torch imported, model built)", dashboard,
                              f"{dashboard:.2f} s", "—", None))  # fmt: skip
    else:
        figures.append(Figure("app first paint", None, "skipped: no tmux", "< 2 s", None))
    return figures


def _attach(quick: bool, say: Callable[[str], None]) -> list[Figure]:
    from toygeom_tui.bench import attach_cost

    seconds, rounds = (2.0, 1) if quick else (6.0, 5)
    say(f"attach: {rounds} rounds of one viewer process between no-viewer ones, {seconds:g} s each")
    r = attach_cost.measure(seconds, rounds)
    lag, spread = r["staleness_p95_s"], f"{min(r['ratios']):.0%}–{max(r['ratios']):.0%}"
    return [
        Figure("served run, one viewer attached vs none", r["ratio"],
               f"{r['ratio']:.0%} of {r['none_steps_per_s']:.1f} steps/s (median of {rounds}: "
               f"{spread}; viewer {r['viewer_cpu']:.1%} of a core, server thread "
               f"{r['server_cpu']:.1%})", "≥ 95%", r["ratio"] >= 0.95),
        Figure("attached viewer's staleness, p95", lag,
               f"{lag * 1000:.0f} ms ({int(r['messages'])} messages)", "≤ 1 s", lag <= 1.0),
    ]  # fmt: skip


MEASURES = {
    "engine": _engine,
    "app": _app,
    "memory": _memory,
    "startup": _startup,
    "attach": _attach,
}


def run(sections: list[str], quick: bool, say: Callable[[str], None] = print) -> list[Figure]:
    """Measure `sections` in order, reporting progress through `say`; the figures."""
    figures = []
    for section in sections:
        t0 = time.perf_counter()
        try:
            figures += MEASURES[section](quick, say)
        except Exception as error:  # one broken section must not cost the others' figures
            figures.append(Figure(section, None, f"failed: {type(error).__name__}: {error}",
                                  "—", False))  # fmt: skip
            say(f"{section}: failed ({type(error).__name__}: {error})")
            continue
        say(f"{section}: done in {time.perf_counter() - t0:.0f} s")
    return figures


def table(figures: list[Figure]) -> str:
    """The figures as an aligned plain-text table, one row each, with a verdict."""
    verdict = {True: "met", False: "NOT MET", None: ""}
    rows = [("figure", "measured", "target", "")]
    rows += [(f.name, f.shown, f.target, verdict[f.met]) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + f"  {row[3]}"
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def cpu_name(cpuinfo: str) -> str | None:
    """The CPU as /proc/cpuinfo's text names it: model name, family, model and widest vectors
    ("AMD EPYC (family 25 model 17, AVX-512)"). A model name alone ("AMD EPYC") has stood for
    a Zen 3, a Zen 4 and a Zen 5 on these boxes, whose figures differ by 2x."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if not key and fields:
            break  # the first processor's block is enough
        fields.setdefault(key, value.strip())
    name = fields.get("model name")
    if name is None:
        return None
    flags = fields.get("flags", "").split()
    vectors = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    if vectors:
        details.append(vectors)
    return f"{name} ({', '.join(details)})" if details else name


def machine() -> str:
    """One line naming the machine the figures came from."""
    import os
    import platform

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = cpu_name(info.read()) or cpu
    except OSError:
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; Python {platform.python_version()}"
    )
