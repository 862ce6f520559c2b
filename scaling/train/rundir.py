"""A run directory as the trainer finds it: who holds it (the lock), whether it is final, and what a killed
process left behind. Ordinary and branched runs both decide here whether to skip, resume or clean up a run."""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from pathlib import Path

from scaling.core import records
from scaling.core.records import RunSummary


class RunBusy(RuntimeError):
    """Another live process holds this run's lock (is training it right now)."""


class RunLock:
    """An exclusive flock on ``<run_dir>/.lock`` holding the owner's pid. The kernel drops a flock when its process
    dies, however it dies, so a lock left by a killed process never blocks a relaunch."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path = run_dir, run_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunBusy(f"{self.run_dir}: another process ({holder}) is training this run right now") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        assert self.fd is not None, "__exit__ without __enter__"
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def finished(run_dir: Path, quiet: bool = False) -> RunSummary | None:
    """The summary of a run that must not be trained again (complete; diverged: rerunning would diverge again; or
    stopped early)."""
    if not (run_dir / records.SUMMARY_FILE).exists():
        return None
    try:
        prev = records.read_summary(run_dir)
    except (ValueError, OSError, KeyError, TypeError):
        return None  # unreadable summary: the run is redone
    if prev.status not in records.FINAL_STATUSES:
        return None
    if quiet:
        return prev
    if prev.status == records.STATUS_COMPLETE:
        print(
            f"[train] {prev.run_id}: already complete (final val loss {prev.final_val_loss:.4f}); skipping",
            file=sys.stderr,
        )
    else:
        print(
            f"[train] {prev.run_id}: {prev.status} before ({prev.reason}); skipping. Delete {run_dir} to retry it.",
            file=sys.stderr,
        )
    return prev


def leftovers(run_dir: Path) -> list[Path]:
    """What a process killed mid-write leaves: temp files, and the checkpoint of a run already marked final."""
    out = sorted(run_dir.glob(".*.tmp"))
    if (run_dir / records.CHECKPOINT_FILE).exists() and finished(run_dir, quiet=True) is not None:
        out.append(run_dir / records.CHECKPOINT_FILE)
    return out


def remove_leftovers(run_dir: Path, final: bool) -> None:
    """Under the lock, so no live writer owns them; ``final``: the run is final, so its checkpoint goes too."""
    for p in sorted(run_dir.glob(".*.tmp")):
        p.unlink(missing_ok=True)
    if final:
        (run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)
