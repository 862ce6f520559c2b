"""Checkpoint timing: a resumable checkpoint at least every ``train.checkpoint_seconds`` and at
``train.halt_after_step``; ``Halt`` then stops the run there (status running), as resume tests and trunks need."""

from __future__ import annotations

import time

from scaling.core import records
from scaling.train.callbacks import Callback


class CheckpointTimer(Callback):
    def __init__(self):
        self.last = 0.0

    def on_start(self, run) -> None:
        self.last = time.perf_counter()

    def after_step(self, run, row) -> None:
        t, step = run.spec.cfg.train, row["step"]
        # no checkpoint after the last step: completion follows, and it is safe to die in
        if step < run.spec.plan.steps and (
            time.perf_counter() - self.last > t.checkpoint_seconds or step == t.halt_after_step
        ):
            run.checkpoint()
            self.last = time.perf_counter()


class Halt(Callback):
    def after_step(self, run, row) -> None:
        step = row["step"]
        if step == run.spec.cfg.train.halt_after_step and step < run.spec.plan.steps:  # after its checkpoint
            run.stop(run.finish(records.STATUS_RUNNING, f"halted after step {step} (train.halt_after_step)"))
