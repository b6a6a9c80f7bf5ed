"""The rules of what may happen to a run now (engine.policy), and a LocalRun that obeys them."""

from __future__ import annotations

import time

import pytest

from engine import Trainer, preset
from engine.policy import ACTIONS, GONE, LOST, decide, toggle
from engine.run import LocalRun, Run, RunRefused
from engine.trainer import DIVERGED, DONE, PAUSED, READY, STOPPED, TRAINING

ALLOWED = {  # state (step < total) -> the actions it allows
    READY: {"pause", "resume", "step", "extend", "save"},
    TRAINING: {"pause", "extend", "stop", "save"},
    PAUSED: {"resume", "step", "extend", "stop", "save"},
    STOPPED: {"resume", "step", "extend", "save"},
    DONE: {"resume", "step", "extend", "save"},  # done, then extended: not yet finished
    DIVERGED: set(),
    LOST: set(),
}


@pytest.mark.parametrize("state", list(ALLOWED))
def test_each_state_allows_exactly_its_actions(state):
    allowed = {a for a in ACTIONS if decide(a, state, step=5, total=10)}
    assert allowed == ALLOWED[state]


def test_a_finished_run_can_only_be_extended_or_saved():
    assert {a for a in ACTIONS if decide(a, DONE, 10, 10)} == {"extend", "save"}
    assert "+ trains more" in decide("step", DONE, 10, 10).reason


def test_refusals_say_why():
    assert decide("save", LOST, 1, 2).reason == GONE
    assert decide("save", DIVERGED, 1, 2, error="diverged at step 7").reason == "diverged at step 7"
    assert "pause first" in decide("step", TRAINING, 1, 2).reason
    assert decide("pause", TRAINING, 1, 2).reason == ""
    with pytest.raises(ValueError):
        decide("delete", TRAINING, 1, 2)


def test_toggle():
    assert toggle(TRAINING) == "pause"
    assert toggle(PAUSED) == "resume"


def test_a_local_run_trains_steps_and_refuses_by_the_rules(tmp_path):
    run = LocalRun(Trainer(preset("pentagon").replace(steps=10**6)), tmp_path / "s")
    assert isinstance(run, Run) and not run.remote
    run.step_once()  # from ready: one step, then it waits paused
    assert _wait(lambda: run.step == 1 and run.state == PAUSED)
    with pytest.raises(RunRefused, match="nothing to pause"):
        run.pause()
    run.extend(5)
    assert run.total_steps == 10**6 + 5
    assert run.save() == tmp_path / "s" and (tmp_path / "s" / "session.json").exists()
    run.resume()
    assert _wait(lambda: run.step > 1 and run.state == TRAINING)
    run.close()
    assert run.state == STOPPED and not run.training


def _wait(condition, timeout: float = 60.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_local_run_that_crashes_says_why_and_stops():
    run = LocalRun(Trainer(preset("pentagon").replace(steps=10**6), compiled=False))
    states = []
    run.on("state", lambda t: states.append(t.state))

    def broken(_):
        raise RuntimeError("disk on fire")

    run.on("log", broken)
    run.start()
    assert _wait(lambda: not run.training)
    assert run.state == STOPPED and states[-1] == STOPPED
    assert run.error == "training stopped by an error: disk on fire"


def test_a_local_run_resumed_while_its_last_run_returns_trains_on():
    run = LocalRun(Trainer(preset("pentagon").replace(steps=20), compiled=False))
    lingering = []

    def linger(t):  # the "done" observers (a final save, say) keep the old thread a moment
        if t.state == DONE:
            lingering.append(t.step)
            time.sleep(0.3)

    run.on("state", linger)
    run.start()
    assert _wait(lambda: lingering == [20])
    run.extend(20)
    run.resume()  # while the first run() is still returning
    assert _wait(lambda: run.step == 40 and run.state == DONE and not run.training)
