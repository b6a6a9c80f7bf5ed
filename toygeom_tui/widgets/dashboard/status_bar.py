"""The dashboard's two header lines: the run (name, device, step, jumps so far, speed, ETA,
state) and the selected instance (p, 1/(1−S), loss, ‖W‖²_F, D*), the latter at the step the
geometry views show while travelling back in time, marked as such."""

from __future__ import annotations

import numpy as np
from rich.markup import escape

from engine.geometry import dims_per_feature_of
from engine.run import Run
from toygeom_tui.clock import clock
from toygeom_tui.time_travel import Moment
from toygeom_tui.widgets.text_lines import TextLines

STATE_MARKS = {
    "ready": "·",
    "training": "▶",
    "paused": "‖",
    "done": "✓",
    "stopped": "■",
    "diverged": "✗",
    "lost": "✗",
}


def _value(array: np.ndarray | None, index: int, fmt: str) -> str:
    if array is None or index >= len(array) or not np.isfinite(array[index]):
        return "–"
    return format(float(array[index]), fmt)


def _where(device: object) -> str:
    """Where the run trains: the torch device's type, or a remote run's own words (its pid)."""
    return device if isinstance(device, str) else device.type  # type: ignore[attr-defined]


class StatusBar(TextLines):
    def show(
        self,
        run: Run,
        selected: int,
        feature_probability: np.ndarray,
        jumps: int = 0,
        moment: Moment | None = None,
    ) -> None:
        """feature_probability (inst,): each instance's p (mean over its features); `jumps`: how
        many so far; `moment`: the recorded step the geometry views show (None: live)."""
        cfg, state = run.config, run.state
        rate = run.steps_per_second
        live = state == "training" and rate > 0
        eta = clock((run.total_steps - run.step) / rate) if live else "--:--"
        speed = f"{rate:,.1f} steps/s" if live else "– steps/s"
        short_speed = speed
        if state == "training" and run.preparing:
            speed = "preparing the step… (the first run builds or compiles it)"
            short_speed = "preparing the step…"
        mark, name = STATE_MARKS.get(state, "?"), escape(cfg.name)
        steps = f"{run.step:,}/{run.total_steps:,}"
        jumps_text = f"{jumps} jump{'s' * (jumps != 1)}"
        rest = f"{jumps_text} · {speed} · ETA {eta}"
        short_rest = f"{jumps_text} · {short_speed} · ETA {eta}"
        # Longest first; narrower terminals lose the device, the word "step", then the state's
        # name (its mark stays), never a training run's rate or ETA; a paused or finished run's
        # placeholders for them go before anything else.
        run_line = (
            f"[b]{mark} {state}[/b]  {name} · {_where(run.device)} · step {steps} · {rest}",
            f"[b]{mark} {state}[/b]  {name} · step {steps} · {short_rest}",
            f"[b]{mark} {state}[/b]  {name} · {steps} · {short_rest}",
            f"[b]{mark}[/b] {name} · {steps} · {short_rest}",
        )
        if not live:
            run_line = (*run_line[:2], f"[b]{mark} {state}[/b]  {name} · {steps} · {jumps_text}")
        p = float(feature_probability[selected])
        frob = run.latest_frobenius_sq
        loss = run.latest_loss
        if moment is not None:
            frob, loss = moment.frobenius_sq, moment.loss
        dims_star = dims_per_feature_of(frob, cfg.d_hidden) if frob is not None else None
        loss_text = f" · loss {_value(loss, selected, '.3g')}"
        frob_text = f" · ‖W‖²_F {_value(frob, selected, '.3g')}"
        dims_text = f" · D* {_value(dims_star, selected, '.3g')}"
        values = loss_text + frob_text + dims_text
        # Longest first: then without the instance count, 1/(1−S) (1/p), ‖W‖²_F (D* = d/‖W‖²_F).
        instance = (
            f"instance [b]{selected}[/b] of 0–{cfg.n_inst - 1} · p {p:.3g} · 1/(1−S) {1 / p:.3g}"
            + values,
            f"instance [b]{selected}[/b] · p {p:.3g} · 1/(1−S) {1 / p:.3g}" + values,
            f"inst [b]{selected}[/b] · p {p:.3g}" + values,
            f"inst [b]{selected}[/b] · p {p:.3g}" + loss_text + dims_text,
        )
        if moment is not None:
            full, short = moment.marker(run.step), moment.marker()
            instance = (
                f"[reverse b] {full} [/] {instance[0]}",
                *(f"[reverse b] {short} [/] {form}" for form in instance),
            )
        self.set_lines([run_line, instance])
