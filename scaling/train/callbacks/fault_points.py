"""The run-level fault points of scaling/train/faults.py (``start``, ``step``, ``eval``): where tests kill a run
between its writes. The points inside each write stay in the write itself (``faults.before_replace``)."""

from __future__ import annotations

from scaling.train import faults
from scaling.train.callbacks import Callback


class FaultPoints(Callback):
    def on_start(self, run) -> None:
        faults.hit("start")

    def after_eval(self, run, row) -> None:
        faults.hit("eval")

    def after_step(self, run, row) -> None:
        faults.hit("step")
