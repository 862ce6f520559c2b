"""IsoFLOP minima of many resamples of one budget at once, in numpy: the local parabola and the GCV smoothing spline
of ``analysis.fits.minima`` for budgets of many sizes (the Porian sweeps' 6-16), as ``approach2_resamples`` needs
them to refit Approach 2 on a thousand resamples without a ``fit_approach2`` call each (issue 20 item 4).

A resample is a row of weights W (R, n): how many times each of the budget's n runs was drawn. Each function returns,
for every row, the minimum (ln N, loss) that ``estimate_minimum`` gives on that row's drawn runs, up to rounding:

- ``local_parabola``: the same window walk (the ``LOCAL_POINTS`` drawn sizes nearest the vertex, at most 8 moves),
  each window's least-squares parabola from weighted moments; a window that opens downward gives the lowest mean loss
  of a size, as ``minima._lowest_point``.
- ``spline``: the natural cubic smoothing spline through each drawn size's mean loss, weighted by its draws, with
  its smoothing chosen by generalised cross-validation and its minimum on the drawn range, as
  ``scipy.interpolate.make_smoothing_spline`` and ``minima._on_range`` compute them. The spline is written in the
  value / second-derivative form of Green & Silverman (1994, §2.1-2.3): g = (W + λK)⁻¹ W y with K = Q R⁻¹ Qᵀ, the
  same function and the same GCV criterion as scipy's B-spline form (its numerator the unweighted mean squared
  residual, its denominator (1 - tr A / n)²), found by the same bounded Brent search (``fminbound``: scipy's
  ``_minimize_scalar_bounded`` step for step, over all rows at once). Rows are grouped by their count of drawn sizes.

Rounding differs from scipy's banded solves by ~1e-15 relative; a comparison inside the searches could then in
principle go the other way where two values tie to that precision (tests: tests/unit/analysis/fits/
test_minima_batched.py compares every row with ``estimate_minimum``).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from analysis.fits.minima import LOCAL_POINTS

_SQRT_EPS = math.sqrt(2.2e-16)
_GOLDEN = 0.5 * (3.0 - math.sqrt(5.0))


def fminbound(f: Callable[[np.ndarray, np.ndarray], np.ndarray], a, b, xatol: float, maxfun: int = 500):
    """scipy's bounded scalar minimisation (``minimize_scalar(method="bounded")``, Brent's golden section with
    parabolic steps) of every row at once: ``f(x, rows)`` gives the values at x (len(rows),) of the given rows.
    Returns (x, f(x), ok) arrays over rows; ok is False where scipy would report no success (out of evaluations or
    NaN)."""
    a, b = np.array(a, float), np.array(b, float)
    allrows = np.arange(a.size)
    fulc = a + _GOLDEN * (b - a)
    nfc, xf = fulc.copy(), fulc.copy()
    rat = np.zeros_like(a)
    e = np.zeros_like(a)
    fx = np.asarray(f(xf, allrows), float).copy()
    fu = np.full_like(a, np.inf)
    num = 1
    ffulc, fnfc = fx.copy(), fx.copy()
    xm = 0.5 * (a + b)
    tol1 = _SQRT_EPS * np.abs(xf) + xatol / 3.0
    tol2 = 2.0 * tol1
    running = np.abs(xf - xm) > (tol2 - 0.5 * (b - a))
    ok = np.ones(a.size, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        while running.any():
            i = np.flatnonzero(running)
            ai, bi, xfi, xmi, t1, t2 = a[i], b[i], xf[i], xm[i], tol1[i], tol2[i]
            ei, rati = e[i], rat[i]
            golden = np.ones(i.size, bool)
            para = np.abs(ei) > t1
            r = (xfi - nfc[i]) * (fx[i] - ffulc[i])
            q = (xfi - fulc[i]) * (fx[i] - fnfc[i])
            p = (xfi - fulc[i]) * q - (xfi - nfc[i]) * r
            q = 2.0 * (q - r)
            p = np.where(q > 0.0, -p, p)
            q = np.abs(q)
            r_old = ei
            e_new = np.where(para, rati, ei)  # e = rat where a parabolic step is tried
            accept = para & (np.abs(p) < np.abs(0.5 * q * r_old)) & (p > q * (ai - xfi)) & (p < q * (bi - xfi))
            rat_p = p / q
            xp = xfi + rat_p
            near = ((xp - ai) < t2) | ((bi - xp) < t2)
            si = np.sign(xmi - xfi) + ((xmi - xfi) == 0)
            rat_p = np.where(near, t1 * si, rat_p)
            golden = ~accept
            e_g = np.where(xfi >= xmi, ai - xfi, bi - xfi)
            ei = np.where(golden, e_g, e_new)
            rati = np.where(golden, _GOLDEN * e_g, np.where(accept, rat_p, rati))
            si = np.sign(rati) + (rati == 0)
            x = xfi + si * np.maximum(np.abs(rati), t1)
            fui = np.asarray(f(x, i), float)
            num += 1
            better = fui <= fx[i]
            right = x >= xfi
            a_new = np.where(better, np.where(right, xfi, ai), np.where(x < xfi, x, ai))
            b_new = np.where(better, np.where(right, bi, xfi), np.where(x < xfi, bi, x))
            nfc_i, fnfc_i, fulc_i, ffulc_i = nfc[i], fnfc[i], fulc[i], ffulc[i]
            # worse: the second-best and third-best points
            w1 = ~better & ((fui <= fnfc_i) | (nfc_i == xfi))
            w2 = ~better & ~w1 & ((fui <= ffulc_i) | (fulc_i == xfi) | (fulc_i == nfc_i))
            new_fulc = np.where(better | w1, nfc_i, np.where(w2, x, fulc_i))
            new_ffulc = np.where(better | w1, fnfc_i, np.where(w2, fui, ffulc_i))
            new_nfc = np.where(better, xfi, np.where(w1, x, nfc_i))
            new_fnfc = np.where(better, fx[i], np.where(w1, fui, fnfc_i))
            xf[i] = np.where(better, x, xfi)
            fx[i] = np.where(better, fui, fx[i])
            fulc[i], ffulc[i], nfc[i], fnfc[i] = new_fulc, new_ffulc, new_nfc, new_fnfc
            a[i], b[i], e[i], rat[i], fu[i] = a_new, b_new, ei, rati, fui
            xm[i] = 0.5 * (a[i] + b[i])
            tol1[i] = _SQRT_EPS * np.abs(xf[i]) + xatol / 3.0
            tol2[i] = 2.0 * tol1[i]
            running[i] = np.abs(xf[i] - xm[i]) > (tol2[i] - 0.5 * (b[i] - a[i]))
            if num >= maxfun:
                ok[running] = False
                break
    ok &= ~(np.isnan(xf) | np.isnan(fx) | np.isnan(fu))
    return xf, fx, ok


def _quadratic_vertex(W, u, y):
    """(vertex x offset, vertex loss, q2) of the least-squares parabola y ~ q2 u^2 + q1 u + q0 of every row's weights
    W (R, n) at offsets u (R, n) (each row's own centre)."""
    S = np.stack([(W * u**p).sum(1) for p in range(5)], axis=1)
    T = np.stack([(W * u**p * y).sum(1) for p in range(3)], axis=1)
    A = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], axis=1)
    with np.errstate(all="ignore"):
        good = np.abs(np.linalg.det(A)) > 0
        q = np.full((len(W), 3), np.nan)
        if good.any():
            q[good] = np.linalg.solve(A[good], T[good][:, [2, 1, 0], None])[..., 0]
        q2, q1, q0 = q[:, 0], q[:, 1], q[:, 2]
        return -q1 / (2 * q2), q0 - q1 * q1 / (4 * q2), q2


def local_parabola(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``estimate_minimum(..., "local_parabola")`` of every row of draws W (R, n) of one budget's runs (x = ln N,
    y = loss): (ln N, loss) of each row's minimum. Each row needs at least 3 drawn sizes."""
    R = len(W)
    xu, inv = np.unique(x, return_inverse=True)
    U = xu.size
    per_size = np.zeros((R, U))
    sums = np.zeros((R, U))
    for j in range(U):
        per_size[:, j] = W[:, inv == j].sum(1)
        sums[:, j] = W[:, inv == j] @ y[inv == j]
    drawn = per_size > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        means = np.where(drawn, sums / per_size, np.inf)
    rank = np.cumsum(drawn, axis=1) - 1  # a drawn size's position among the row's drawn sizes
    nu = drawn.sum(1)
    k = np.minimum(LOCAL_POINTS, nu)
    rows = np.arange(R)
    lowest = np.argmin(means, axis=1)
    low_x, low_y = xu[lowest], means[rows, lowest]
    centre = rank[rows, lowest]
    start = np.full(R, -1)
    xo, lo = np.full(R, np.nan), np.full(R, np.nan)
    active = np.ones(R, bool)
    for _ in range(8):
        new = np.clip(centre - k // 2, 0, nu - k)
        active &= new != start
        if not active.any():
            break
        start = np.where(active, new, start)
        i = np.flatnonzero(active)
        win = drawn[i] & (rank[i] >= start[i, None]) & (rank[i] <= (start[i] + k[i] - 1)[:, None])
        Wi = W[i] * win[:, inv]
        xm = (Wi @ x) / Wi.sum(1)
        dx, loss, q2 = _quadratic_vertex(Wi, x[None, :] - xm[:, None], y[None, :])
        down = ~(q2 > 0)
        xo[i] = np.where(down, low_x[i], xm + dx)
        lo[i] = np.where(down, low_y[i], loss)
        active[i[down]] = False
        dist = np.where(drawn[i], np.abs(xu[None, :] - xo[i, None]), np.inf)
        centre[i] = rank[i, np.argmin(dist, axis=1)]
    return xo, lo


def _spline_system(xs: np.ndarray, ws: np.ndarray):
    """Green & Silverman's Q (G, n, n-2) and R (G, n-2, n-2) of natural cubic splines with knots xs (G, n), and the
    penalty K = Q R⁻¹ Qᵀ (∫ g''² = gᵀ K g)."""
    G, n = xs.shape
    h = np.diff(xs, axis=1)
    Q = np.zeros((G, n, n - 2))
    Rm = np.zeros((G, n - 2, n - 2))
    for j in range(1, n - 1):
        Q[:, j - 1, j - 1] = 1 / h[:, j - 1]
        Q[:, j, j - 1] = -1 / h[:, j - 1] - 1 / h[:, j]
        Q[:, j + 1, j - 1] = 1 / h[:, j]
        Rm[:, j - 1, j - 1] = (h[:, j - 1] + h[:, j]) / 3
        if j < n - 2:
            Rm[:, j - 1, j] = Rm[:, j, j - 1] = h[:, j] / 6
    K = Q @ np.linalg.solve(Rm, np.swapaxes(Q, 1, 2))
    return Q, Rm, K


def _spline_eval(xs, g, gam, t):
    """Values at t (G, m) of the natural cubic splines with knots xs (G, n), values g and second derivatives gam
    (G, n) at the knots; t within each row's knot range."""
    n = xs.shape[1]
    j = np.clip((t[:, :, None] >= xs[:, None, 1:-1]).sum(-1), 0, n - 2)  # the interval [x_j, x_j+1] of each t
    take = lambda v, k: np.take_along_axis(v, k, axis=1)  # noqa: E731
    x0, x1, g0, g1, c0, c1 = take(xs, j), take(xs, j + 1), take(g, j), take(g, j + 1), take(gam, j), take(gam, j + 1)
    h = x1 - x0
    a, b = t - x0, x1 - t
    return (a * g1 + b * g0) / h - a * b / 6 * ((1 + a / h) * c1 + (1 + b / h) * c0)


def _spline_group(xs: np.ndarray, ys: np.ndarray, ws: np.ndarray):
    """The GCV smoothing spline's minimum on the sampled range of rows of the same size count: (ln N, loss, ok)."""
    G, n = xs.shape
    Q, Rm, K = _spline_system(xs, ws)
    Wd = ws[:, :, None] * np.eye(n)

    def fit(lam, rows):
        M = Wd[rows] + lam[:, None, None] * K[rows]
        return np.linalg.solve(M, (ws[rows] * ys[rows])[:, :, None])[..., 0], M

    def gcv(lam, rows):
        g, M = fit(lam, rows)
        tr = np.einsum("gii->g", np.linalg.solve(M, Wd[rows]))
        return (((ys[rows] - g) ** 2).sum(1) / n) / (1 - tr / n) ** 2

    with np.errstate(all="ignore"):
        lam, _, ok = fminbound(gcv, np.zeros(G), np.full(G, float(n)), 1e-5)
        g, _ = fit(lam, np.arange(G))
        gam = np.zeros((G, n))
        gam[:, 1:-1] = np.linalg.solve(Rm, (np.swapaxes(Q, 1, 2) @ g[:, :, None]))[..., 0]
        grid = np.linspace(xs[:, 0], xs[:, -1], 64 * n + 1, axis=1)
        fg = _spline_eval(xs, g, gam, grid)
        i = np.argmin(fg, axis=1)
        rows = np.arange(G)
        xo, lo = grid[rows, i], fg[rows, i]
        inner = np.flatnonzero((i > 0) & (i < grid.shape[1] - 1))
        if inner.size:
            ii = i[inner]

            def value(t, r):
                return _spline_eval(xs[inner[r]], g[inner[r]], gam[inner[r]], t[:, None])[:, 0]

            xr, fr, _ = fminbound(value, grid[inner, ii - 1], grid[inner, ii + 1], 1e-10)
            take = fr <= fg[inner, ii]
            xo[inner] = np.where(take, xr, xo[inner])
            lo[inner] = np.where(take, fr, lo[inner])
    return xo, lo, ok & np.isfinite(xo) & np.isfinite(lo)


def spline(x: np.ndarray, y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``estimate_minimum(..., "spline")`` of every row of draws W (R, n) of one budget's runs: (ln N, loss, ok) of
    each row's minimum, ok False where scipy's GCV search would fail (``make_smoothing_spline`` raises there). Each
    row needs at least 5 drawn sizes."""
    R = len(W)
    xu, inv = np.unique(x, return_inverse=True)
    per_size = np.zeros((R, xu.size))
    sums = np.zeros((R, xu.size))
    for j in range(xu.size):
        per_size[:, j] = W[:, inv == j].sum(1)
        sums[:, j] = W[:, inv == j] @ y[inv == j]
    drawn = per_size > 0
    nu = drawn.sum(1)
    xo, lo, ok = np.full(R, np.nan), np.full(R, np.nan), np.zeros(R, bool)
    for m in np.unique(nu):
        rows = np.flatnonzero(nu == m)
        d = drawn[rows]
        xs = np.broadcast_to(xu, d.shape)[d].reshape(len(rows), m)
        cnt = per_size[rows][d].reshape(len(rows), m)
        ys = sums[rows][d].reshape(len(rows), m) / cnt
        xo[rows], lo[rows], ok[rows] = _spline_group(xs, ys, cnt)
    return xo, lo, ok
