"""Preemption: SIGTERM or SIGUSR1 (and submitit's own signal) only set a flag while a run trains; at the next step
boundary every rank checkpoints, the run is marked ``running`` with the reason, and it stops to be relaunched."""
from __future__ import annotations

import signal
import threading

from scaling.core import records
from scaling.launch import requeue
from scaling.train.callbacks import Callback

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preemption(Callback):
    def __init__(self):
        self.signum, self._prev = None, {}

    def on_start(self, run) -> None:
        self.signum = None
        if threading.current_thread() is threading.main_thread():  # handlers can only be set from the main thread
            for s in PREEMPT_SIGNALS + requeue.signals():  # + submitit's own (USR2) under Hydra's submitit launcher
                self._prev[s] = signal.signal(s, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def after_step(self, run, row) -> None:
        step = row["step"]
        # all ranks stop at the same step, whichever of them the signal reached first
        if step < run.spec.plan.steps and run.world.any(self.signum is not None, run.compute.device):
            name = signal.Signals(self.signum or signal.SIGTERM).name
            run.state.preemptions += 1
            run.checkpoint()
            run.stop(run.finish(records.STATUS_RUNNING, f"preempted ({name}) at step {step}"), preempted=name)

    def on_finish(self, run, summary) -> None:
        for s, h in self._prev.items():
            signal.signal(s, h)
        self._prev = {}
