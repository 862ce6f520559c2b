"""The callbacks every run has, in the order they are called, with a user's own in their place."""

from __future__ import annotations

from typing import Sequence

from scaling.train.callbacks import HOOKS, Callback
from scaling.train.callbacks.checkpointing import CheckpointTimer, Halt
from scaling.train.callbacks.divergence import Divergence
from scaling.train.callbacks.early_stop import EarlyStop
from scaling.train.callbacks.fault_points import FaultPoints
from scaling.train.callbacks.preemption import Preemption
from scaling.train.callbacks.progress import ProgressBar
from scaling.train.callbacks.wandb_logging import WandbLogging


def check(user: Sequence[object]) -> None:
    """A user's callbacks, checked before the run writes anything: each must have all five hooks."""
    for cb in user:
        if not isinstance(cb, Callback):
            missing = [h for h in HOOKS if not callable(getattr(cb, h, None))]
            raise TypeError(
                f"callbacks: {cb!r} lacks {missing}: a callback needs the methods {list(HOOKS)} "
                f"(scaling/train/callbacks/__init__.py; subclass Callback for no-op defaults)"
            )


def default_callbacks(user: Sequence[Callback] = ()) -> list[Callback]:
    """The built-in side jobs with a user's callbacks in their place: observers first, then the user's, then the
    callbacks that may stop the run (divergence and early stop before preemption: a diverged or stopped run is final,
    not resumable)."""
    check(user)
    return [
        ProgressBar(),
        WandbLogging(),
        *user,
        FaultPoints(),
        Divergence(),
        EarlyStop(),
        Preemption(),
        CheckpointTimer(),
        Halt(),
    ]
