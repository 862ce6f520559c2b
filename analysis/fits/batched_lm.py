"""Bounded Levenberg-Marquardt on many weighted least-squares problems at once, in numpy arrays.

The bootstraps' fast paths (``approach2_resamples``, ``kaplan_resamples``) refit one small nonlinear model on a
thousand resamples; a resample is a row of weights (draws of each point) over the same points, or over points of its
own. Each problem minimises sum_i w_i r_i(p)^2 from its own start within box bounds, by Levenberg-Marquardt (Marquardt
1963: the damping scaled by the diagonal of JᵀWJ, divided by 3 on a step that lowers the cost, multiplied by 4 on one
that does not) with an active set (a parameter at a bound whose gradient points out of the box is held there, the
projected-Newton rule of Bertsekas 1982), every step clipped into the box. A problem has converged when its scaled
projected gradient |g_k| / sqrt((JᵀWJ)_kk · cost) is below 1e-5 for every free parameter; the callers refit the
others with their scipy fit, so no resample is lost to this solver.

With ``delta`` each problem minimises a Huber loss instead, sum_i w_i rho(r_i) with rho(r) = r^2 for |r| <= delta and
2 delta |r| - delta^2 beyond (twice Huber's, so equal to least squares inside): the same steps with each point's
weight times min(1, delta / |r_i|) at the current iterate (iteratively reweighted least squares, Holland & Welsch
1977), whose gradient is the Huber loss's exact one, so a converged problem is at the Huber optimum.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

MAX_ITER = 3000
GTOL = 1e-9  # stop iterating a problem whose scaled gradient is below this
CONVERGED = 1e-5  # ... and call it converged below this at the end


def huber_weights(r: np.ndarray, delta: np.ndarray | None) -> np.ndarray:
    """min(1, delta / |r|) for residuals ``r`` (R, n) and thresholds ``delta`` (R,); ones without ``delta``."""
    if delta is None:
        return np.ones_like(r)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.minimum(1.0, np.asarray(delta, float)[:, None] / np.abs(r))


def _cost(W: np.ndarray, r: np.ndarray, delta: np.ndarray | None) -> np.ndarray:
    """sum_i W_i rho(r_i) per row: rho(r) = r^2, or with ``delta`` twice Huber's loss (r^2 inside delta)."""
    if delta is None:
        return np.einsum("rn,rn->r", W, r * r)
    d = np.asarray(delta, float)[:, None]
    a = np.abs(r)
    return np.einsum("rn,rn->r", W, np.where(a <= d, r * r, 2 * d * a - d * d))


def solve(
    fun: Callable, W: np.ndarray, p0: np.ndarray, lo: np.ndarray, hi: np.ndarray, delta: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise sum_i W[r, i] r_i(p_r)^2 for every row r from ``p0`` (R, P) within [lo, hi] (R, P); with ``delta``
    (R,) the Huber loss of threshold delta[r] in place of the square (module docstring).

    ``fun(p, rows)`` returns the residuals (R', n) and the Jacobian (R', n, P) of problems ``rows`` (indices) at
    p (R', P). Returns (p (R, P), converged (R,) bool)."""
    R, P = p0.shape
    eye = np.eye(P)
    p = np.clip(p0, lo, hi)
    lam = np.full(R, 1e-3)
    r, J = fun(p, np.arange(R))
    cost = _cost(W, r, delta)
    done = np.zeros(R, bool)
    for _ in range(MAX_ITER):
        act = ~done
        if not act.any():
            break
        Ja, ra = J[act], r[act]
        da = None if delta is None else np.asarray(delta, float)[act]
        Wa = W[act] * huber_weights(ra, da)
        JtW = Ja.transpose(0, 2, 1) * Wa[:, None, :]
        A = JtW @ Ja
        g = (JtW @ ra[..., None])[..., 0]
        d = np.maximum(np.einsum("rkk->rk", A), 1e-12)
        M = A + lam[act, None, None] * np.einsum("rk,kl->rkl", d, eye)
        # active set: a parameter at a bound whose gradient points out of the box stays there (projected Newton)
        pa0 = p[act]
        held = ((pa0 <= lo[act]) & (g > 0)) | ((pa0 >= hi[act]) & (g < 0))
        free = ~held
        M = M * (free[:, :, None] & free[:, None, :]) + np.einsum("rk,kl->rkl", held.astype(float), eye)
        g = np.where(held, 0.0, g)
        conv = (np.abs(g) / np.sqrt(d) / np.sqrt(np.maximum(cost[act], 1e-300))[:, None]).max(1) < GTOL
        try:
            step = -np.linalg.solve(M, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            break
        pa = np.clip(p[act] + step, lo[act], hi[act])
        idx = np.flatnonzero(act)
        rn, Jn = fun(pa, idx)
        cn = _cost(W[act], rn, da)
        better = np.isfinite(cn) & (cn < cost[act])
        take = idx[better]
        p[take], r[take], J[take] = pa[better], rn[better], Jn[better]
        small = better & (cost[act] - cn < 1e-15 * np.maximum(cost[act], 1e-300))
        cost[take] = cn[better]
        lam[idx] = np.where(better, lam[idx] / 3, lam[idx] * 4)
        done[idx[conv | small | (lam[idx] > 1e12)]] = True
    r, J = fun(p, np.arange(R))
    Wh = W * huber_weights(r, delta)
    g = np.einsum("rnk,rn->rk", J, Wh * r)
    A = np.einsum("rnk,rn,rnk->rk", J, Wh, J)
    scaled = np.abs(g) / np.sqrt(np.maximum(A, 1e-12)) / np.sqrt(np.maximum(cost, 1e-300))[:, None]
    # at a bound only the gradient into the box counts (the bound's KKT condition)
    scaled = np.where(((p <= lo) & (g > 0)) | ((p >= hi) & (g < 0)), 0.0, scaled)
    converged = np.isfinite(cost) & (scaled.max(1) < CONVERGED)
    return p, converged
