"""The cache key and the seed of a calibration's simulation, both from the runs it simulates (the columns the fit
reads) and its settings only: shared by every calibration (Approach 2's, the laws', the multiplier's)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd

VERSION = 4  # part of the cache key: bump when the simulation changes
FIT_COLUMNS = ("budget", "N", "D", "C", "loss")


def runs_key(runs: pd.DataFrame, **settings) -> str:
    """A hash of the columns the fit reads (``FIT_COLUMNS`` present in ``runs``), independent of row order, and
    of ``settings``: the calibration cache's key."""
    cols = [c for c in FIT_COLUMNS if c in runs.columns]
    t = runs[cols].astype(float).sort_values(cols).to_numpy()
    h = hashlib.sha256(np.ascontiguousarray(t).tobytes())
    h.update(json.dumps(dict(cols=cols, version=VERSION, **settings), sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def simulation_seed(runs: pd.DataFrame, fixed: int | None, **settings) -> int:
    """``fixed``, or (None) one from the runs and the settings only, never from a fitted law: a fit's last digits
    differ between machines (AVX2 against AVX-512 arithmetic), and a seed hashed from them drew another sample of
    simulated sweeps there, enough to flip the method carried (a run bootstrap at 92% on one machine, 98% on the
    other, for the same runs). Each simulated sweep i then draws from ``default_rng([the seed, i])``, so one sweep's
    data-dependent draws do not shift the next."""
    return int(runs_key(runs, **settings)[:12], 16) if fixed is None else fixed
