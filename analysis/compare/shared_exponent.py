"""Do the recipes scale alike? A joint fit of L(N, D) = E + A/N^α + B/D^β to the runs of every sweep at once, once
with every parameter separate per sweep and once with the exponents α, β and the floor E shared (only A and B per
sweep), and the evidence between the two stated plainly: an F-test on the residual sums (p-value), the likelihood
ratio, ΔAIC and ΔBIC.

Residuals are in log loss, as in Approach 3; the sums are of Huber's ρ at a scale set from the separate fit's median
absolute residual (1.5 robust σ), so that the odd run that ends high (about 1 in 20 on the CPU) does not decide the
verdict alone. With shared exponents and floor, M(C) is a constant; with separate ones, it moves with C.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from scaling.core import forms as closed

ALPHA = 0.05  # the test's size: "different" when p < ALPHA
MIN_DOF = 5  # fewer residual degrees of freedom than this: no verdict


@dataclass(frozen=True)
class SharedTest:
    n: int  # runs in all sweeps
    k: int  # sweeps
    rss_separate: float
    rss_shared: float
    q: int  # parameters the shared model gives up
    F: float
    p_value: float
    lr: float  # n ln(RSS_shared / RSS_separate), ~ chi2(q) under shared
    d_aic: float  # AIC(shared) - AIC(separate): > 0 favours separate exponents
    d_bic: float
    scale: float  # Huber scale, log-loss units
    separate: list  # per sweep (E, A, B, alpha, beta)
    shared: tuple  # (E, alpha, beta, [A_k], [B_k])

    @property
    def dof(self) -> int:
        return self.n - 5 * self.k

    @property
    def weak(self) -> str:
        """Why these runs cannot support the test ("" when they can)."""
        bits = []
        if self.dof < MIN_DOF:
            bits.append(f"only {self.dof} residual degrees of freedom (under {MIN_DOF})")
        bad = [i for i, (_, _, _, al, be) in enumerate(self.separate) if not (0 < al < 2 and 0 < be < 2)]
        if bad:
            bits.append("a separate fit's exponents lie outside (0, 2), so these runs do not pin each recipe's law")
        return "; ".join(bits)

    @property
    def verdict(self) -> str:
        if self.weak:
            return "undetermined"
        if self.p_value < ALPHA:
            return "different"
        return "consistent with shared"

    def sentence(self) -> str:
        ev = (
            f"F({self.q}, {self.n - 5 * self.k}) = {self.F:.2f}, p = {self.p_value:.3g}; "
            f"ΔAIC = {self.d_aic:+.1f}, ΔBIC = {self.d_bic:+.1f} (shared minus separate; positive favours separate)"
        )
        if self.weak:
            return f"these runs cannot tell whether the recipes share exponents and floor: {self.weak} ({ev})"
        if self.p_value < ALPHA:
            return f"the recipes scale differently: separate exponents and floor fit better than shared ones ({ev})"
        return (
            f"no evidence that the recipes scale differently: shared exponents and floor fit as well as separate "
            f"ones ({ev}); this does not prove them equal, only that these runs cannot tell them apart"
        )


def _pred(e, a, b, al, be, lN, lD):
    return np.logaddexp(np.logaddexp(e, a - al * lN), b - be * lD)


def _arrays(tables):
    lN = [np.log(t["N"].to_numpy(float)) for t in tables]
    lD = [np.log(t["D"].to_numpy(float)) for t in tables]
    lL = [np.log(t["loss"].to_numpy(float)) for t in tables]
    return lN, lD, lL


def _terms(e, a, b, al, be, lN, lD):
    """Each point's share of the three terms (softmax of their logs): the derivatives of the log prediction."""
    t = np.stack([np.full_like(lN, e), a - al * lN, b - be * lD])
    t = np.exp(t - t.max(axis=0))
    return t / t.sum(axis=0)


def _jac_one(x, lN, lD):
    w0, w1, w2 = _terms(*x, lN, lD)
    return np.stack([w0, w1, w2, -w1 * lN, -w2 * lD], axis=1)


def _fit_one(x0s, lN, lD, lL, scale):
    best = None
    for x0 in x0s:
        try:
            r = optimize.least_squares(
                lambda x: _pred(*x, lN, lD) - lL,
                x0,
                jac=lambda x: _jac_one(x, lN, lD),
                loss="huber",
                f_scale=scale,
                method="trf",
                max_nfev=2000,
            )
        except (ValueError, FloatingPointError):
            continue
        if best is None or r.cost < best.cost:
            best = r
    return best


def _fit_shared(x0s, lN, lD, lL, scale):
    K = len(lN)

    def res(x):
        e, al, be = x[:3]
        return np.concatenate([_pred(e, x[3 + k], x[3 + K + k], al, be, lN[k], lD[k]) - lL[k] for k in range(K)])

    sizes = [len(x) for x in lN]
    offs = np.concatenate([[0], np.cumsum(sizes)])

    def jac(x):
        e, al, be = x[:3]
        J = np.zeros((offs[-1], len(x)))
        for k in range(K):
            w0, w1, w2 = _terms(e, x[3 + k], x[3 + K + k], al, be, lN[k], lD[k])
            s = slice(offs[k], offs[k + 1])
            J[s, 0], J[s, 1], J[s, 2] = w0, -w1 * lN[k], -w2 * lD[k]
            J[s, 3 + k], J[s, 3 + K + k] = w1, w2
        return J

    best = None
    for x0 in x0s:
        try:
            r = optimize.least_squares(res, x0, jac=jac, loss="huber", f_scale=scale, method="trf", max_nfev=4000)
        except (ValueError, FloatingPointError):
            continue
        if best is None or r.cost < best.cost:
            best = r
    return best


def shared_exponent_test(tables: list[pd.DataFrame], inits: list | None = None) -> SharedTest:
    """The test on ``tables`` (columns N, D, loss), starting the separate fits from ``inits`` (per table (log E,
    log A, log B, α, β), e.g. Approach 3's ``log_params``; fitted here when None)."""
    if inits is None:
        from analysis.fits.approach3 import fit_approach3

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inits = [fit_approach3(t, grid="small").log_params for t in tables]
    K = len(tables)
    lN, lD, lL = _arrays(tables)
    n = sum(len(x) for x in lL)
    if n - 5 * K < 1:
        raise ValueError(f"shared-exponent test: {n} runs cannot fit {5 * K} separate parameters")
    inits = [np.asarray(x, float) for x in inits]
    # separate fits, first at a wide scale, then the robust scale from their residuals
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sep0 = [_fit_one([inits[k]], lN[k], lD[k], lL[k], 1.0) for k in range(K)]
        resid = np.concatenate([s.fun for s in sep0 if s is not None])
        scale = max(1.5 * 1.4826 * float(np.median(np.abs(resid - np.median(resid)))), 1e-4)
        e0 = float(np.mean([x[0] for x in inits]))
        starts = [np.concatenate([[x[0], x[3], x[4]], [y[1] for y in inits], [y[2] for y in inits]]) for x in inits] + [
            np.concatenate(
                [
                    [e0, np.mean([x[3] for x in inits]), np.mean([x[4] for x in inits])],
                    [y[1] for y in inits],
                    [y[2] for y in inits],
                ]
            )
        ]
        sh = _fit_shared(starts, lN, lD, lL, scale)
        if sh is None:
            raise ValueError("shared-exponent test: the shared fit failed")
        xs = sh.x
        sep = []
        for k in range(K):
            from_shared = np.array([xs[0], xs[3 + k], xs[3 + K + k], xs[1], xs[2]])
            sep.append(
                _fit_one(
                    [inits[k], from_shared, sep0[k].x if sep0[k] is not None else inits[k]], lN[k], lD[k], lL[k], scale
                )
            )
    if any(s is None for s in sep):
        raise ValueError("shared-exponent test: a separate fit failed")
    rss_sep = 2 * sum(s.cost for s in sep)
    rss_sh = max(2 * sh.cost, rss_sep)  # nested: the separate model fits at least as well
    q = 3 * (K - 1)
    dof = n - 5 * K
    F = ((rss_sh - rss_sep) / q) / (rss_sep / dof) if rss_sep > 0 else np.inf
    p = float(stats.f.sf(F, q, dof))
    lr = n * float(np.log(rss_sh / rss_sep)) if rss_sep > 0 else np.inf
    return SharedTest(
        n=n,
        k=K,
        rss_separate=rss_sep,
        rss_shared=rss_sh,
        q=q,
        F=float(F),
        p_value=p,
        lr=lr,
        d_aic=lr - 2 * q,
        d_bic=lr - q * float(np.log(n)),
        scale=scale,
        separate=[
            (float(np.exp(s.x[0])), float(np.exp(s.x[1])), float(np.exp(s.x[2])), float(s.x[3]), float(s.x[4]))
            for s in sep
        ],
        shared=(
            float(np.exp(xs[0])),
            float(xs[1]),
            float(xs[2]),
            [float(np.exp(v)) for v in xs[3 : 3 + K]],
            [float(np.exp(v)) for v in xs[3 + K :]],
        ),
    )


# --- the multiplier under the shared law -------------------------------------------------------------------------
# With E, α, β shared and A_k, B_k per recipe, minimising A/N^α + B/D^β at fixed N D gives L_k*(C) = E + G_k C^-γ with
# G_A / G_B = (A_A/A_B)^(β/(α+β)) (B_A/B_B)^(α/(α+β)) and γ = αβ/(α+β), so L_B*(C) = L_A*(M C) for every C with
#     ln M = ln(A_A / A_B) / α + ln(B_A / B_B) / β,
# a constant in N·D space, estimated from both sweeps' runs at once. Each sweep's compute is C = 6 N D r(N), r its
# FLOP convention's factor (``analysis.laws.conventions``), so in compute (M = C_A(L_B(C)) / C, as the separate fits)
#     ln M = ln(A_A / A_B) / α + ln(B_A / B_B) / β + ln(r_A(N_A*) / r_B(N_B*)),
# N_A*, N_B* the optima where A and B reach that loss (``flop_ratio_log_term``): constant when the factors are.


def shared_log_multiplier(x: np.ndarray, k: int) -> np.ndarray:
    """ln M of sweep ``k`` against sweep 0 from shared-fit parameter vectors ``x`` (..., 3 + 2K): (log E, α, β,
    log A_0..K-1, log B_0..K-1)."""
    x = np.asarray(x, float)
    K = (x.shape[-1] - 3) // 2
    al, be = x[..., 1], x[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x[..., 3] - x[..., 3 + k]) / al + (x[..., 3 + K] - x[..., 3 + K + k]) / be


def flop_ratio_log_term(x: np.ndarray, k: int, ratio_0, ratio_k, C: float) -> float:
    """ln(r_0(N_0*) / r_k(N_k*)): what the sweeps' FLOP conventions add to ``shared_log_multiplier`` (ln M in N·D
    space) of sweep ``k`` against sweep 0 under the shared law ``x``. Each ratio is None (C is 6ND), a number, or
    r(N) (a ``conventions`` ratio); one that varies with N is taken at the optima at compute ``C`` (as loaded): B
    (sweep k) spends C at its optimum N_k*, A reaches that loss at 6ND M_ND times B's, at its optimum N_0*."""
    x = np.asarray(x, float)
    K = (len(x) - 3) // 2
    al, be = float(x[1]), float(x[2])

    def log_n_opt(j: int, c6: float) -> float:  # ln N at sweep j's optimum under 6ND compute c6
        return float(closed.chinchilla_log_optimum(np.log(c6 / 6.0), x[3 + j], x[3 + K + j], al, be)[0])

    def r(ratio, j: int, c6: float) -> float:
        if ratio is None:
            return 1.0
        return float(ratio(np.exp(log_n_opt(j, c6)))) if callable(ratio) else float(ratio)

    with np.errstate(all="ignore"):
        c6 = float(C) / r(ratio_k, k, float(C))
        for _ in range(30):  # fixed point of c6 = C / r_k(N_k*(c6)), as ``conventions.InConvention``
            new = float(C) / r(ratio_k, k, c6)
            done = np.isclose(new, c6, rtol=1e-10)
            c6 = new
            if done or not np.isfinite(c6):
                break
        c6_0 = c6 * float(np.exp(shared_log_multiplier(x, k)))
        return float(np.log(r(ratio_0, 0, c6_0) / r(ratio_k, k, c6)))


def shared_vector(t: SharedTest) -> np.ndarray:
    E, al, be, As, Bs = t.shared
    return np.concatenate([[np.log(E), al, be], np.log(As), np.log(Bs)])


def shared_undetermined(t: SharedTest) -> str:
    """Why the shared fit cannot carry M ("" when it can): the test's reasons, or shared exponents outside (0, 2)."""
    _, al, be, _, _ = t.shared
    bits = [t.weak] if t.weak else []
    if not (0 < al < 2 and 0 < be < 2):
        bits.append(f"the shared fit's exponents (α = {al:.3g}, β = {be:.3g}) lie outside (0, 2)")
    return "; ".join(bits)


def shared_bootstrap(tables: list[pd.DataFrame], t: SharedTest, n_boot: int, seed: int = 0) -> np.ndarray:
    """The shared fit refitted on ``n_boot`` joint resamples of the runs (resample r draws each sweep's runs with
    replacement, independently across sweeps), each warm-started from the full-data optimum at the test's Huber
    scale, their spread about it widened by sqrt(n / (n - p)): (n_boot, 3 + 2K) parameter vectors, NaN rows where a
    refit failed."""
    lN, lD, lL = _arrays(tables)
    x0 = shared_vector(t)
    rng = np.random.default_rng(seed + 4241)
    out = np.full((n_boot, len(x0)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for r in range(n_boot):
            idx = [rng.integers(0, len(v), len(v)) for v in lL]
            fit = _fit_shared(
                [x0],
                [v[i] for v, i in zip(lN, idx)],
                [v[i] for v, i in zip(lD, idx)],
                [v[i] for v, i in zip(lL, idx)],
                t.scale,
            )
            if fit is not None and np.all(np.isfinite(fit.x)):
                out[r] = fit.x
    # resampling runs spreads a least-squares fit by about sqrt((n - p) / n) too little (n runs, p parameters):
    # undo that about the full-data optimum (measured: 84% coverage of the 90% interval without it)
    n, p = sum(len(v) for v in lL), len(x0)
    return x0 + (out - x0) * np.sqrt(n / (n - p))
