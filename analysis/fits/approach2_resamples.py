"""Approach 2 refitted on a thousand resamples at once: the bootstrap's fast path (issue 19 item 5).

A resample of runs is a count of how many times each run was drawn, so every least-squares fit of Approach 2 on it
is a weighted fit on the original runs: each budget's parabola of loss in ln N, its line of ln D in ln N, and the
lines of ln N_opt and ln D_opt in ln C across budgets all come from weighted sums, computed for every resample with
one matrix product (numpy) instead of one ``fit_approach2`` call (pandas, ``np.polyfit``) a resample. The numbers are
those ``fit_approach2`` gives on the resampled rows, up to rounding (normal equations against ``np.polyfit``'s
least squares); only L_opt(C), a nonlinear fit, is still made one resample at a time (``OffsetPowerLaw.fit``).

It applies when each budget's minimum is the parabola through all of its runs: the estimator "parabola", or
"local_parabola" / "auto" on budgets of at most ``minima.LOCAL_POINTS`` distinct sizes (the local window then holds
every size, as on the CPU sweep's 5 sizes a budget). Otherwise ``refit_resamples`` answers None and the bootstrap
refits one resample at a time, unless it is given each budget's estimator (``estimators``, as ``warm_start()``
resolves them): then the local parabola's window walk and the GCV smoothing spline of budgets with many sizes (the
Porian sweeps' 6-16) are computed for all resamples at once too (``minima_batched``; issue 20 item 4, Approach 2's
multiplier calibration).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions
from analysis.fits import minima_batched
from analysis.fits.batched_lm import solve
from analysis.fits.minima import (
    _MIN_DISTINCT,
    AUTO_SPLINE_SIZES,
    DEFAULT_ESTIMATOR,
    LOCAL_POINTS,
    LOG_FLOAT_MAX,
    resolve,
)
from analysis.laws.forms import AllocationLaw, OffsetPowerLaw, PowerLaw

BATCHED = ("parabola", "local_parabola", "spline", "auto")  # estimators refitted here with ``estimators``
EMPTY_PER_BUDGET = pd.DataFrame(columns=["budget", "at_edge", "used"])  # a batched result keeps only its law


def applies(estimator: str, distinct_sizes) -> bool:
    """Whether every budget's minimum by ``estimator`` is the parabola through all its runs."""
    most = int(np.max(distinct_sizes)) if len(distinct_sizes) else 0
    if estimator == "parabola":
        return True
    if estimator == "local_parabola":
        return most <= LOCAL_POINTS
    if estimator == "auto":
        return most <= LOCAL_POINTS and most < AUTO_SPLINE_SIZES
    return False


def _weighted_line(W, x, y):
    """(slope, intercept) of the least-squares line of y on x, one a row of weights W (R x n); NaN where singular."""
    s0, s1, s2 = W.sum(1), W @ x, W @ (x * x)
    t0, t1 = W @ y, W @ (x * y)
    det = s0 * s2 - s1 * s1
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (s0 * t1 - s1 * t0) / det
        icpt = (t0 - slope * s1) / s0
    return slope, icpt


def offset_power_laws(X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> list[OffsetPowerLaw | None]:
    """``OffsetPowerLaw.fit(x, y, offset=True)`` of every row's points where M (R, K) is true, at once: the same
    grid start (the best of 48 exponents, E and the scale by linear least squares), then the same least squares on
    log y by ``batched_lm.solve``; a row whose solve did not converge is fitted by ``OffsetPowerLaw.fit`` itself.
    None where a row has fewer than 4 points (``OffsetPowerLaw.fit`` raises there)."""
    R = X.shape[0]
    w = M.astype(float)
    cnt = w.sum(1)
    with np.errstate(all="ignore"):
        lx = np.where(M, np.log(X), 0.0)
        lx0 = (w * lx).sum(1) / cnt
        u = np.where(M, lx - lx0[:, None], 0.0)
        ly = np.where(M, np.log(Y), 0.0)
        y = np.where(M, Y, 0.0)
        ymin = np.where(M, Y, np.inf).min(1)
        alphas = np.geomspace(0.005, 4.0, 48)
        basis = np.exp(-alphas[None, :, None] * u[:, None, :]) * w[:, None, :]  # (R, grid, K)
        sb, sbb = basis.sum(2), (basis * basis).sum(2)
        sy, sby = y.sum(1)[:, None], (basis * y[:, None, :]).sum(2)
        n = cnt[:, None]
        det = n * sbb - sb * sb
        E = np.where(det > 0, (sbb * sy - sb * sby) / det, -1.0)
        c = np.where(det > 0, (n * sby - sb * sy) / det, 0.0)
        c = np.where(E < 0, sby / sbb, c)
        E = np.maximum(E, 0.0)
        valid = (c > 0) & (E < ymin[:, None])
        fitted = np.log(E[:, :, None] + c[:, :, None] * np.exp(-alphas[None, :, None] * u[:, None, :]))
        sse = np.where(valid, (w[:, None, :] * (fitted - ly[:, None, :]) ** 2).sum(2), np.inf)
        i = np.argmin(sse, axis=1)
        rows = np.arange(R)
        good = np.isfinite(sse[rows, i])
        p0 = np.where(
            good[:, None],
            np.column_stack([E[rows, i], np.log(np.where(good, c[rows, i], 1.0)), alphas[i]]),
            np.column_stack([np.zeros(R), (w * ly).sum(1) / cnt, np.full(R, 0.1)]),
        )
    lo = np.tile([0.0, -np.inf, 0.0], (R, 1))
    hi = np.column_stack([ymin * (1 - 1e-9), np.full(R, np.inf), np.full(R, 5.0)])

    def fun(p, idx):
        T = np.exp(p[:, 1, None] - p[:, 2, None] * u[idx])
        Yh = p[:, 0, None] + T
        return np.log(Yh) - ly[idx], np.stack([1.0 / Yh, T / Yh, -u[idx] * T / Yh], axis=-1)

    enough = cnt >= 4
    with np.errstate(all="ignore"):
        p, converged = solve(fun, w, p0, lo, hi)
    out: list[OffsetPowerLaw | None] = []
    for r in range(R):
        if not enough[r]:
            out.append(None)
        elif not converged[r]:
            try:
                out.append(OffsetPowerLaw.fit(X[r, M[r]], Y[r, M[r]], offset=True))
            except FitError:
                out.append(None)
        else:
            E_fit, k, al = (float(v) for v in p[r])
            with np.errstate(all="ignore"):
                x_c = float(np.exp(lx0[r] + k / al)) if al > 0 else float("nan")
                resid = np.where(M[r], fun(p[r : r + 1], np.array([r]))[0][0], 0.0)
            rmse = float(np.sqrt((resid**2).sum() / cnt[r]))
            out.append(OffsetPowerLaw(E=E_fit, x_c=x_c, alpha=al, n_points=int(cnt[r]), rmse_log=rmse))
    return out


def _row_methods(method: str, distinct: np.ndarray) -> np.ndarray:
    """The estimator ``estimate_minimum`` uses on each resample of a budget (by its count of distinct sizes):
    ``method`` resolved ("auto"), the parabola where the resample has too few sizes for it."""
    out = np.array([resolve(method, int(d)) for d in distinct], dtype=object)
    few = np.array([d < _MIN_DISTINCT[m] for d, m in zip(distinct, out)], dtype=bool)
    out[few] = "parabola"
    return out


def refit(result, runs: pd.DataFrame, resamples, cols: dict[str, str], make, groups, estimators=None) -> list | None:
    """``fit_approach2`` of every resample (row positions into ``runs``), as ``Approach2Result``s (None where a
    resample has fewer than 2 budgets with a minimum, where ``fit_approach2`` raises); None when the fast path does
    not apply (see the module's docstring). ``make`` is the result class and
    ``groups`` the budget of each row (``isoflop_groups``), passed in by ``fit_approach2``'s module.

    ``estimators``: each budget's estimator (a mapping from the budget, a value of ``groups``, as
    ``warm_start()["estimator"]`` gives it); with it the resamples' minima are the same as ``fit_approach2(
    runs.iloc[idx], estimator=estimators)``'s for any number of sizes a budget: the local parabola's window and the
    GCV spline are computed for all resamples at once (``minima_batched``); only "cubic" and "akima" are not
    batched (None)."""
    need = [cols[k] for k in ("N", "D", "loss")]
    if any(c not in runs.columns for c in need) or cols["C"] not in runs.columns:
        return None
    vals = {k: pd.to_numeric(runs[cols[k]], errors="coerce").to_numpy(float) for k in ("N", "D", "loss", "C")}
    if not all(np.all(np.isfinite(v) & (v > 0)) for v in vals.values()):
        return None  # fit_approach2 would refuse such rows: leave them to it
    key = groups(runs, cols["budget"], cols["C"]).to_numpy(float)
    x, ld, y, lc = np.log(vals["N"]), np.log(vals["D"]), vals["loss"], np.log(vals["C"])
    budgets = np.unique(key)
    members = [np.flatnonzero(key == b) for b in budgets]
    if estimators is None and not applies(result.estimator, [np.unique(x[m]).size for m in members]):
        return None
    if estimators is not None and any(str(estimators.get(float(b), DEFAULT_ESTIMATOR)) not in BATCHED for b in budgets):
        return None
    R, n = len(resamples), len(runs)
    W = np.zeros((R, n))
    for r, idx in enumerate(resamples):
        W[r] = np.bincount(np.asarray(idx, int), minlength=n)
    K = len(budgets)
    logC, xo, lo, lD, used = (np.full((R, K), np.nan) for _ in range(5))
    failed = np.zeros(R, bool)
    for k, m in enumerate(members):
        Wk, xk, yk = W[:, m], x[m], y[m]
        cnt = Wk.sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            logC[:, k] = (Wk @ lc[m]) / cnt
        xu, inv = np.unique(xk, return_inverse=True)
        per_size = np.zeros((R, xu.size))  # draws of each distinct size
        for j in range(xu.size):
            per_size[:, j] = Wk[:, inv == j].sum(1)
        used[:, k] = (per_size > 0).sum(1) >= 3
        xm = xk.mean()  # centred for conditioning; the polynomial is the same as polyfit's on the resample
        u = xk - xm
        S = np.stack([Wk @ u**p for p in range(5)], axis=1)  # (R, 5)
        T = np.stack([Wk @ (u**p * yk) for p in range(3)], axis=1)
        A = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], axis=1)  # rows: moments of u^2, u, 1
        ok = used[:, k] == 1
        q = np.full((R, 3), np.nan)
        if ok.any():
            q[ok] = np.linalg.solve(A[ok], T[ok][:, [2, 1, 0], None])[..., 0]
        q2, q1, q0 = q[:, 0], q[:, 1], q[:, 2]
        up = ok & (q2 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            xo[:, k] = np.where(up, xm - q1 / (2 * q2), np.nan)
            lo[:, k] = np.where(up, q0 - q1 * q1 / (4 * q2), np.nan)
        down = ok & ~up  # the parabola opens downward: the lowest mean loss of a size, as _lowest_point
        if down.any():
            sums = np.zeros((R, xu.size))
            for j in range(xu.size):
                sums[:, j] = Wk[:, inv == j] @ yk[inv == j]
            with np.errstate(divide="ignore", invalid="ignore"):
                means = np.where(per_size > 0, sums / per_size, np.inf)
            jmin = np.argmin(means, axis=1)
            xo[down, k] = xu[jmin[down]]
            lo[down, k] = means[down, jmin[down]]
        if estimators is not None:  # minima of many sizes: the local parabola's window, the spline
            how = _row_methods(str(estimators.get(float(budgets[k]), DEFAULT_ESTIMATOR)), (per_size > 0).sum(1))
            walk = ok & (how == "local_parabola") & ((per_size > 0).sum(1) > LOCAL_POINTS)
            if walk.any():
                xo[walk, k], lo[walk, k] = minima_batched.local_parabola(xk, yk, Wk[walk])
            smooth = ok & (how == "spline")
            if smooth.any():
                xs_, ls_, fine = minima_batched.spline(xk, yk, Wk[smooth])
                xo[smooth, k], lo[smooth, k] = xs_, ls_
                failed[smooth] |= ~fine  # make_smoothing_spline raises there: fit_approach2 would fail
        s, c = _weighted_line(Wk, xk, ld[m])
        lD[:, k] = c + s * xo[:, k]
        with np.errstate(invalid="ignore"):  # a vertex beyond what floats hold: not used (approach2.usable_minimum)
            far = (np.abs(xo[:, k]) >= LOG_FLOAT_MAX) | (np.abs(lD[:, k]) >= LOG_FLOAT_MAX)
        used[far, k] = 0
    fc, pc = conventions(runs)
    usedb = used == 1
    offset_laws = offset_power_laws(np.exp(logC), np.where(usedb, lo, 1.0), usedb & np.isfinite(lo) & (lo > 0))
    out: list = []
    for r in range(R):
        ok = used[r] == 1
        if ok.sum() < 2 or failed[r]:
            out.append(None)
            continue
        C, Nopt, Dopt, Lopt = np.exp(logC[r, ok]), np.exp(xo[r, ok]), np.exp(lD[r, ok]), lo[r, ok]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loss_law = offset_laws[r]
                if ok.sum() < 4:  # a straight line in log-log space (no offset): exact, as fit_approach2 does
                    try:
                        loss_law = OffsetPowerLaw.fit(C, Lopt, offset=False)
                    except FitError:
                        loss_law = None
                law = AllocationLaw(
                    name="approach2",
                    n_opt=PowerLaw.fit(C, Nopt),
                    d_opt=PowerLaw.fit(C, Dopt),
                    loss=loss_law,
                    source="fitted to this sweep",
                    flops_convention=fc,
                    params_convention=pc,
                )
        except (FitError, ValueError, ArithmeticError):
            out.append(None)
            continue
        out.append(
            make(
                law=law,
                per_budget=EMPTY_PER_BUDGET,
                n_budgets_used=int(ok.sum()),
                data=None,
                estimator=result.estimator,
            )
        )
    return out
