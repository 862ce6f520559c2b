"""The bootstraps' batched refits (analysis/fits/approach1_resamples.py, approach2_resamples.py, kaplan_resamples.py,
batched_lm.py): every resample refitted at once gives the numbers of refitting each resample alone."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.fits.approach1 import fit_approach1
from analysis.fits.approach2 import fit_approach2
from analysis.fits.batched_lm import solve
from analysis.fits.kaplan import fit_kaplan
from analysis.studies.synthetic import CHINCHILLA, synthetic_curves, synthetic_runs
from analysis.uncertainty.resampling import bootstrap

BUDGETS = (1e18, 3e18, 1e19, 3e19, 1e20)


def _agree(fit_fn, df, rtol, n=12, **kw):
    one = bootstrap(fit_fn, df, n_resamples=n, seed=3, budget=1e22, n_jobs=1, batched=False, **kw)
    many = bootstrap(fit_fn, df, n_resamples=n, seed=3, budget=1e22, n_jobs=1, batched=True, **kw)
    assert list(one.samples.columns) == list(many.samples.columns)
    np.testing.assert_allclose(many.samples.to_numpy(), one.samples.to_numpy(), rtol=rtol, atol=1e-12)
    return many


def test_approach2_batched_refit_matches_one_fit_a_resample():
    df = synthetic_runs(CHINCHILLA, budgets=BUDGETS, n_per_budget=5, noise=0.01, seed=1)
    assert fit_approach2(df).refit_resamples(df, [np.arange(len(df))]) is not None  # the parabola case batches
    _agree(fit_approach2, df, rtol=1e-4, strata_col="budget")


def test_approach2_with_spline_minima_is_refitted_one_resample_at_a_time():
    df = synthetic_runs(CHINCHILLA, budgets=BUDGETS, n_per_budget=9, noise=0.01, seed=1)
    assert fit_approach2(df).refit_resamples(df, [np.arange(len(df))]) is None


def test_approach1_batched_refit_matches_one_fit_a_resample():
    curves = synthetic_curves(CHINCHILLA, n_points=30, noise=0.01, seed=0)
    _agree(fit_approach1, curves, rtol=1e-9)


def test_kaplan_batched_refit_matches_one_fit_a_resample():
    df = synthetic_runs(CHINCHILLA, budgets=BUDGETS, n_per_budget=5, noise=0.01, seed=2)
    # a real run's C is not exactly its budget; with exact ties in C the L(C) envelope of fit_kaplan depends on the
    # resample's row order (which tied run comes first), which the batched refit does not reproduce
    df["C"] *= np.exp(np.random.default_rng(0).normal(0, 1e-3, len(df)))
    _agree(fit_kaplan, df, rtol=2e-3, n=6)


def test_batched_lm_solves_bounded_least_squares_and_holds_a_bound():
    """y = p0 + p1 x on three problems; the third's intercept is held at its bound 0 where the data want it below."""
    x = np.linspace(0, 1, 6)
    Y = np.array([1 + 2 * x, 0.5 - x, -0.3 + x])

    def fun(p, rows):
        r = p[:, 0, None] + p[:, 1, None] * x - Y[rows]
        return r, np.stack([np.ones_like(r), np.broadcast_to(x, r.shape)], axis=-1)

    lo, hi = np.tile([0.0, -5.0], (3, 1)), np.tile([5.0, 5.0], (3, 1))
    p, ok = solve(fun, np.ones((3, 6)), np.zeros((3, 2)), lo, hi)
    assert ok.all()
    assert p[0] == pytest.approx([1, 2], abs=1e-8) and p[1] == pytest.approx([0.5, -1], abs=1e-8)
    assert p[2, 0] == 0.0 and p[2, 1] == pytest.approx((x @ Y[2]) / (x @ x))  # the line through the origin
