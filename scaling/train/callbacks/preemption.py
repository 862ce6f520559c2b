"""Preemption: a SIGTERM or SIGUSR1 (scaling/launch/preemption.py) that arrived before the run started stops it at once,
one that arrives while it trains stops it at the next step boundary after every rank checkpoints; either way the run
is marked ``running`` with the reason, and ``Run.train`` raises ``Preempted`` (exit 75) for a relaunch to resume."""

from __future__ import annotations

from scaling.core import records
from scaling.launch import preemption
from scaling.train.callbacks import Callback


class Preemption(Callback):
    def __init__(self):
        self.caught_here = False

    def on_start(self, run) -> None:
        self.caught_here = preemption.catch()  # `python -m scaling.train` caught them already, at its first line
        if run.world.any(preemption.pending(), run.compute.device):  # every rank stops, whichever was signalled
            name = preemption.take()
            run.stop(
                run.finish(records.STATUS_RUNNING, f"preempted ({name}) during start-up, at step {run.state.step}"),
                preempted=name,
            )

    def after_step(self, run, row) -> None:
        step = row["step"]
        # all ranks stop at the same step, whichever of them the signal reached first
        if step < run.spec.plan.steps and run.world.any(preemption.pending(), run.compute.device):
            name = preemption.take()
            run.state.preemptions += 1
            run.checkpoint()
            run.stop(run.finish(records.STATUS_RUNNING, f"preempted ({name}) at step {step}"), preempted=name)

    def on_finish(self, run, summary) -> None:
        if self.caught_here:
            preemption.release()
