"""Kaplan's joint law refitted on a thousand resamples at once: the bootstrap's fast path (issue 19 item 5).

``fit_kaplan`` solves L(N, D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020 eq. 1.5) by least squares on
log L with scipy from the warm start and a grid of starts: ~0.1 s a resample, most of a report's time. A resample of
runs is a count of draws of each run, so its least squares is the full data's weighted by those counts; here every
resample is solved at once by Levenberg-Marquardt (Marquardt 1963, the damping scaled by the diagonal of JᵀWJ) with
the analytic Jacobian, from the full-data optimum, in numpy arrays of (resamples, runs). The bounds are
``fit_kaplan``'s (0 <= E < min loss, 1e-4 <= α <= 5), kept by clipping each step. A resample whose solve did not
converge (gradient not small, or a bound reached) is refitted by ``fit_kaplan`` itself, so none is lost.

``fit_kaplan``'s default fit is robust (a Huber loss on log L, its threshold ``huber`` robust scales of the
residuals: ``robust_rounds``); here each resample or simulated sweep goes through the same two rounds of (scale from
its own residuals, Huber fit), the batched solve minimising the Huber loss by reweighting (``batched_lm``).

It converges to the optimum ``fit_kaplan`` reaches from its warm start; where the grid of starts found another local
optimum the two differ (none of 200 resamples on the 45-run sweep of RESULTS.md). L(C), whose α_C the bootstrap
reports, is fitted on each resample's envelope as ``fit_kaplan`` does; L(N) and L(D), which no bootstrapped quantity
reads, are left None.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions
from analysis.fits.approach1 import frontier
from analysis.fits.batched_lm import solve
from analysis.laws.forms import KaplanJointLaw, OffsetPowerLaw


def joint_log_loss(p, lN, lD):
    """ln L of the joint law at every run for parameter rows ``p`` (R, 5) in (E, α_N, α_D, ln N_c, ln D_c): (R, n)."""
    E, aN, aD, u, v = (p[:, k, None] for k in range(5))
    with np.errstate(all="ignore"):
        return np.log(E + np.exp(aD * np.logaddexp((aN / aD) * (u - lN), v - lD)))


def _residuals(p, lN, lD, lL):
    """Residuals (R, n) of log L and the Jacobian (R, n, 5) in (E, α_N, α_D, ln N_c, ln D_c); ``lL`` is one data
    set's log-losses (n,) shared by every row, or each row's own (R, n)."""
    E, aN, aD, u, v = (p[:, k, None] for k in range(5))
    a1 = aN / aD
    e1, e2 = a1 * (u - lN), v - lD
    z = np.logaddexp(e1, e2)
    w1 = np.exp(e1 - z)
    P = np.exp(aD * z)
    F = E + P
    r = np.log(F) - lL
    G = P / F
    J = np.stack([1.0 / F, G * w1 * (u - lN), G * (z - a1 * w1 * (u - lN)), G * aN * w1, G * aD * (1 - w1)], axis=-1)
    return r, J


def _bounds(Lmin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``fit_kaplan``'s box for each row: 0 <= E < the row's smallest loss, 1e-4 <= α <= 5."""
    R = len(Lmin)
    lo = np.tile([0.0, 1e-4, 1e-4, -np.inf, -np.inf], (R, 1))
    hi = np.stack([Lmin * (1 - 1e-9), *(np.full(R, x) for x in (5.0, 5.0, np.inf, np.inf))], axis=1)
    return lo, hi


ROUNDS = 2  # rounds of (robust scale of the residuals, Huber fit) after the start
SCALE_FLOOR = 1e-9  # smallest robust scale of ln L (noiseless data): the Huber threshold stays positive
N_PARAMS = 5


def robust_scale(r: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """The residuals' robust scale per row, ``parametric_check.law_residual_sd``'s: 1.4826 · median |r| ·
    sqrt(n / (n - 5)), the median and n over the rows' weights ``w`` (counts of a resample, 0 for a point left out;
    the median of the sample with each point repeated w times), never below ``SCALE_FLOOR``. ``r`` (R, n) or (n,)."""
    r2 = np.atleast_2d(np.abs(np.asarray(r, float)))
    w2 = np.ones_like(r2) if w is None else np.atleast_2d(np.asarray(w, float))
    w2 = np.where(np.isfinite(r2), w2, 0.0)
    order = np.argsort(np.where(w2 > 0, r2, np.inf), axis=1, kind="stable")
    a = np.take_along_axis(r2, order, 1)
    cum = np.cumsum(np.take_along_axis(w2, order, 1), axis=1)
    n = cum[:, -1]
    half = n / 2
    lo = np.minimum((cum < half[:, None]).sum(1), r2.shape[1] - 1)  # first point with cum >= n/2
    hi = np.minimum((cum <= half[:, None]).sum(1), r2.shape[1] - 1)  # first with cum > n/2
    rows = np.arange(len(r2))
    med = 0.5 * (a[rows, lo] + a[rows, hi])
    s = np.maximum(1.4826 * med * np.sqrt(n / np.maximum(n - N_PARAMS, 1)), SCALE_FLOOR)
    return s if np.ndim(r) > 1 else s[:1]


def robust_rounds(fun, W: np.ndarray, p: np.ndarray, lo, hi, huber: float) -> tuple[np.ndarray, np.ndarray]:
    """``fit_kaplan``'s robust fit of every row from p: least squares, then ``ROUNDS`` times each row's Huber
    threshold ``huber`` robust scales of its residuals (``robust_scale``) and the Huber fit from there
    (``batched_lm.solve``). Returns (p (R, 5), converged (R,)) of the last round."""
    p, ok = solve(fun, W, p, lo, hi)  # least squares first, as fit_kaplan's grid of starts
    for _ in range(ROUNDS):
        r, _J = fun(p, np.arange(len(p)))
        p, ok = solve(fun, W, p, lo, hi, delta=huber * robust_scale(r, W))
    return p, ok


def refit_many(
    lN, lD, losses: np.ndarray, kept: np.ndarray, p0: np.ndarray, huber: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The joint law fitted to MANY data sets on one design at once (the simulated sweeps of
    ``parametric_check.calibrated_half_widths``): row r's losses ``losses[r]`` (n,) weighted by ``kept[r]`` (the
    gate's mask, or counts), from its own start ``p0[r]`` in (E, α_N, α_D, ln N_c, ln D_c), by least squares or,
    with ``huber``, ``fit_kaplan``'s robust rounds (``robust_rounds``). Returns (p (R, 5), ok (R,)): ok where the
    solve converged (``batched_lm.solve``)."""
    lL = np.log(np.clip(np.asarray(losses, float), 1e-12, None))
    W = np.asarray(kept, float)
    lo, hi = _bounds(np.where(W > 0, np.exp(lL), np.inf).min(1))

    def fun(q, rows):
        return _residuals(q, lN, lD, lL[rows])

    with np.errstate(all="ignore"):
        if huber is not None:
            return robust_rounds(fun, W, np.clip(np.asarray(p0, float), lo, hi), lo, hi, huber)
        return solve(fun, W, np.asarray(p0, float), lo, hi)


def refit(result, runs: pd.DataFrame, resamples, fit_fn, make, with_l_c: bool = True) -> list | None:
    """``fit_kaplan`` of every resample (row positions into ``runs``) as ``KaplanResult``s; None when this path does
    not apply (no offset, or runs without the default columns N, D, C, loss). ``fit_fn`` refits the resamples
    whose batched solve did not converge (``fit_kaplan``), ``make`` builds a result (``KaplanResult``);
    ``with_l_c`` False leaves L(C) None too."""

    if not result.offset or any(c not in runs.columns for c in ("N", "D", "C", "loss")):
        return None
    vals = {k: pd.to_numeric(runs[k], errors="coerce").to_numpy(float) for k in ("N", "D", "C", "loss")}
    if not all(np.all(np.isfinite(v) & (v > 0)) for v in vals.values()):
        return None
    N, D, C, L = vals["N"], vals["D"], vals["C"], vals["loss"]
    R, n = len(resamples), len(runs)
    W = np.zeros((R, n))
    for r, idx in enumerate(resamples):
        W[r] = np.bincount(np.asarray(idx, int), minlength=n)
    drawn = W > 0
    Lmin = np.where(drawn, L, np.inf).min(1)
    lo, hi = _bounds(Lmin)
    law = result.law
    p0 = np.array([law.E, law.alpha_N, law.alpha_D, math.log(law.N_c), math.log(law.D_c)])
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    huber = getattr(result, "huber", None)

    def fun(q, rows):
        return _residuals(q, lN, lD, lL)

    with np.errstate(all="ignore"):
        if huber is not None:
            p, converged = robust_rounds(fun, W, np.clip(np.tile(p0, (R, 1)), lo, hi), lo, hi, huber)
        else:
            p, converged = solve(fun, W, np.tile(p0, (R, 1)), lo, hi)
    fc, pc = conventions(runs)
    out: list = []
    for r in range(R):
        if not converged[r]:  # the batched solve gave up here: the full fit, with its grid of starts
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    sub = runs.iloc[np.asarray(resamples[r], int)].reset_index(drop=True)
                    sub.attrs.update(runs.attrs)
                    out.append(fit_fn(sub, **result.warm_start()))
            except (FitError, ValueError, ArithmeticError):
                out.append(None)
            continue
        E, aN, aD, u, v = (float(x) for x in p[r])
        l_c = None
        if with_l_c:
            keep = np.flatnonzero(drawn[r])
            env = keep[frontier(C[keep], L[keep], None)]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    l_c = OffsetPowerLaw.fit(C[env], L[env], offset=True)
            except FitError:
                l_c = None
        joint = KaplanJointLaw(
            name="kaplan", N_c=math.exp(u), D_c=math.exp(v), alpha_N=aN, alpha_D=aD, E=E,
            source="fitted to this sweep", flops_convention=fc, params_convention=pc,
        )  # fmt: skip
        out.append(make(law=joint, l_n=None, l_d=None, l_c=l_c, converged=True, n_points=int(W[r].sum()), huber=huber))
    return out
