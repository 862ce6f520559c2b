"""Test-only fault injection at named points of the trainer's writes: the way tests kill a run at an exact moment.

``SCALING_FAULT_POINT=<name>:<n>[:<action>][,...]`` makes the ``n``-th time this process reaches point ``name``
(1-based) either kill the process with SIGKILL (``kill``, the default: a machine that vanishes, nothing flushed) or
raise ``OSError(ENOSPC)`` (``enospc``: a full disk during that write). Unset, ``hit`` is one dict lookup, so the
points stay in production code at no cost. The points (``POINTS``) sit where a crash is most damaging: inside each
atomic write after the temp file is complete but before it replaces the real one, and between the final summary
and the checkpoint's removal.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "SCALING_FAULT_POINT"

POINTS = {
    "start": "run directory locked and config written, before the first step",
    "step": "after an optimizer step (n counts steps taken by this process)",
    "eval": "after a validation evaluation, before that step's bookkeeping (n counts evaluations)",
    "checkpoint.write": "inside a checkpoint write: temp file complete, not yet renamed",
    "checkpoint.after": "checkpoint renamed into place, metrics of that step not yet written",
    "metrics.write": "inside a metrics.parquet write: temp file complete, not yet renamed",
    "summary.write": "inside a summary.json write: temp file complete, not yet renamed",
    "weights.write": "inside the final model.pt write: temp file complete, not yet renamed",
    "finish.unlink": "final summary written, checkpoint not yet removed",
}
ACTIONS = ("kill", "enospc")


def _parse(spec: str) -> dict[str, tuple[int, str]]:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":")
        if len(parts) not in (2, 3) or parts[0] not in POINTS or not parts[1].isdigit() or int(parts[1]) < 1:
            raise ValueError(
                f"{ENV}={spec!r}: each item must be <point>:<n>[:<action>] with point one of "
                f"{sorted(POINTS)}, n >= 1 and action one of {ACTIONS}"
            )
        action = parts[2] if len(parts) == 3 else "kill"
        if action not in ACTIONS:
            raise ValueError(f"{ENV}={spec!r}: action {action!r} must be one of {ACTIONS}")
        out[parts[0]] = (int(parts[1]), action)
    return out


_ARMED = _parse(os.environ.get(ENV, ""))
_COUNTS: dict[str, int] = {}


def hit(name: str) -> None:
    """Mark that this process reached point ``name``; fire the fault armed for this hit, if any."""
    if not _ARMED or name not in _ARMED:
        return
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    n, action = _ARMED[name]
    if _COUNTS[name] != n:
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.ENOSPC, f"No space left on device (injected by {ENV} at {name}:{n})")


def before_replace(name: str):
    """A callback for records' atomic writes: the fault point ``name`` hit once the temp file is complete."""
    return lambda tmp: hit(name)
