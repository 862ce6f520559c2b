"""Argument checks for ``python -m analysis``: each turns one command-line string into a value or a clear error.

Every function here is an ``argparse`` ``type=``: it returns the parsed value or raises ``ArgumentTypeError`` with a
message that names the value and what is allowed, which argparse prints as
``python -m analysis predict: error: argument --budget: 'nan': must be a finite positive number of FLOPs`` and exit
code 2, before anything is loaded or fitted. Keep the parser itself (``analysis/cli/main.py``) free of such logic.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

MAX_N_BOOT = 100_000


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; must be {what}") from None


def _integer(text: str, what: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; must be {what}") from None


def check_budget(text: str) -> float:
    """A compute budget to predict at: a finite positive number of FLOPs (1e21, 3.5e23)."""
    what = "a finite positive number of FLOPs (e.g. 1e21)"
    v = _number(text, what)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_loss(text: str) -> float:
    """A loss in nats/token (e.g. a fixed irreducible loss E): a finite positive number."""
    what = "a finite positive loss in nats/token (e.g. 1.69)"
    v = _number(text, what)
    if not (math.isfinite(v) and v > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_level(text: str) -> float:
    """Coverage of an interval: strictly between 0 and 1."""
    what = "strictly between 0 and 1 (e.g. 0.9)"
    v = _number(text, what)
    if not 0 < v < 1:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_n_boot(text: str) -> int:
    """Bootstrap resamples: 0 (no intervals) or 2 .. MAX_N_BOOT."""
    what = f"0 (no intervals) or an integer in [2, {MAX_N_BOOT:,}]"
    v = _integer(text, what)
    if not (v == 0 or 2 <= v <= MAX_N_BOOT):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_seed(text: str) -> int:
    """A bootstrap seed: an integer in [0, 2**63)."""
    what = "an integer in [0, 2**63)"
    v = _integer(text, what)
    if not 0 <= v < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_jobs(text: str) -> int:
    """Parallel workers: a positive integer, or -1 for every core."""
    what = "a positive number of workers, or -1 for every core"
    v = _integer(text, what)
    if not (v >= 1 or v == -1):
        raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
    return v


def check_sweep_dir(text: str) -> Path:
    """A sweep folder's path: not blank (an empty argument would silently mean the current folder). Whether it
    exists and holds runs is ``analysis.data.load``'s to say (FileNotFoundError / NotADirectoryError, exit code 2)."""
    if not text.strip() or "\0" in text:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a sweep folder results/<sweep>/ (or a folder of sweeps)")
    return Path(text)


def check_out_dir(text: str) -> Path:
    """An output folder: absent (it is created) or an existing writable folder, with no file in the way."""
    if not text.strip():
        raise argparse.ArgumentTypeError("'': must be an output folder")
    p = Path(text)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r}: {str(q)!r} is a file; must be a folder (or absent)")
            if not os.access(q, os.W_OK | os.X_OK):
                raise argparse.ArgumentTypeError(f"{text!r}: {str(q)!r} is not writable; must be a writable folder")
            break
    return p
