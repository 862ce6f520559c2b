"""What the calibration measures on one simulated sweep, fast: each budget's minimum (all resamples' or simulations'
parabola vertices at once where the estimator is the vertex of a parabola through every point), the line ln N = c +
a ln C through the minima, its t interval and its run bootstrap."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from analysis.fits.minima import (
    _MIN_DISTINCT,
    LOCAL_POINTS,
    estimate_minimum,
    resolve,
)


def fit_line(lc: np.ndarray, ln: np.ndarray):
    """Least squares ln N = c + a ln C: (a, c, residual s^2, mean ln C, S_CC)."""
    m = lc.mean()
    scc = float(((lc - m) ** 2).sum())
    a = float(((lc - m) * (ln - ln.mean())).sum() / scc)
    c = float(ln.mean() - a * m)
    r = ln - (c + a * lc)
    s2 = float(r @ r) / max(lc.size - 2, 1)
    return a, c, s2, m, scc


def quadratic_case(estimator: str, x: np.ndarray) -> bool:
    """Whether ``estimate_minimum(x, ., estimator)`` is the vertex of the least-squares parabola through all points:
    the parabola, and the local parabola when the budget has no more distinct sizes than its window."""
    n = np.unique(x).size
    m = resolve(estimator, n)
    return m == "parabola" or (m == "local_parabola" and n <= LOCAL_POINTS)


def vertices(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``estimate_minimum``'s ln N for each row of Y (losses at sizes x; rows are resamples or simulations) where
    ``quadratic_case`` holds, computed for all rows at once: the vertex of the least-squares parabola, or the
    size with the lowest mean loss where the parabola opens downward (as ``minima._quadratic`` falls back)."""
    xm = x.mean()
    V = np.vander(x - xm, 3)
    q2, q1, _ = np.linalg.lstsq(V, Y.T, rcond=None)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xm - q1 / (2 * q2)
    down = ~(q2 > 0)
    if down.any():
        xu, inv = np.unique(x, return_inverse=True)
        for r in np.flatnonzero(down):
            means = np.bincount(inv, weights=Y[r]) / np.bincount(inv)
            out[r] = xu[int(np.argmin(means))]
    return out


def batch_vertices(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``vertices`` for rows that each have their own sizes (a run bootstrap's resamples): every row's least-squares
    parabola at once through its normal equations, centred on the row's mean; the lowest mean loss where it opens
    downward."""
    xm = X.mean(1, keepdims=True)
    u = X - xm
    S = np.stack([(u**k).sum(1) for k in range(5)], axis=1)  # sums of u^0..u^4
    T = np.stack([(Y * u**k).sum(1) for k in range(3)], axis=1)
    M = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], axis=1)
    q = np.linalg.solve(M, T[:, [2, 1, 0], None])[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xm[:, 0] - q[:, 1] / (2 * q[:, 0])
    for r in np.flatnonzero(~(q[:, 0] > 0)):
        out[r] = _lowest(X[r], Y[r])
    return out


def _lowest(x: np.ndarray, y: np.ndarray) -> float:
    xu, inv = np.unique(x, return_inverse=True)
    return float(xu[int(np.argmin(np.bincount(inv, weights=y) / np.bincount(inv)))])


def minimum(x: np.ndarray, y: np.ndarray, estimator: str) -> float:
    if quadratic_case(estimator, x):
        return float(vertices(x, y[None, :])[0])
    return estimate_minimum(x, y, estimator).log_n


def minima(sweep, estimator) -> tuple[np.ndarray, np.ndarray, list]:
    lc, ln, kept = [], [], []
    for k, (log_c, x, y) in enumerate(sweep):
        if np.unique(x).size < 3:
            continue
        lc.append(log_c)
        ln.append(minimum(x, y, estimator))
        kept.append(k)
    return np.array(lc), np.array(ln), kept


def t_interval(lc, ln, log_t, level):
    """The t interval (``intervals._t_interval``'s formulas) of one sweep's minima: estimates (a, ln N_opt at each
    target) and half-widths."""
    a, c, s2, m, scc = fit_line(lc, ln)
    k = lc.size
    tq = float(stats.t.ppf((1 + level) / 2, k - 2))
    return (
        np.array([a, *(c + a * log_t)]),
        np.array([tq * math.sqrt(s2 / scc), *(tq * np.sqrt(s2 * (1 / k + (log_t - m) ** 2 / scc)))]),
    )


def runs_bootstrap(sweep, kept, estimator, log_t, n_resamples, q, rng):
    """The run bootstrap of one simulated sweep (runs within each used budget; its estimator resolved once a
    budget, as ``isoflop_power_law_interval``'s scheme "runs" does): percentile [lo, hi] of a and ln N_opt."""
    groups = [sweep[k] for k in kept]
    log_c = np.array([g[0] for g in groups])
    ln = np.full((n_resamples, len(groups)), np.nan)
    for j, (_, x, y) in enumerate(groups):
        meth = resolve(estimator, np.unique(x).size)
        idx = rng.integers(0, x.size, (n_resamples, x.size))
        xr, yr = x[idx], y[idx]
        srt = np.sort(xr, axis=1)
        distinct = 1 + (np.diff(srt, axis=1) > 0).sum(1)
        usable = distinct >= _MIN_DISTINCT[meth]
        quad = usable & ((meth == "parabola") | ((meth == "local_parabola") & (distinct <= LOCAL_POINTS)))
        if quad.any():
            ln[quad, j] = batch_vertices(xr[quad], yr[quad])
        for r in np.flatnonzero(usable & ~quad):  # the spline, or a local parabola that moves its window
            ln[r, j] = estimate_minimum(xr[r], yr[r], meth).log_n
    out = np.full((n_resamples, 1 + log_t.size), np.nan)
    for r in range(n_resamples):
        ok = np.isfinite(ln[r])
        if ok.sum() >= 2 and np.ptp(log_c[ok]) > 0:
            a, c, *_ = fit_line(log_c[ok], ln[r, ok])
            out[r] = [a, *(c + a * log_t)]
    if np.isfinite(out[:, 0]).sum() < 2:
        return np.nan, np.nan
    return np.nanquantile(out, q, axis=0)
