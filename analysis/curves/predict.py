"""What a per-run curve fit is for (issue 18, item 1): (a) a run's final loss predicted from its first part, (b) the
loss the same model would reach under another schedule or length, (c) a smoothed end point with an interval.

Every fit skips the warmup (the points up to the schedule's peak rate): neither law describes it, and Tissue et al.
and Luo et al. fit from the end of warmup.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from analysis.curves.huber import fit_tissue_huber
from analysis.curves.multipower import fit_multipower
from analysis.curves.tissue import fit_tissue
from scaling.core.curve_law import after_warmup, bootstrap_end

LAWS = ("tissue", "multipower")


class CurveLaw(Protocol):
    name: str

    @property
    def params(self) -> dict[str, float]: ...

    def predict(self, eta: np.ndarray, steps: np.ndarray) -> np.ndarray: ...


def fit_curve(
    law: str,
    eta: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray,
    upto: int | None = None,
    huber: float | None = None,
) -> CurveLaw:
    """Fit ``law`` (tissue | multipower) to the points after warmup and at or before step ``upto`` (all: None):
    least squares on relative residuals, or with ``huber=delta`` the Huber loss of log residuals
    (``analysis.curves.huber``)."""
    if law not in LAWS:
        raise ValueError(f"law={law!r}: must be one of {LAWS}")
    s, y = after_warmup(eta, steps, loss)
    if upto is not None:
        s, y = s[s <= upto], y[s <= upto]
    curve = (np.asarray(eta, dtype=float), s, y)
    if law == "tissue":
        return fit_tissue(*curve) if huber is None else fit_tissue_huber(curve, huber)
    return fit_multipower(curve, huber=huber)


def final_from_prefix(
    law: str,
    eta: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray,
    frac: float,
    at: int | None = None,
    huber: float | None = None,
) -> float:
    """(a) The loss at the run's last update (or at step ``at``) predicted from the points of its first ``frac`` of
    updates (``huber``: as ``fit_curve``)."""
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1]")
    fit = fit_curve(law, eta, steps, loss, upto=int(frac * len(eta)), huber=huber)
    return float(fit.predict(eta, np.array([len(eta) if at is None else at]))[0])


def transfer(fit: CurveLaw, eta_other: np.ndarray, steps: np.ndarray | None = None) -> np.ndarray:
    """(b) The losses a fitted model would log under the rates ``eta_other`` (at ``steps``, or at its last update):
    e.g. ``schedule.cosine(peak, 2 * T)`` for a run twice as long, ``schedule.wsd(peak, T, start)`` for a cooldown
    from step ``start``."""
    steps = np.array([len(eta_other)]) if steps is None else np.asarray(steps, dtype=np.int64)
    return fit.predict(np.asarray(eta_other, dtype=float), steps)


def smoothed_end(
    law: str,
    eta: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
    upto: int | None = None,
) -> tuple[float, float, float]:
    """(c) The fitted loss at the run's last update and a ``level`` interval: a moving-block bootstrap of the fit's
    relative residuals (blocks of ~sqrt(n) points keep their serial correlation), refitted ``n_boot`` times. With
    ``upto``, only the points at or before that step are fitted (the end extrapolated, as for early stopping)."""
    eta = np.asarray(eta, dtype=float)
    s, y = after_warmup(eta, steps, loss)
    if upto is not None:
        s, y = s[s <= upto], y[s <= upto]
    return bootstrap_end(lambda e, st, lo: fit_curve(law, e, st, lo), eta, s, y, n_boot, level, seed)
