"""A run's logged training loss as a curve for the laws (issue 18): every step's loss, where the validation curve has
3-16 points a run under the harness's automatic evaluation interval.

The trainer logs at metrics step ``s`` the loss of the batch of update ``s``, measured before that update: the loss
of the weights after ``s - 1`` updates, so it is the law's point at step ``s - 1`` (``analysis.curves.schedule``'s
convention). One step's loss is noisy (its own small batch: ~0.1-0.15 nats on the CPU sweeps), so the curve is the
mean over bins of consecutive steps. Training and validation losses differ by a distribution offset; ``val_ratio``
measures it on the run's own validation points, so a law fitted to the training curve predicts validation losses.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.curves import schedule as sc
from scaling.core.curve_law import Curve

N_BINS = 100  # bins over a whole run: 100 means of >= 7 steps on the CPU sweeps (each ~1% noise, not ~3%)
SKIP_FRAC = 0.1  # validation points before this share of the run are left out of the offset (the fastest drop)


def binned(eta: np.ndarray, steps: np.ndarray, loss: np.ndarray, n_bins: int = N_BINS) -> Curve:
    """The training losses ``loss`` logged at metrics ``steps`` (1-based) of a run with rates ``eta`` as a law's curve:
    shifted to the law's step (``s - 1``), then averaged over bins of ``ceil(len(eta) / n_bins)`` consecutive law
    steps, each bin's point at its mean step (rounded); partial bins (at the end, or with lost rows) and
    non-finite losses are left out."""
    if n_bins < 1:
        raise ValueError(f"n_bins={n_bins}: must be >= 1")
    eta = np.asarray(eta, dtype=float)
    steps = np.asarray(steps, dtype=np.int64)
    loss = np.asarray(loss, dtype=float)
    if len(steps) != len(loss):
        raise ValueError(f"steps ({len(steps)}) and loss ({len(loss)}): must have the same length")
    s = steps - 1
    keep = (s >= 1) & (s <= len(eta)) & np.isfinite(loss)
    s, y = s[keep], loss[keep]
    w = max(1, int(np.ceil(len(eta) / n_bins)))
    b = (s - 1) // w
    n = np.bincount(b)
    full = np.flatnonzero(n == w)
    mean_s = np.bincount(b, weights=s.astype(float))[full] / w
    return eta, np.round(mean_s).astype(np.int64), np.bincount(b, weights=y)[full] / w


def train_curve(run_dir: str | Path, n_bins: int = N_BINS, upto: int | None = None) -> Curve:
    """(eta, steps, loss) of the run in ``run_dir`` from its metrics' ``train_loss`` (``binned``); with ``upto``, only
    the losses of law steps up to ``upto`` (a bin reaching past it is partial, so left out: no loss from after a cut
    enters a fit made at it)."""
    from scaling.core import records

    m = records.read_metrics(Path(run_dir))
    if "train_loss" not in m.columns:
        raise ValueError(f"{run_dir}: its metrics have no train_loss column")
    eta = sc.run_rates(run_dir, m)
    steps, loss = m["step"].to_numpy(dtype=np.int64), m["train_loss"].to_numpy(dtype=float)
    if upto is not None:
        before = steps - 1 <= upto
        steps, loss = steps[before], loss[before]
    return binned(eta, steps, loss, n_bins)


def val_ratio(
    fit, eta: np.ndarray, steps: np.ndarray, loss: np.ndarray, upto: int | None = None, skip: float = SKIP_FRAC
) -> float:
    """The median of validation loss / the fit's loss over the validation points ``(steps, loss)`` at or before step
    ``upto`` and past ``skip`` of the run's updates (all before ``upto`` where none is past it): what maps a law
    fitted to the training curve onto the validation measure. ValueError where no point is at or before ``upto``."""
    steps = np.asarray(steps, dtype=np.int64)
    loss = np.asarray(loss, dtype=float)
    n = len(eta)
    before = steps <= (n if upto is None else upto)
    sel = before & (steps > skip * n)
    if not sel.any():
        sel = before
    if not sel.any():
        raise ValueError(f"no validation point at or before step {upto}: the offset cannot be measured")
    return float(np.median(loss[sel] / fit.predict(eta, steps[sel])))
