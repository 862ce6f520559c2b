"""The minimum of one IsoFLOP curve (loss against ln N at one budget): the estimator Approach 2 calls per budget.

Here only the classic estimator, a parabola in ln N through every run of the budget (Hoffmann et al. 2022 §3.2).
A minimum at or beyond the smallest or largest sampled N is returned with ``at_edge`` set, never dropped: the caller
keeps it and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.columns import FitError


@dataclass(frozen=True)
class IsoflopMinimum:
    log_n: float      # natural log of N at the estimated minimum
    loss: float       # estimated loss at the minimum
    at_edge: bool     # minimum at or beyond the smallest/largest sampled N (kept, flagged; never dropped)
    method: str
    n_points: int     # points the estimator used
    curvature: float  # second derivative of loss in ln N at the minimum (nan if not defined)


ESTIMATORS: tuple[str, ...] = ("parabola",)
DEFAULT_ESTIMATOR = "parabola"


def estimate_minimum(log_n: np.ndarray, loss: np.ndarray, method: str = DEFAULT_ESTIMATOR) -> IsoflopMinimum:
    """Minimum of ``loss`` against ``log_n`` (natural log of N) for one budget, by ``method`` (one of ESTIMATORS).

    "parabola": least squares loss = p2 x^2 + p1 x + p0 over every point, x = ln N; the minimum is the vertex.
    Where the parabola opens downward (curvature <= 0) it has no minimum: the lowest observed point is returned
    instead (stated rule), flagged ``at_edge`` when that point is the smallest or largest N.
    """
    if method not in ESTIMATORS:
        raise FitError(f"estimate_minimum: method={method!r}; allowed: {ESTIMATORS}")
    x, y = np.asarray(log_n, dtype=float).ravel(), np.asarray(loss, dtype=float).ravel()
    if x.shape != y.shape:
        raise FitError(f"estimate_minimum: log_n has {x.size} values and loss {y.size}; they must pair up")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise FitError("estimate_minimum: log_n and loss must be finite")
    if np.unique(x).size < 3:
        raise FitError(f"estimate_minimum: a parabola needs at least 3 distinct N, got {np.unique(x).size}")
    xm = x.mean()
    q2, q1, q0 = np.polyfit(x - xm, y, 2)
    lo, hi = x.min(), x.max()
    if q2 > 0:
        xo = xm - q1 / (2 * q2)
        return IsoflopMinimum(log_n=float(xo), loss=float(q0 - q1 * q1 / (4 * q2)), at_edge=bool(xo <= lo or xo >= hi),
                              method=method, n_points=int(x.size), curvature=float(2 * q2))
    i = int(np.argmin(y))
    return IsoflopMinimum(log_n=float(x[i]), loss=float(y[i]), at_edge=bool(x[i] in (lo, hi)), method=method,
                          n_points=int(x.size), curvature=float(2 * q2))
