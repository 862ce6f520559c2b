"""The IsoFLOP minima of many resamples at once (analysis/fits/minima_batched.py) against ``estimate_minimum`` one
resample at a time, and Approach 2's batched refit of budgets with many sizes (``refit_resamples(...,
estimators=...)``) against ``fit_approach2`` on the resampled rows, on simulated budgets and on the Porian sweeps."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar

from analysis.fits import minima_batched as mb
from analysis.fits.approach2 import fit_approach2, isoflop_groups
from analysis.fits.minima import estimate_minimum

PORIAN = Path(__file__).resolve().parents[3] / "data" / "porian2024"


def _draws(rng, n: int, R: int) -> np.ndarray:
    W = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(R)]).astype(float)
    W[0] = 1.0  # the budget itself
    return W


def test_fminbound_is_scipys_bounded_search_step_for_step():
    rng = np.random.default_rng(3)
    c, s = rng.uniform(-1, 3, 40), rng.uniform(0.2, 2, 40)
    a, b = np.full(40, -2.0), np.full(40, 4.0)

    def f(x, rows):
        return np.abs(x - c[rows]) ** 1.5 * s[rows] + np.sin(3 * x)

    x, fx, ok = mb.fminbound(f, a, b, 1e-5)
    for i in range(40):
        r = minimize_scalar(lambda t, i=i: f(np.array([t]), np.array([i]))[0], bounds=(-2, 4), method="bounded")
        assert ok[i] and x[i] == r.x and fx[i] == r.fun


@pytest.mark.parametrize("n", [6, 8, 11, 16])
def test_batched_minima_are_estimate_minimums_on_every_resample(n):
    rng = np.random.default_rng(n)
    x = np.sort(rng.uniform(15, 20, n))
    y = 3 + 0.2 * (x - 17.3) ** 2 + 0.04 * (x - 17.3) ** 3 + rng.normal(0, 0.03, n)
    W = _draws(rng, n, 150)
    W = W[(W > 0).sum(1) >= 3]  # a minimum needs 3 sizes
    xs, ls, ok = mb.spline(x, y, W)
    xl, ll = mb.local_parabola(x, y, W)
    distinct = (W > 0).sum(1)
    for r in range(len(W)):
        xx, yy = np.repeat(x, W[r].astype(int)), np.repeat(y, W[r].astype(int))
        if distinct[r] >= 5:
            m = estimate_minimum(xx, yy, "spline")
            assert ok[r]
            # the GCV search may keep another point within its 1e-5 tolerance where its criterion ties to rounding
            assert xs[r] == pytest.approx(m.log_n, abs=1e-6) and ls[r] == pytest.approx(m.loss, abs=1e-9)
        m = estimate_minimum(xx, yy, "local_parabola")
        assert xl[r] == pytest.approx(m.log_n, abs=1e-9) and ll[r] == pytest.approx(m.loss, abs=1e-9)


def test_a_window_that_opens_downward_gives_the_lowest_size():
    x = np.arange(10.0)
    y = -((x - 4.5) ** 2)  # every window's parabola opens downward
    y[0] -= 100  # the lowest run, outside the first window
    W = np.ones((1, 10))
    xl, ll = mb.local_parabola(x, y, W)
    m = estimate_minimum(x, y, "local_parabola")
    assert (xl[0], ll[0]) == (m.log_n, m.loss) == (0.0, y[0])


@pytest.mark.parametrize("name", ["rw_base-long-kaplan", "rw_tuned-short-const"])
def test_approach2_refits_of_many_sizes_a_budget_are_fit_approach2s(name):
    runs = pd.read_csv(PORIAN / f"{name}.csv")  # 6-11 sizes a budget: local parabola and spline minima
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_approach2(runs)
        est = fit.warm_start()["estimator"]
        assert {"spline", "local_parabola"} <= set(est.values())
        assert fit.refit_resamples(runs, [np.arange(len(runs))]) is None  # without estimators: one at a time
        rng = np.random.default_rng(0)
        g = isoflop_groups(runs).to_numpy()
        idxs = [np.arange(len(runs))] + [
            np.concatenate([rng.choice(np.flatnonzero(g == b), (g == b).sum()) for b in np.unique(g)])
            for _ in range(25)
        ]
        many = fit.refit_resamples(runs, idxs, estimators=est)
        one = [fit_approach2(runs.iloc[i], estimator=est) for i in idxs]
    assert many is not None and len(many) == len(one)
    for m, o in zip(many, one):
        assert m.a == pytest.approx(o.a, abs=1e-6) and m.b == pytest.approx(o.b, abs=1e-6)
        assert m.n_opt.predict(1e21) == pytest.approx(o.n_opt.predict(1e21), rel=1e-6)
        # L_opt(C) through the minima, a nonlinear fit batched by Levenberg-Marquardt: as close as the bootstrap's
        assert m.loss_law.predict(1e21) == pytest.approx(o.loss_law.predict(1e21), rel=1e-4)
        assert m.loss_law.alpha == pytest.approx(o.loss_law.alpha, rel=1e-4)
