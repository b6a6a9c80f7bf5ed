"""Sweeps on this machine: the spec format and its errors, a sweep from the command line, its
record, --resume, Ctrl-C, and `train --seeds`."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sweeps import RUN_NAMES, SPEC, assert_same_session, cli, write_spec

from engine.config import ConfigError, preset
from engine.session import load_session, session_info
from engine.sweep import (
    DONE,
    PENDING,
    SWEEP_FILE,
    Sweep,
    SweepError,
    load_spec,
    read_record,
    seed_spec,
    spec_from_dict,
    value_label,
    write_session_files,
)


# -- the spec -------------------------------------------------------------------------------------
def test_spec_runs_are_the_cartesian_product_in_the_order_written(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    assert [run.name for run in spec.runs] == RUN_NAMES
    assert spec.runs[3].values == {"lr": 3e-3, "seed": 1}
    pentagon = preset("pentagon")
    for run in spec.runs:
        expected = pentagon.replace(steps=200, device="cpu", **run.values)
        assert run.config == expected


def test_a_grid_may_vary_the_preset_and_tables() -> None:
    spec = spec_from_dict(
        {
            "steps": 10,
            "grid": {
                "preset": ["pentagon", "correlated"],
                "importance": [1.0, {"kind": "geometric", "ratio": 0.5}],
            },
        }
    )
    names = [run.name for run in spec.runs]
    assert names[0] == "preset=pentagon,importance=1.0"
    assert names[1] == "preset=pentagon,importance=geometric-0.5"
    assert value_label(list(range(100))).startswith("0-1-2-3")
    assert len(value_label(list(range(100)))) == 48
    assert spec.runs[2].config.n_features == preset("correlated").n_features
    assert spec.runs[3].config.importance == {"kind": "geometric", "ratio": 0.5}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"preset": "pentagon"}, "grid: missing"),
        ({"grid": []}, "grid: expected a table"),
        ({"grid": {}}, "grid: expected a table"),
        ({"grid": {"learning_rate": [1]}}, "grid.learning_rate: unknown setting"),
        ({"grid": {"lr": 1e-3}}, "grid.lr: expected a non-empty list"),
        ({"grid": {"lr": []}}, "grid.lr: expected a non-empty list"),
        ({"grid": {"seed": [1, 1]}}, "grid.seed: value 1 appears twice"),
        ({"lr": 1e-3, "grid": {"lr": [1e-3]}}, "lr: set both at the top and in [grid]"),
        ({"grid": {"lr": [1e-3, 20.0]}}, "run lr=20.0: lr: 20.0 is out of range"),
        ({"grid": {"preset": ["pentagon", "hexagon"]}}, "preset: 'hexagon' is not known"),
        ({"preset": "hexagon", "grid": {"seed": [0]}}, "preset: 'hexagon' is not known"),
        ({"stepz": 5, "grid": {"seed": [0]}}, "stepz: unknown setting"),
        (
            {"grid": {"seed": list(range(101)), "lr": [0.1] + [i / 1e4 for i in range(1, 100)]}},
            "grid: 10,100 runs is more than 10,000",
        ),  # fmt: skip
    ],
)
def test_a_bad_spec_is_one_line_naming_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        spec_from_dict(spec, where="s.toml")
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("s.toml: ")
    assert message in text


def test_the_cli_says_what_is_wrong_with_a_spec_and_writes_nothing(tmp_path: Path) -> None:
    bad = write_spec(tmp_path, 'preset = "pentagon"\n[grid]\nlr = [1e-3, -1.0]\n')
    result = cli("sweep", str(bad), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
    assert "run lr=-1.0: lr: -1.0 is out of range" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    not_toml = write_spec(tmp_path, "[grid\n")
    result = cli("sweep", str(not_toml), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "not valid TOML" in result.stderr


def test_seed_spec_is_a_grid_over_the_seed() -> None:
    config = preset("pentagon").replace(seed=5)
    spec = seed_spec(config, 3)
    assert [run.name for run in spec.runs] == ["seed=5", "seed=6", "seed=7"]
    assert [run.config for run in spec.runs] == [config.replace(seed=s) for s in (5, 6, 7)]
    with pytest.raises(ConfigError, match="seeds: 0 is out of range"):
        seed_spec(config, 0)


# -- a local sweep ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local_sweep(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess]:
    folder = tmp_path_factory.mktemp("local")
    result = cli("sweep", str(write_spec(folder)), "--out", str(folder / "out"), "--jobs", "2")
    return folder / "out", result


def test_a_local_sweep_saves_each_run_as_a_session_and_records_it(
    local_sweep: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, result = local_sweep
    assert result.returncode == 0, result.stderr
    record = read_record(out)
    assert record["spec"] == {
        "preset": "pentagon", "steps": 200, "device": "cpu",
        "grid": {"lr": [1e-3, 3e-3], "seed": [0, 1]},
    }  # fmt: skip
    assert [run["name"] for run in record["runs"]] == RUN_NAMES
    for run in record["runs"]:
        assert run["status"] == DONE
        info = session_info(out / run["name"])
        assert info.step == info.total_steps == 200
        assert info.config.lr == run["values"]["lr"] and info.config.seed == run["values"]["seed"]
        trainer = load_session(out / run["name"], compiled=False)
        figures = run["figures"]
        assert figures["loss"] == pytest.approx(float(trainer.latest_loss.sum()), rel=1e-6)
        frob = trainer.W.square().sum(dim=(1, 2))
        assert figures["frobenius_sq"] == pytest.approx(float(frob.mean()), rel=1e-5)
        assert figures["dims_star"] == pytest.approx(float((2 / frob).mean()), rel=1e-5)
        assert 0 <= figures["on_fractions"] <= 8 * 5
    # the higher learning rate gets further in 200 steps: the figures are of these runs
    by_name = {run["name"]: run["figures"]["loss"] for run in record["runs"]}
    assert by_name["lr=0.003,seed=0"] < by_name["lr=0.001,seed=0"]


def test_progress_is_a_line_per_run_and_a_bar_with_eta(
    local_sweep: tuple[Path, subprocess.CompletedProcess],
) -> None:
    out, result = local_sweep
    lines = result.stderr.splitlines()
    finished = [line for line in lines if line.startswith("[") and "  done  loss " in line]
    assert sorted(line.split()[1] for line in finished) == RUN_NAMES
    assert {line.split()[0] for line in finished} == {"[1/4]", "[2/4]", "[3/4]", "[4/4]"}
    bars = [line for line in lines if " runs  " in line and "ETA" in line]
    assert len(bars) == 4 and bars[-1].startswith("[" + "#" * 24 + "] 4/4 runs")
    assert f"sweep {out}: 4 done" in result.stdout


def test_a_sweep_does_not_overwrite_a_folder(
    tmp_path: Path, local_sweep: tuple[Path, subprocess.CompletedProcess]
) -> None:
    out, _ = local_sweep
    result = cli("sweep", str(write_spec(tmp_path)), "--out", str(out))
    assert result.returncode == 2 and "already holds a sweep; continue it with --resume" in (
        result.stderr
    )


def test_resume_runs_only_what_is_missing(
    tmp_path: Path, local_sweep: tuple[Path, subprocess.CompletedProcess]
) -> None:
    source, _ = local_sweep
    out = tmp_path / "out"
    shutil.copytree(source, out)
    shutil.rmtree(out / "lr=0.001,seed=1")  # a run lost from disk
    (out / "lr=0.003,seed=0" / "session.json").unlink()  # half a session
    kept = out / "lr=0.001,seed=0" / "weights.safetensors"
    kept_mtime = kept.stat().st_mtime_ns
    result = cli("sweep", "--resume", str(out), "--jobs", "1")
    assert result.returncode == 0, result.stderr
    ran = sorted(line.split()[1] for line in result.stderr.splitlines() if "  done  loss" in line)
    assert ran == ["lr=0.001,seed=1", "lr=0.003,seed=0"]
    assert "[3/4]" in result.stderr and "[1/4]" not in result.stderr
    assert kept.stat().st_mtime_ns == kept_mtime  # a finished run is not touched
    for name in RUN_NAMES:
        assert_same_session(source / name, out / name)  # and reruns are exact
    again = cli("sweep", "--resume", str(out))
    assert again.returncode == 0 and "(0 run now" in again.stdout


def test_open_on_a_sweep_with_no_finished_run_says_how_to_finish_it(tmp_path: Path) -> None:
    out = tmp_path / "pending"
    Sweep.create(out, load_spec(write_spec(tmp_path)))  # recorded, nothing run yet
    result = cli("open", str(out))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"toygeom-tui: {out}: no run of this sweep has finished yet; resume it with "
        f"toygeom-tui sweep --resume {out}"
    )


def test_open_on_a_broken_sweep_record_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / SWEEP_FILE).write_text('{"spec": ')
    result = cli("open", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"toygeom-tui: {tmp_path / SWEEP_FILE}: not valid JSON")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_resume_of_something_that_is_not_a_sweep(tmp_path: Path) -> None:
    result = cli("sweep", "--resume", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"toygeom-tui: {tmp_path}: not a sweep (no {SWEEP_FILE})"


def test_ctrl_c_keeps_finished_runs_and_resume_completes(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.replace("steps = 200", "steps = 3000"))
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "toygeom_tui", "sweep", str(spec), "--out", str(out), "--jobs", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not (out / SWEEP_FILE).exists() or read_record(out)["runs"][0]["status"] != DONE:
        assert time.monotonic() < deadline and proc.poll() is None, "no run finished"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"run the rest with: toygeom-tui sweep --resume {out}" in stderr
    assert "Traceback" not in stderr
    record = read_record(out)
    done = [run["name"] for run in record["runs"] if run["status"] == DONE]
    assert done and len(done) < 4
    assert all(run["status"] == PENDING for run in record["runs"] if run["name"] not in done)
    for name in done:
        assert session_info(out / name).step == 3000
    assert not [p for p in out.rglob(".*.tmp")]  # no half-written file left behind
    assert not _alive_children(proc.pid)
    result = cli("sweep", "--resume", str(out), "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert Sweep.resume(out).missing() == []


def _alive_children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the sweep's workers must not outlive it)."""
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry.name))
    return children


# -- seeds ----------------------------------------------------------------------------------------
def test_seed_k_of_train_seeds_is_train_seed_k(tmp_path: Path) -> None:
    seeds = cli("train", "--preset", "pentagon", "--steps", "300", "--device", "cpu",
                "--seeds", "3", "--out", str(tmp_path / "seeds"))  # fmt: skip
    assert seeds.returncode == 0, seeds.stderr
    one = cli("train", "--preset", "pentagon", "--steps", "300", "--device", "cpu",
              "--seed", "2", "--out", str(tmp_path / "one"))  # fmt: skip
    assert one.returncode == 0, one.stderr
    record = read_record(tmp_path / "seeds")
    assert [run["name"] for run in record["runs"]] == ["seed=0", "seed=1", "seed=2"]
    a = load_file(tmp_path / "seeds" / "seed=2" / "weights.safetensors")
    b = load_file(tmp_path / "one" / "weights.safetensors")
    torch.testing.assert_close(a["W"], b["W"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a["b_final"], b["b_final"], rtol=1e-5, atol=1e-6)
    final = [session_info(tmp_path / d).final_loss for d in ("seeds/seed=2", "one")]
    assert final[0] == pytest.approx(final[1], rel=1e-5)  # the same batches: the same losses
    other = load_file(tmp_path / "seeds" / "seed=1" / "weights.safetensors")
    assert not torch.allclose(other["W"], b["W"], atol=1e-2)  # seeds are different runs
    losses = [run["figures"]["loss"] for run in record["runs"]]
    assert len(set(losses)) == 3


def test_seeds_flags_that_do_not_fit(tmp_path: Path) -> None:
    for args, message in (
        (["--seeds", "0"], "seeds: 0 is out of range"),
        (["--seeds", "2", "--resume", str(tmp_path)], "continue seeds with sweep --resume"),
        (["--jobs", "2"], "--jobs and --ray run several seeds: add --seeds N"),
        (["--seeds", "2", "--detach"], "--detach is for one run"),
    ):
        result = cli("train", "--preset", "pentagon", *args, "--out", str(tmp_path / "x"))
        assert result.returncode == 2, args
        assert message in result.stderr and result.stderr.count("\n") == 1


def test_ray_without_ray_installed_says_how_to_get_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"  # makes `import ray` fail as if absent
        "from toygeom_tui.cli import main\n"
        f"sys.exit(main(['sweep', {str(write_spec(tmp_path))!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--ray', 'auto']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert 'pip install -e ".[ray]"' in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_the_sweep_rate_bench_times_both_ways() -> None:
    from toygeom_tui.bench import sweep_rate

    rates = sweep_rate.measure(runs=2, steps=50, jobs=1, rounds=1)
    assert sorted(rates) == ["separate", "sweep"]
    assert all(rate > 0 for rate in rates.values())


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/zero", "nested"])
def test_a_hostile_sweep_record_is_one_error_not_a_hang(tmp_path: Path, kind: str) -> None:
    path = tmp_path / SWEEP_FILE
    if kind == "fifo":
        os.mkfifo(path)  # open() without O_NONBLOCK would wait for a writer forever
    elif kind == "link to /dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SweepError, match=str(path)):
        read_record(tmp_path)


@pytest.mark.parametrize(
    "name",
    [
        "../evil",
        ".hidden",
        "a/b",
        "snapshots/../x",
        "snapshots/notes.txt",
        "other/" + "0" * 12 + "-" + "a" * 16 + ".safetensors",
        "",
    ],
)
def test_a_run_result_cannot_write_outside_its_session(tmp_path: Path, name: str) -> None:
    # Results come back from worker processes (or Ray nodes): only a session's own names pass.
    with pytest.raises(SweepError, match="refusing a session file"):
        write_session_files(tmp_path / "run", {name: b"x"})
    assert not (tmp_path / "evil").exists() and not (tmp_path / "x").exists()


def test_a_run_result_writes_its_snapshot_files_into_snapshots(tmp_path: Path) -> None:
    snapshot = f"snapshots/{0:012d}-{'a' * 16}.safetensors"
    write_session_files(tmp_path / "run", {"session.json": b"{}", snapshot: b"w"})
    assert (tmp_path / "run" / snapshot).read_bytes() == b"w"
