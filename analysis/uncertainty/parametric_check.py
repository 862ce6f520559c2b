"""Approach 3's and Kaplan's interval from one loop of simulated sweeps (issue 20 item 4, the in-report check beside
``law_calibration``'s double loop, which needs n_sims x n_resamples refits and minutes). What the report carries is
``calibrated_half_widths`` (its level calibrated by a fast double bootstrap), one implementation for both laws given
their ``LawPieces``; ``half_widths`` below is the plain single loop for Approach 3 the study compares against.

Simulate this sweep's exact design (every run's N and D) ``n_sims`` times from the fitted law with the sweep's
noise model (``calibration.noise_model``: seed spread and stalled-run jumps, each simulated budget through the quality
gate's stall rule), fit every simulated sweep once, all in ONE batched L-BFGS started from the fit (a simulated
sweep's losses and gate mask are its problem's data), and take the ``level`` quantile of |estimate - truth| (ln for
N_opt, linear for a) over the simulated sweeps as the half-width of the interval around the sweep's own estimate.
It assumes the estimator's error at the fitted law is the error at the truth (a pivot), as the double loop does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.data.quality import stalled_positions
from analysis.fits.approach3 import approach3_objective
from analysis.fits.lbfgs import FIRST, REFINE, lbfgs_batch
from analysis.laws.forms import KaplanJointLaw, ParametricLaw
from analysis.uncertainty.calibration import NoiseModel
from analysis.uncertainty.double_level import calibrated_level


def simulate_losses(
    y_true: np.ndarray, logN: np.ndarray, budget: np.ndarray, noise: NoiseModel, n_sims: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """(losses (n_sims, n), kept (n_sims, n)): the runs' true losses with seed noise and jumps, and which runs the
    quality gate's stall rule keeps in each simulated sweep."""
    return simulate_each(
        np.broadcast_to(y_true, (n_sims, y_true.size)),
        logN,
        budget,
        np.full(n_sims, noise.seed_sd),
        np.full(n_sims, noise.jump_rate),
        (noise.jump_lo, noise.jump_hi),
        rng,
    )


def simulate_each(
    y_true: np.ndarray, logN, budget, seed_sd, jump_rate, jump, rng, relative: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``simulate_losses`` with a truth (S, n), a seed sd (S,) and a jump rate (S,) of its own for each sweep; with
    ``relative`` the seed noise is multiplicative, loss x exp(sd z) (sd in ln loss), the jumps still in nats."""
    S, n = y_true.shape
    z = np.asarray(seed_sd, float)[:, None] * rng.standard_normal((S, n))
    y = y_true * np.exp(z) if relative else y_true + z
    jumps = rng.random((S, n)) < np.asarray(jump_rate, float)[:, None]
    y = y + jumps * rng.uniform(jump[0], jump[1], (S, n))
    kept = np.ones((S, n), bool)
    groups = [np.flatnonzero(budget == b) for b in np.unique(budget)]
    groups = [g[np.argsort(logN[g], kind="stable")] for g in groups]  # the gate reads a budget sorted by ln N
    for s in range(S):
        for g in groups:
            for pos, *_ in stalled_positions(logN[g], y[s, g]):
                kept[s, g[pos]] = False
    return y, kept


def fit_simulated(
    fit, logN, logD, losses: np.ndarray, kept: np.ndarray, x0: np.ndarray | None = None, refine_iter: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Approach 3 refitted on every simulated sweep at once from ``fit``'s optimum (or from the rows of ``x0``):
    (theta (S, 5) in (ln E, ln A, ln B, alpha, beta), converged (S,)). ``kept`` (S, n) weighs each run: 0 where the
    gate left it out; counts of a bootstrap resample work too. ``refine_iter`` caps the refinement pass's
    iterations (default ``REFINE``'s): a batch runs as long as its slowest problem."""
    logL = np.log(np.clip(losses, 1e-12, None))
    W = kept.astype(float)
    delta = fit.delta

    def fun_grad(X, rows):
        return approach3_objective(X, logN, logD, logL[rows], delta, W[rows])

    if x0 is None:
        x0 = np.tile(np.asarray(fit.theta, float), (len(losses), 1))
    x, f, status, _ = lbfgs_batch(fun_grad, x0, **FIRST)
    refine = REFINE if refine_iter is None else dict(REFINE, max_iter=refine_iter)
    x2, f2, st2, _ = lbfgs_batch(fun_grad, x, **refine)
    better = np.isfinite(f2) & (f2 <= f)
    return np.where(better[:, None], x2, x), np.isfinite(np.where(better, f2, f))


def half_widths(
    fit, runs: pd.DataFrame, quantities, noise: NoiseModel, *, level: float = 0.9, n_sims: int = 200, seed: int = 0
) -> tuple[dict[str, float], int]:
    """({quantity: half-width}, simulated sweeps used): the ``level`` quantile of |estimate - truth| of each of
    ``quantities(law) -> {name: value}`` (names starting "a": linear; others: ln) over ``n_sims`` sweeps simulated
    from ``fit`` (an ``Approach3Result``) on ``runs``' design."""
    rng = np.random.default_rng(seed)
    N, D = runs["N"].to_numpy(float), runs["D"].to_numpy(float)
    logN, logD = np.log(N), np.log(D)
    y_true = np.asarray(fit.predict(N, D), dtype=float)
    losses, kept = simulate_losses(y_true, logN, runs["budget"].to_numpy(), noise, n_sims, rng)
    theta, ok = fit_simulated(fit, logN, logD, losses, kept)
    truth = {k: float(v) for k, v in quantities(fit).items()}
    names = list(truth)
    lin = [k == "a" or k.startswith("a_") for k in names]
    err = []
    with np.errstate(all="ignore"):
        for th in theta[ok]:
            law = ParametricLaw.from_logs("simulated", float(np.exp(th[0])), th[1], th[2], th[3], th[4])
            try:
                q = quantities(law)
            except (ValueError, ArithmeticError):
                continue
            err.append([q[k] - truth[k] if lin[j] else np.log(q[k] / truth[k]) for j, k in enumerate(names)])
    e = np.abs(np.asarray(err, float))
    e = e[np.isfinite(e).all(1)]
    return {k: float(np.quantile(e[:, j], level)) for j, k in enumerate(names)}, len(e)


def law_residual_sd(fit, runs: pd.DataFrame, n_params: int = 5) -> float:
    """The seed spread seen by the law itself, in ln loss (Approach 3's own residual scale): 1.4826 · median
    |ln loss - ln fit.predict(N, D)| over the runs (robust to the few jumps the gate let through), times
    sqrt(n / (n - n_params)) for the fitted parameters. Unlike ``calibration.seed_spread`` (residuals in nats about a
    parabola in ln N through each budget), it does not count a parabola's lack of fit on wide, low-noise budgets as
    noise, it does count what the law cannot follow, and it is relative: a sweep over decades of compute, whose
    loss falls from ~3.3 to ~2.2, is not simulated with the noisiest budget's spread in nats on its largest."""
    pred = np.asarray(fit.predict(runs["N"].to_numpy(float), runs["D"].to_numpy(float)), float)
    r = np.log(runs["loss"].to_numpy(float)) - np.log(pred)
    n = r.size
    return float(1.4826 * np.median(np.abs(r)) * np.sqrt(n / max(n - n_params, 1)))


def _predict(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray) -> np.ndarray:
    """Approach 3's loss at every run for parameter rows (S, 5) in (ln E, ln A, ln B, alpha, beta): (S, n)."""
    e, a, b, al, be = (theta[:, i : i + 1] for i in range(5))
    with np.errstate(all="ignore"):
        return np.exp(e) + np.exp(a - al * logN) + np.exp(b - be * logD)


@dataclass(frozen=True)
class LawPieces:
    """What ``calibrated_half_widths`` needs of a law, on one design: ``theta`` the fit's parameter row (P,);
    ``predict(theta (S, P)) -> (S, n)`` the loss at every run; ``refit(losses (S, n), kept (S, n), x0 (S, P)) ->
    (theta (S, P), ok (S,))`` every simulated sweep refitted at once from its own warm start (``kept`` weighs each
    run: 0 where the gate left it out); ``build(row) -> law`` the law (``a``, ``compute_optimal``) of a parameter
    row; ``n_params`` for the residual sd's degrees of freedom; ``widen_only``: the calibrated level never below
    the nominal one (``calibrated_level``, on the studentized errors: the half-width can still fall under the
    plain single loop's where the simulated sweeps' noise estimates run above the real one)."""

    theta: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    refit: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
    build: Callable[[np.ndarray], Any]
    n_params: int
    widen_only: bool = False


def approach3_pieces(fit, logN: np.ndarray, logD: np.ndarray) -> LawPieces:
    """Approach 3's pieces: L = E + A/N^alpha + B/D^beta in (ln E, ln A, ln B, alpha, beta), refitted by one
    batched L-BFGS (``fit_simulated``)."""
    return LawPieces(
        theta=np.asarray(fit.theta, float),
        predict=lambda th: _predict(th, logN, logD),
        refit=lambda losses, kept, x0: fit_simulated(fit, logN, logD, losses, kept, x0=x0),
        build=lambda th: ParametricLaw.from_logs("simulated", float(np.exp(th[0])), th[1], th[2], th[3], th[4]),
        n_params=5,
    )


def kaplan_pieces(fit, logN: np.ndarray, logD: np.ndarray) -> LawPieces:
    """Kaplan's joint law in (E, alpha_N, alpha_D, ln N_c, ln D_c), every simulated sweep refitted at once by the
    bootstrap's batched Levenberg-Marquardt (``kaplan_resamples.refit_many``: per-row log-losses, the gate's kept
    mask as weights), with ``fit``'s loss (its Huber threshold, or least squares). Its level only widens: with the
    robust fit the single loop at the nominal level covered 87-91% against a known truth where the calibrated
    level (median 0.88-0.89) narrowed it to 86-89% (RESULTS.md)."""
    from analysis.fits.kaplan_resamples import joint_log_loss, refit_many

    law = fit.law
    return LawPieces(
        theta=np.array([law.E, law.alpha_N, law.alpha_D, np.log(law.N_c), np.log(law.D_c)], float),
        predict=lambda th: np.exp(joint_log_loss(th, logN, logD)),
        refit=lambda losses, kept, x0: refit_many(logN, logD, losses, kept, x0, huber=fit.huber),
        build=lambda th: KaplanJointLaw(
            "simulated", float(np.exp(th[3])), float(np.exp(th[4])), float(th[1]), float(th[2]), E=float(th[0])
        ),
        n_params=5,
        widen_only=True,
    )


def law_pieces(fit, logN: np.ndarray, logD: np.ndarray) -> LawPieces:
    """The pieces of ``fit``'s law: Approach 3's or Kaplan's (a clear error for any other)."""
    from analysis.fits.approach3 import Approach3Result
    from analysis.fits.kaplan import KaplanResult

    if isinstance(fit, KaplanResult):
        return kaplan_pieces(fit, logN, logD)
    if isinstance(fit, Approach3Result):
        return approach3_pieces(fit, logN, logD)
    raise ValueError(f"law_pieces: fit is a {type(fit).__name__}; must be an Approach3Result or a KaplanResult")


def _residual_sd(pred: np.ndarray, losses, kept, n_params: int = 5) -> np.ndarray:
    """``law_residual_sd`` of every simulated sweep at once (each over the runs its gate kept), from the law's
    losses ``pred`` (S, n) at its own fit: (S,)."""
    with np.errstate(all="ignore"):
        r = np.where(kept, np.abs(np.log(losses) - np.log(pred)), np.nan)
    n = kept.sum(1)
    with np.errstate(all="ignore"):
        return 1.4826 * np.nanmedian(r, axis=1) * np.sqrt(n / np.maximum(n - n_params, 1))


def _errors(quantities, build, theta: np.ndarray, truth: np.ndarray, names, lin) -> np.ndarray:
    """(S, Q) estimate - truth (ln for N_opt) of each row's law (``build(row)``) against each row of ``truth``
    (S, Q); NaN where a law gives no value."""
    out = np.full((len(theta), len(names)), np.nan)
    with np.errstate(all="ignore"):
        for i, th in enumerate(theta):
            if not np.isfinite(th).all():
                continue
            try:
                q = quantities(build(th))
            except (ValueError, ArithmeticError):
                continue
            v = np.array([q[k] for k in names], float)
            out[i] = np.where(lin, v - truth[i], np.log(v / truth[i]))
    return out


def studentized(
    t1: np.ndarray, t2: np.ndarray, sd0: float, sd1: np.ndarray, sd2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(T1, T2) studentized by each sweep's own noise estimate, in the real sweep's units: T1 x sd0 / sd1 and T2 x
    sd0 / sd2 (``sd1``, ``sd2``: the residual sd re-estimated on each level-1 and level-2 sweep as ``sd0`` on the
    real one; NaN where one is not positive). The half-width then scales with the sweep's noise estimate as a t
    interval's does: a noise estimate biased by k at every level cancels, and its spread from sweep to sweep (a
    median-based scale on 40-70 runs varies by ~15%) widens the quantile as a t quantile is wider than a normal
    one, which the plain quantile of T1 (at the one noise sd0) leaves out and under-covers for. Unstudentized where
    sd0 is not positive (a noiseless sweep)."""
    if not (np.isfinite(sd0) and sd0 > 0):
        return t1, t2
    with np.errstate(all="ignore"):
        s1 = np.where(np.asarray(sd1, float) > 0, sd0 / np.asarray(sd1, float), np.nan)
        s2 = np.where(np.asarray(sd2, float) > 0, sd0 / np.asarray(sd2, float), np.nan)
    return t1 * s1, t2 * s2


@dataclass(frozen=True)
class FastDouble:
    """``calibrated_half_widths``' result: per quantity the half-width carried, the calibrated quantile level, and
    the single loop's half-width at the nominal level (same level-1 sweeps); sweeps used at each level; the noise."""

    half_widths: dict
    levels: dict
    single_loop: dict
    n_sims: int
    n_inner: int
    noise: NoiseModel


def calibrated_half_widths(
    fit,
    runs: pd.DataFrame,
    quantities,
    *,
    pieces: LawPieces | None = None,
    n_flagged: int = 0,
    level: float = 0.9,
    n_sims: int = 200,
    seed: int = 0,
    jump: tuple[float, float] = (0.15, 0.25),
) -> FastDouble:
    """A law's interval from the single loop with its quantile level calibrated by a fast double bootstrap
    (Davidson & MacKinnon 2007; for intervals Chang & Hall 2015, Biometrika 102:203). The law is ``pieces``
    (``LawPieces``; default ``law_pieces(fit, ...)``: Approach 3's or Kaplan's), one implementation for both.

    Level 1: ``n_sims`` sweeps simulated from ``fit`` with the sweep's noise (relative seed noise, its sd from the
    law's own residuals in ln loss, ``law_residual_sd``; jump rate (k + 1) / (n + 20) from the gate's count), each
    refitted: errors T1 = |estimate - fit's value|. Level 2: ONE sweep simulated from each level-1 fit with the
    noise re-estimated on that level-1 sweep exactly as on the real one (its law's residual sd, its gate's count),
    refitted: T2 = |its estimate - the level-1 fit's value|. Both studentized by their own sweep's noise estimate
    (``studentized``: T1 x sd0 / sd1, T2 x sd0 / sd2, the residual sd re-estimated on each level-1 and level-2
    sweep), so the half-width is that of a t interval, not a normal one: it counts how much the noise estimate
    itself varies from sweep to sweep. The single loop's interval (the ``level`` quantile of T1) would cover the
    level-1 truths as often as T2 <= that quantile, so the level carried is lambda = the share of T2 at or below
    the ``level`` quantile of T1, and the half-width the lambda quantile of T1 (``calibrated_level``). What this
    corrects: a noise estimate biased up or down (the studentized pivot cancels it) and an estimator whose spread
    grows or shrinks away from the truth. ``single_loop`` is the plain ``level`` quantile of |error| (not
    studentized). Cost: two batched fits of ``n_sims`` sweeps."""
    rng = np.random.default_rng(seed)
    N, D = runs["N"].to_numpy(float), runs["D"].to_numpy(float)
    logN, logD = np.log(N), np.log(D)
    budget = runs["budget"].to_numpy()
    law = law_pieces(fit, logN, logD) if pieces is None else pieces
    n = len(runs) + n_flagged
    sd0 = law_residual_sd(fit, runs, law.n_params)
    noise = NoiseModel(
        seed_sd=sd0,
        jump_rate=(n_flagged + 1) / (n + 20),
        jump_lo=jump[0],
        jump_hi=jump[1],
        n_flagged=n_flagged,
        n_runs=n,
    )
    th0 = np.asarray(law.theta, float)[None, :]
    losses, kept = simulate_each(
        np.repeat(law.predict(th0), n_sims, axis=0),
        logN,
        budget,
        np.full(n_sims, sd0),
        np.full(n_sims, noise.jump_rate),
        jump,
        rng,
        relative=True,
    )
    th1, ok1 = law.refit(losses, kept, np.repeat(th0, n_sims, axis=0))
    th1 = np.where(ok1[:, None], th1, np.nan)
    truth0 = {k: float(v) for k, v in quantities(fit).items()}
    names = list(truth0)
    lin = np.array([k == "a" or k.startswith("a_") for k in names])
    v0 = np.array([truth0[k] for k in names], float)
    e1 = _errors(quantities, law.build, th1, np.tile(v0, (n_sims, 1)), names, lin)
    # level 2: the noise re-estimated on each level-1 sweep as on the real one, one sweep simulated from its fit
    good = np.isfinite(th1).all(1)
    safe = np.where(good[:, None], th1, th0)
    pred1 = law.predict(safe)
    sd1 = np.nan_to_num(_residual_sd(pred1, losses, kept, law.n_params), nan=sd0)
    rate1 = ((~kept).sum(1) + 1) / (len(runs) + 20)
    losses2, kept2 = simulate_each(pred1, logN, budget, sd1, rate1, jump, rng, relative=True)
    th2, ok2 = law.refit(losses2, kept2, safe)
    th2 = np.where((ok2 & good)[:, None], th2, np.nan)
    v1 = np.full((n_sims, len(names)), np.nan)
    for i in np.flatnonzero(good):  # each level-1 fit's own values: level 2's truth
        v1[i] = np.where(lin, v0 + e1[i], v0 * np.exp(e1[i]))
    e2 = _errors(quantities, law.build, th2, v1, names, lin)
    sd2 = _residual_sd(law.predict(np.where(np.isfinite(th2).all(1)[:, None], th2, safe)), losses2, kept2, law.n_params)
    t1, t2 = np.abs(e1), np.abs(e2)
    half, lam, plain = {}, {}, {}
    for j, k in enumerate(names):
        plain[k] = calibrated_level(t1[:, j], t2[:, j], level)[0]
        s1, s2 = studentized(t1[:, j], t2[:, j], sd0, sd1, sd2)
        _, lam[k], half[k] = calibrated_level(s1, s2, level, law.widen_only)
    return FastDouble(half, lam, plain, int(np.isfinite(t1).all(1).sum()), int(np.isfinite(t2).all(1).sum()), noise)
