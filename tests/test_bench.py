"""`toygeom-tui bench`: its measurements run and its table reports what was measured.

Speed itself is never asserted here (timed tests on a shared machine are noise); these check that
each measurement works end to end on a tiny budget and that the report says met / NOT MET right.
"""

from __future__ import annotations

import math

import pytest

from engine import fused_cpu
from engine.config import RunConfig
from toygeom_tui.bench import (
    call_spread,
    engine_rate,
    fma_peak,
    loop_cpu,
    memory,
    report,
    save_cost,
    train_rate,
)
from toygeom_tui.cli import main


def test_engine_rate_measures_every_method(small_config: RunConfig) -> None:
    rounds = []
    rates = engine_rate.measure(
        small_config.replace(steps=10**9),
        rounds=2,
        seconds=0.05,
        progress=lambda r, cells: rounds.append((r, sorted(cells))),
    )
    assert sorted(rates) == ["plain", "step", "trainer"]
    assert all(rate > 0 for rate in rates.values())
    assert rounds == [(0, sorted(rates)), (1, sorted(rates))]


def test_call_spread_times_every_call_of_a_run(small_config: RunConfig) -> None:
    calls = call_spread.call_seconds(small_config.replace(steps=95))
    assert [n for _, n in calls] == [10] * 9 + [5]  # a call per log interval, the last one short
    assert all(seconds > 0 for seconds, _ in calls)


def test_memory_run_reports_history_bounded() -> None:
    r = memory.measure(steps=3000, with_app=False)
    assert r["steps"] == 3000
    assert r["rss_first_mb"] > 0 and r["rss_last_mb"] > 0
    assert r["growth_mb"] == pytest.approx(r["rss_last_mb"] - r["rss_first_mb"])
    assert 0 < r["history_records"] <= 300  # one record per 10 steps at most


def test_save_cost_measures_each_phase_on_disk(tmp_path) -> None:
    r = save_cost.measure(steps=300, saves=2, directory=tmp_path)
    assert r["run"]["step"] == 300 and r["run"]["snapshots"] > 10
    assert all(r[phase]["held_ms"] > 0 for phase in ("first", "steady", "new"))
    snapshot = 20 * 20 * 200 * 4  # bytes of one default W
    assert r["first"]["bytes"] > r["run"]["snapshots"] * snapshot, "the first has them all"
    assert r["new"]["bytes"] > 0 and r["steady"]["bytes"] > 0
    assert list(tmp_path.iterdir()) == [], "its folder is removed"
    r = save_cost.measure_loop(steps=300, seconds=0.3, directory=tmp_path)
    assert r["none"]["rate"] > 0 and r["none"]["saves"] == 0 and r["autosave"]["rate"] > 0
    often = save_cost.loop(300, 0.5, 0.05, tmp_path)
    assert often["saves"] > 0 and 0 < often["held_ms"] <= often["held_max_ms"]


async def test_loop_cpu_reads_the_event_loops_cpu_and_a_jump_search(
    small_config: RunConfig,
) -> None:
    from engine.trainer import Trainer

    trainer = Trainer(small_config.replace(steps=10**6), compiled=False, dims_every=10)
    trainer.run(until=100)
    assert loop_cpu.jumps_cpu(trainer, calls=2) > 0
    watching, per_press = await loop_cpu.app_cpu(trainer, seconds=0.5, presses=3)
    assert 0 < watching <= 1 and per_press > 0
    assert trainer.state in ("paused", "stopped")  # it paused the run for the presses


def test_table_marks_each_target() -> None:
    figures = [
        report.Figure("fast", 7.0, "7.00×", "≥ 6×", True),
        report.Figure("slow", 2.0, "2.00×", "≥ 3×", False),
        report.Figure("CUDA", None, "skipped: no CUDA device", "—", None),
    ]
    lines = report.table(figures).splitlines()
    assert lines[0].split() == ["figure", "measured", "target"]
    assert lines[1].endswith("met") and "NOT" not in lines[1]
    assert lines[2].endswith("NOT MET")
    assert lines[3].endswith("—"), "no verdict without a measurement"
    targets = ["target", "≥ 6×", "≥ 3×", "—"]
    columns = {line.index(target) for line, target in zip(lines, targets, strict=True)}
    assert len(columns) == 1, "the target column is aligned"


def test_bench_rejects_an_unknown_section(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--only", "gpu-farm"])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_bench_startup_section_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--only", "startup"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "cores" in out[0] and "(--quick)" in out[0]
    help_row = next(line for line in out if line.startswith("toygeom-tui --help"))
    assert "< 1 s" in help_row and help_row.split()[-1] in ("met", "MET")  # no timing asserted


def test_train_rate_times_train_and_the_plain_loop_on_a_preset() -> None:
    """One quick round on the pentagon: `train`'s own report parsed, the plain loop and the
    matmul rate and the FMA peak measured (no speed asserted)."""
    lines: list[str] = []
    r = train_rate.measure(["pentagon"], rounds=1, quick=True, progress=lines.append)
    assert r["pentagon"]["plain"] > 0 and r["pentagon"]["train"] > 0
    assert r["matmul"]["gflops"] > 0
    if fused_cpu.kernel_error() is None:  # the peak's probe builds where the kernel does
        assert r["peak"]["gflops"] > 0
    assert lines and lines[0].startswith("round 1/1 pentagon: plain ")
    assert train_rate.step_flops(RunConfig()) == 5 * 2 * 20 * 1024 * 20 * 200


def test_engine_section_says_what_the_default_ratio_asks_of_this_machine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rates as measured (stood in for: timing them is the train_rate test's job), the
    verdicts and the share the 15× target would take of the matmul rate, from those rates."""
    from engine.config import PRESETS

    rates = {name: {"plain": 10.0, "train": 120.0} for name in PRESETS}
    rates["matmul"], rates["peak"] = {"gflops": 100.0}, {}  # no peak: its probe did not build
    monkeypatch.setattr(train_rate, "measure", lambda *args, **kwargs: rates)
    figures = {f.name: f for f in report._engine(quick=True, say=lambda line: None)}
    default = figures["feature-geometry: train vs plain loop"]
    assert default.value == pytest.approx(12.0) and default.met is False  # 12× < 15×
    assert figures["pentagon: train vs plain loop"].met is True  # 12× ≥ 10×
    share = figures["default run: share of the fp32 matmul rate"]
    flops = train_rate.step_flops(PRESETS["feature-geometry"]) / 1e9  # 0.82 GFLOP a step
    assert share.value == pytest.approx(120 * flops / 100) and share.met is True
    assert f"15× would be {15 * 10 * flops / 100:.0%}" in share.shown  # 123%: out of reach


def test_the_default_runs_share_is_of_the_fma_peak_where_torch_mm_falls_short_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a CPU whose torch BLAS runs below the peak (MKL on AMD), the 60% target is judged
    against the peak, and the share of torch.mm is still shown."""
    from engine.config import PRESETS

    rates = {name: {"plain": 10.0, "train": 200.0} for name in PRESETS}
    rates["matmul"], rates["peak"] = {"gflops": 150.0}, {"gflops": 400.0}
    monkeypatch.setattr(train_rate, "measure", lambda *args, **kwargs: rates)
    figures = {f.name: f for f in report._engine(quick=True, say=lambda line: None)}
    share = figures["default run: share of the fp32 peak rate"]
    flops = train_rate.step_flops(PRESETS["feature-geometry"]) / 1e9
    assert share.value == pytest.approx(200 * flops / 400) and share.met is False  # 41%
    assert f"torch.mm 150 GFLOP/s, {200 * flops / 150:.0%}" in share.shown  # 109% of torch.mm
    assert "of fp32 peak" in figures["pentagon: train vs plain loop"].shown


def test_the_fma_peak_probe_measures_a_rate_on_one_and_on_two_threads() -> None:
    if (error := fused_cpu.kernel_error()) is not None:
        pytest.skip(f"no native builds here: {error}")
    one, two = fma_peak.peak_rate(1, seconds=0.1), fma_peak.peak_rate(2, seconds=0.1)
    assert one is not None and two is not None and 0 < one < math.inf and 0 < two < math.inf


def test_the_machine_line_names_the_cpus_family_model_and_vector_width() -> None:
    """The figures' line names the CPU by family, model and vectors from the first processor's
    block of /proc/cpuinfo (the model name "AMD EPYC" alone has been a Zen 3, 4 and 5 here), and
    by its bare name where those fields are missing."""
    zen4 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
            "model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512dq\n\n"
            "processor\t: 1\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: other\n")  # fmt: skip
    assert report.cpu_name(zen4) == "AMD EPYC (family 25 model 17, AVX-512)"
    zen3 = "cpu family\t: 25\nmodel\t\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n"
    assert report.cpu_name(zen3) == "AMD EPYC (family 25 model 1, AVX2)"
    assert report.cpu_name("model name\t: Some CPU\n") == "Some CPU"
    assert report.cpu_name("Processor\t: AArch64\n") is None
