"""What may happen to a run now: one place for the rules, whoever asks (app, server, script).

`decide(action, state, step, total)` answers with a Verdict: ok, or why not in one line a user
can act on. A run that trains in another process goes by the same rules; the one difference is
a state a viewer can see and the server cannot: LOST (the served run's process is gone).
"""

from __future__ import annotations

from dataclasses import dataclass

# The states a run is in (engine.trainer's), here so that deciding needs no torch.
STATES = READY, TRAINING, PAUSED, DONE, STOPPED, DIVERGED = (  # a Trainer's
    "ready",
    "training",
    "paused",
    "done",
    "stopped",
    "diverged",
)
LOST = "lost"  # a remote run whose process went away without saying it finished (a viewer's)

ACTIONS = ("pause", "resume", "step", "extend", "stop", "save")
GONE = "the run's process is gone; resume it from its last save"
STEP_FIRST_PAUSE = "pause first (p), then space steps once"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""  # why not, for the user; empty when ok

    def __bool__(self) -> bool:
        return self.ok


YES = Verdict(True)


def decide(action: str, state: str, step: int, total: int, error: str | None = None) -> Verdict:
    """May `action` happen to a run in `state` at `step` of `total`? `error`: why it diverged."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; one of {', '.join(ACTIONS)}")
    if state == LOST:
        return Verdict(False, GONE)
    if state == DIVERGED:  # its weights are not finite: nothing to train on, nothing to save
        return Verdict(False, error or "the run diverged; start a new run with a lower lr")
    finished = step >= total
    if action == "save" or action == "extend":
        return YES
    if action == "stop":
        return YES if state in (TRAINING, PAUSED) else Verdict(False, f"the run is {state}")
    if finished and action in ("resume", "step"):
        return Verdict(False, f"the run is finished at step {step:,}; + trains more steps")
    if action == "pause":
        if state in (TRAINING, READY):
            return YES
        return Verdict(False, f"the run is {state}; nothing to pause")
    if action == "resume":
        return YES if state in (PAUSED, READY, STOPPED, DONE) else Verdict(False, "not paused")
    # step: one step of a run that is not training freely
    return Verdict(False, STEP_FIRST_PAUSE) if state == TRAINING else YES


def toggle(state: str) -> str:
    """The action a pause/resume key means in `state`."""
    return "pause" if state == TRAINING else "resume"
