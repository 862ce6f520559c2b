"""Test-only fault injection at named points of the trainer: how tests kill, fill or signal a run at an exact moment.

``SCALING_FAULT_POINT=<name>:<n>[:<action>[:<bytes>]][,...]`` makes the ``n``-th time this process reaches point
``name`` (1-based) do one of ``ACTIONS``:

- ``kill`` (the default): SIGKILL to itself, a machine that vanishes, nothing flushed;
- ``enospc``: raise ``OSError(ENOSPC)``, an injected full disk during that write;
- ``fill``: a real full disk: write a filler file of zeros (``FILLER`` in the run directory's parent folder) until the
  filesystem answers ENOSPC, give back ``<bytes>`` of it (default 0), and carry on, so the writes that follow fail for
  real. At a write point (``*.write``) the n-th write is counted and the disk filled when that write *starts*, so its
  temp file (or its rename) is what hits the full disk; no exception is injected;
- ``sigterm`` / ``sigusr1``: send that real signal to this process (``os.kill(os.getpid(), ...)``) and carry on, as a
  scheduler's preemption arriving at that moment; the start-up stages (``STAGES``) are points for this.

Unset, ``hit`` is one dict lookup, so the points stay in production code at no cost. The write points sit where a
crash is most damaging: inside each atomic write after the temp file is complete but before it replaces the real one
(``kill``/``enospc``), or as the write starts (``fill``), and between the final summary and the checkpoint's removal.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

ENV = "SCALING_FAULT_POINT"
FILLER = "_fault_filler"  # in the run directory's parent (the sweep folder): tests remove it to give the room back

# the start-up of `python -m scaling.train`, in order (README.md: faults); a signal at any of them is a preemption
STAGES = {
    "startup.caught": "first line of `python -m scaling.train`: preemption signals caught, nothing heavy imported yet",
    "startup.checked": "command line checked before Hydra (scaling/train/command_line.py), torch not yet imported",
    "startup.imported": "torch, Hydra and the trainer imported, Hydra not yet started",
    "startup.composed": "config composed by Hydra and converted, not yet resolved",
    "startup.resolved": "sweep point applied, config validated, run directory named but not yet made",
    "startup.locked": "run directory made and locked, leftovers removed, nothing of this launch written",
    "startup.data": "corpus prepared and opened, config.yaml not yet written",
    "startup.model": "config.yaml written, model and optimizer built or restored, summary.json not yet written",
    "start": "run directory locked, config and summary written, before the first step",
}
# the points inside an atomic write (records.write_file_atomic); one per kind of file the trainer writes
WRITES = {
    "config.write": "inside the config.yaml write: temp file complete, not yet renamed",
    "checkpoint.write": "inside a checkpoint write: temp file complete, not yet renamed",
    "metrics.write": "inside a metrics.parquet write: temp file complete, not yet renamed",
    "summary.write": "inside a summary.json write: temp file complete, not yet renamed",
    "weights.write": "inside the final model.pt write: temp file complete, not yet renamed",
}
POINTS = {
    **STAGES,
    "step": "after an optimizer step (n counts steps taken by this process)",
    "eval": "after a validation evaluation, before that step's bookkeeping (n counts evaluations)",
    **WRITES,
    "checkpoint.after": "checkpoint renamed into place, metrics of that step not yet written",
    "finish.unlink": "final summary written, checkpoint not yet removed",
}
ACTIONS = ("kill", "enospc", "fill", "sigterm", "sigusr1")
SIGNALS = {"sigterm": signal.SIGTERM, "sigusr1": signal.SIGUSR1}


def _parse(spec: str) -> dict[str, tuple[int, str, int]]:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        parts = item.split(":")
        ok = len(parts) in (2, 3, 4) and parts[0] in POINTS and parts[1].isdigit() and int(parts[1]) >= 1
        action = parts[2] if len(parts) >= 3 else "kill"
        if len(parts) == 4 and (action != "fill" or not parts[3].isdigit()):
            ok = False
        if not ok:
            raise ValueError(
                f"{ENV}={spec!r}: each item must be <point>:<n>[:<action>] (or <point>:<n>:fill:<bytes left>) with "
                f"point one of {sorted(POINTS)}, n >= 1 and action one of {ACTIONS}"
            )
        if action not in ACTIONS:
            raise ValueError(f"{ENV}={spec!r}: action {action!r} must be one of {ACTIONS}")
        out[parts[0]] = (int(parts[1]), action, int(parts[3]) if len(parts) == 4 else 0)
    return out


_ARMED = _parse(os.environ.get(ENV, ""))
_COUNTS: dict[str, int] = {}
_RUN_DIR: list[Path] = []  # the run directory, once start-up knows it (``hit(..., run_dir=...)``): where ``fill`` fills


def fill(folder: Path, leave_bytes: int = 0) -> Path:
    """Fill the filesystem holding ``folder`` with a file of zeros until it answers ENOSPC, then give back
    ``leave_bytes`` (the filesystem rounds to its blocks); the filler's path."""
    path = Path(folder) / FILLER
    chunk = b"\0" * (1 << 20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                os.write(fd, chunk)  # a short write is followed by the ENOSPC of the next
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
        if leave_bytes:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave_bytes))
    finally:
        os.close(fd)
    return path


def _fire(name: str, n: int, action: str, leave: int) -> None:
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if action in SIGNALS:
        os.kill(os.getpid(), SIGNALS[action])  # the handler runs at the next bytecode: the flag of preemption.py
        return
    if action == "fill":
        if not _RUN_DIR:
            raise RuntimeError(f"{ENV}: fill at {name}:{n}, before the run directory is known")
        fill(_RUN_DIR[0].parent, leave)
        return
    raise OSError(errno.ENOSPC, f"No space left on device (injected by {ENV} at {name}:{n})")


def _count(name: str) -> tuple[int, str, int] | None:
    """Count this hit of ``name``; the armed fault when this is the hit it waits for."""
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    n, action, leave = _ARMED[name]
    return (n, action, leave) if _COUNTS[name] == n else None


def hit(name: str, run_dir: Path | None = None) -> None:
    """Mark that this process reached point ``name``; fire the fault armed for this hit, if any. ``run_dir``: the run
    directory, where start-up first knows it (``fill`` fills the filesystem holding it)."""
    if run_dir is not None and _ARMED:
        _RUN_DIR[:] = [Path(run_dir)]
    if not _ARMED or name not in _ARMED:
        return
    armed = _count(name)
    if armed is not None:
        _fire(name, *armed)


def before_replace(name: str):
    """A callback for records' atomic writes: the fault point ``name`` hit once the temp file is complete. Called (as
    the write's argument is built) before the write starts: a ``fill`` armed for this write fills the disk now."""
    if _ARMED and name in _ARMED and _ARMED[name][1] == "fill":
        armed = _count(name)
        if armed is not None:
            _fire(name, *armed)
        return None
    return lambda tmp: hit(name)
