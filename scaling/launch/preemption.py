"""Preemption signals, for the whole process: SIGTERM and SIGUSR1 (and submitit's own, scaling/launch/requeue.py) set a
flag instead of killing it. ``python -m scaling.train`` catches them before its first heavy import, so a job preempted
while it is still starting (imports, Hydra, data) stops as a preempted run (exit 75, a summary that says so), not as a
crashed one (143); a run checks the flag when it starts and at every step boundary
(scaling/train/callbacks/preemption.py).
"""

from __future__ import annotations

import signal
import threading

from scaling.launch import requeue

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

_pending: int | None = None
_previous: dict = {}


def _handle(signum, frame) -> None:
    global _pending
    _pending = signum


def catch() -> bool:
    """Route the preemption signals to the flag; whether this call did it (False: already caught, or not the main
    thread, where Python cannot set handlers)."""
    if _previous or threading.current_thread() is not threading.main_thread():
        return False
    for s in PREEMPT_SIGNALS + requeue.signals():  # + submitit's own (USR2) under Hydra's submitit launcher
        _previous[s] = signal.signal(s, _handle)
    return True


def release() -> None:
    """The handlers from before ``catch``."""
    for s, h in _previous.items():
        signal.signal(s, h)
    _previous.clear()


def pending() -> bool:
    return _pending is not None


def take() -> str:
    """The name of the signal that arrived (SIGTERM when none did), and the flag cleared: it is acted on once."""
    global _pending
    name = signal.Signals(_pending or signal.SIGTERM).name
    _pending = None
    return name
