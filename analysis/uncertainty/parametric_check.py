"""Approach 3's interval from one loop of simulated sweeps (issue 20 item 4, the in-report check beside
``law_calibration``'s double loop, which needs n_sims x n_resamples refits and minutes).

Simulate this sweep's exact design (every run's N and D) ``n_sims`` times from the fitted law with the sweep's
noise model (``calibration.noise_model``: seed spread and stalled-run jumps, each simulated budget through the quality
gate's stall rule), fit every simulated sweep once, all in ONE batched L-BFGS started from the fit (a simulated
sweep's losses and gate mask are its problem's data), and take the ``level`` quantile of |estimate - truth| (ln for
N_opt, linear for a) over the simulated sweeps as the half-width of the interval around the sweep's own estimate.
It assumes the estimator's error at the fitted law is the error at the truth (a pivot), as the double loop does.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.quality import stalled_positions
from analysis.fits.approach3 import approach3_objective
from analysis.fits.lbfgs import FIRST, REFINE, lbfgs_batch
from analysis.laws.forms import ParametricLaw
from analysis.uncertainty.calibration import NoiseModel


def simulate_losses(
    y_true: np.ndarray, logN: np.ndarray, budget: np.ndarray, noise: NoiseModel, n_sims: int, rng
) -> tuple[np.ndarray, np.ndarray]:
    """(losses (n_sims, n), kept (n_sims, n)): the runs' true losses with seed noise and jumps, and which runs the
    quality gate's stall rule keeps in each simulated sweep."""
    n = y_true.size
    y = y_true + noise.seed_sd * rng.standard_normal((n_sims, n))
    jumps = rng.random((n_sims, n)) < noise.jump_rate
    y = y + jumps * rng.uniform(noise.jump_lo, noise.jump_hi, (n_sims, n))
    kept = np.ones((n_sims, n), bool)
    groups = [np.flatnonzero(budget == b) for b in np.unique(budget)]
    groups = [g[np.argsort(logN[g], kind="stable")] for g in groups]  # the gate reads a budget sorted by ln N
    for s in range(n_sims):
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
