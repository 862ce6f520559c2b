"""Approach 2, the IsoFLOP fit (analysis/fits/approach2.py): per budget the minimum of loss against log N, then power
laws across budgets, against data drawn from known laws (analysis.studies.synthetic).

Tolerances are stated in each test. They are about 4 standard deviations of the estimate over noise seeds, measured
on the same designs, so a pass means the fitter works and a failure means it does not.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.data.columns import FitError
from analysis.fits.approach2 import fit_approach2, isoflop_minimum
from analysis.studies.synthetic import CHINCHILLA, SECOND_TRUTH, isoflop_design, synthetic_runs

TRUTHS = [pytest.param(CHINCHILLA, id="chinchilla"), pytest.param(SECOND_TRUTH, id="second")]


@pytest.mark.parametrize("law", TRUTHS)
def test_approach2_parabola_recovers_true_exponent_from_isoflop_runs(law):
    """Same design as Approach 3 (centred, symmetric sampling), 0.5% noise, Chinchilla's parabola: |a - β/(α+β)|
    < 0.015 (over 12 seeds: bias 0.001, sd 0.0023) and a + b = 1 (C = 6ND)."""
    r = fit_approach2(synthetic_runs(law, noise=0.005, seed=0), estimator="parabola")
    assert abs(r.a - law.a) < 0.015
    assert r.a + r.b == pytest.approx(1.0, abs=1e-9)
    assert r.n_budgets_used == 9 and not r.per_budget["at_edge"].any()
    assert r.estimator == "parabola" and (r.per_budget["estimator"] == "parabola").all()


@pytest.mark.parametrize("law", TRUTHS)
def test_approach2_default_spline_recovers_true_exponent_over_seeds(law):
    """The default estimator ('auto') on budgets of 9 sizes is the GCV smoothing spline (chosen for its small bias on
    skewed, off-centre curves); on the same centred design it is unbiased but noisier than the parabola here: over
    12 seeds bias +0.010, sd 0.020, worst |error| 0.046 (measured when the default changed). Asserted against the
    truth: the mean of 6 seeds within 0.025 and every seed within 0.06; every budget's minimum by the spline."""
    rs = [fit_approach2(synthetic_runs(law, noise=0.005, seed=s)) for s in range(6)]
    errs = np.array([r.a - law.a for r in rs])
    assert abs(errs.mean()) < 0.025, errs
    assert np.abs(errs).max() < 0.06, errs
    assert all(r.estimator == "auto" and (r.per_budget["estimator"] == "spline").all() for r in rs)
    assert all(r.a + r.b == pytest.approx(1.0, abs=1e-9) for r in rs)


def test_approach2_noise_free_minima_sit_on_the_true_optimum_line():
    """Without noise the fitted exponent is the truth within 0.002, and each budget's parabola passes through its
    runs' losses within 1% (it is a parabola in ln N, not the law)."""
    df = synthetic_runs(CHINCHILLA, noise=0.0)
    r = fit_approach2(df)
    assert r.a == pytest.approx(CHINCHILLA.a, abs=2e-3)
    one = df[df["budget"] == 1e19]
    np.testing.assert_allclose(r.parabola(1e19, one["N"]), one["loss"], rtol=1e-2)
    assert list(r.per_budget.columns[:7]) == ["budget", "C", "N_opt", "D_opt", "loss_opt", "at_edge", "curvature"]
    assert r.compute_optimal(1e21).loss == pytest.approx(CHINCHILLA.compute_optimal(1e21).loss, rel=2e-3)


def test_approach2_keeps_and_flags_budgets_whose_minimum_is_at_the_edge_of_the_sampled_sizes():
    """A design centred 30x too small at the two largest budgets puts their minima off the end: both are kept, used
    and flagged at_edge, each with a warning naming the budget; none is dropped."""
    ok = isoflop_design((1e17, 1e18, 1e19), n_per_budget=7, span=4.0)
    off = isoflop_design((1e20, 1e21), n_per_budget=7, span=4.0, centre_offset=1 / 30)
    df = synthetic_runs(CHINCHILLA, design=pd.concat([ok, off], ignore_index=True), noise=0.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fit_approach2(df)
    assert [str(w.message).split(":")[1].strip() for w in caught] == ["budget 1e+20", "budget 1e+21"]
    assert all("kept and flagged" in str(w.message) for w in caught)
    assert r.n_budgets_used == 5 and r.per_budget["used"].all()
    assert list(r.per_budget["at_edge"]) == [False, False, False, True, True]
    assert r.n_at_edge == 2 and "2 at the edge" in repr(r)


def test_approach2_keeps_a_budget_with_too_few_sizes_in_its_table_with_the_reason():
    df = synthetic_runs(CHINCHILLA, noise=0.0)
    few = df[df["budget"] == 1e21].iloc[:2]
    df = pd.concat([df[df["budget"] != 1e21], few], ignore_index=True)
    with pytest.warns(UserWarning, match="budget 1e\\+21: 2 distinct N"):
        r = fit_approach2(df)
    row = r.per_budget.set_index("budget").loc[1e21]
    assert not row["used"] and "2 distinct N" in row["note"] and np.isnan(row["N_opt"])
    assert r.n_budgets_used == 8 and len(r.per_budget) == 9


def test_a_budget_whose_parabola_vertex_is_beyond_what_floats_hold_is_not_used_and_the_fit_goes_on():
    """A budget's runs on a nearly flat, rising parabola put its vertex ~1100 e-folds below its sizes (the shape a
    rough CPU study sweep drew: 4 runs 3.55 to 3.78 nats). exp of it is 0 (N_opt) and inf (D_opt): before, an
    OverflowError stopped the whole fit. Now that budget is not used, with the reason, the fit equals the fit without
    it, and the batched bootstrap refits apply the same rule (equal to fitting each resample)."""
    design = isoflop_design((1e18, 1e19, 1e20, 1e21), n_per_budget=5, span=4.0)  # 'auto': the parabola
    df = pd.concat([synthetic_runs(CHINCHILLA, design=design, noise=0.0)] * 4, ignore_index=True)  # 4 seeds a size
    flat = df[df["budget"] == 1e21].copy()
    x = np.log(flat["N"].to_numpy())
    flat["loss"] = 3.0 + 5.8e-5 * (x + 1100.0) ** 2 - 5.8e-5 * (x.min() + 1100.0) ** 2  # vertex at ln N = -1100
    both = pd.concat([df[df["budget"] != 1e21], flat], ignore_index=True)
    with pytest.warns(UserWarning, match="budget 1e\\+21: minimum at ln N = -1100, beyond what floats hold"):
        r = fit_approach2(both)
    row = r.per_budget.set_index("budget").loc[1e21]
    assert not row["used"] and np.isnan(row["N_opt"]) and "nearly flat" in row["note"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = fit_approach2(df[df["budget"] != 1e21])
        assert r.n_budgets_used == 3 and r.a == pytest.approx(alone.a, abs=1e-12)
        rng = np.random.default_rng(0)
        resamples = [rng.integers(0, len(both), len(both)) for _ in range(20)]
        batched = r.refit_resamples(both, resamples)
        assert batched is not None
        for idx, b in zip(resamples, batched):
            one = fit_approach2(both.iloc[idx].reset_index(drop=True), **r.warm_start())
            assert b.a == pytest.approx(one.a, abs=1e-9) and b.n_budgets_used == one.n_budgets_used
        assert not row["at_edge"] and np.isnan(row["loss_opt"]) and r.n_at_edge == 0  # no edge, no far "loss"
        # the other readers of a budget's minimum: the backtests observe nothing there, the figure joins its points
        from analysis.report.isoflop_plot import _parabolas
        from analysis.uncertainty.backtests import backtest, rolling_backtest
        from analysis.uncertainty.candidates import candidates

        bt = rolling_backtest(both, laws=candidates(names=["approach2"]))
        assert len(bt.table) and 1e21 not in set(bt.table["target_budget"]) and bt.n_pairs == len(bt.table)
        assert np.isfinite(bt.table["log_err_N"]).all()
        with pytest.raises(FitError, match="held-out budget 1e\\+21 has no usable minimum"):
            backtest(fit_approach2, both, holdout_budget=1e21)
        per, _ = _parabolas(both, both["budget"], "N", "D", "loss")
        assert list(per.set_index("budget")["used"]) == [True, True, True, False]


def test_approach2_records_its_estimator_and_rejects_an_unknown_one():
    df = synthetic_runs(CHINCHILLA, noise=0.0)
    assert fit_approach2(df, estimator="cubic").estimator == "cubic"
    with pytest.raises(FitError, match="estimator='quartic'; allowed: parabola, local_parabola, cubic, akima, spline"):
        fit_approach2(df, estimator="quartic")


def test_approach2_groups_by_rounded_flops_when_there_is_no_budget_column():
    df = synthetic_runs(CHINCHILLA, noise=0.0).drop(columns="budget")
    df["C"] *= 1 + 0.001 * np.sin(np.arange(len(df)))  # FLOPs of one budget differ slightly run to run
    r = fit_approach2(df)
    assert len(r.per_budget) == 9 and r.a == pytest.approx(CHINCHILLA.a, abs=3e-3)


def test_approach2_needs_at_least_two_budgets_for_its_power_laws():
    df = synthetic_runs(CHINCHILLA, budgets=(1e19,), noise=0.0)
    with pytest.raises(FitError, match="at least 2 are needed"):
        fit_approach2(df)


def test_isoflop_minimum_of_an_exact_parabola():
    N = np.exp(np.linspace(15, 19, 7))
    loss = 0.1 * (np.log(N) - 17.2) ** 2 + 3.0
    m = isoflop_minimum(N, 1e20 / (6 * N), loss, estimator="parabola")  # exact for the parabola
    assert m["N_opt"] == pytest.approx(math.exp(17.2)) and m["loss_opt"] == pytest.approx(3.0)
    assert m["D_opt"] == pytest.approx(1e20 / (6 * math.exp(17.2))) and not m["at_edge"]
    assert m["curvature"] == pytest.approx(0.2)
    s = isoflop_minimum(N, 1e20 / (6 * N), loss)  # the default on 7 sizes: the local parabola, exact here too
    assert s["estimator"] == "local_parabola" and not s["at_edge"]
    assert math.log(s["N_opt"]) == pytest.approx(17.2) and s["loss_opt"] == pytest.approx(3.0)
    N9 = np.exp(np.linspace(15, 19, 9))  # from 9 sizes the default is the smoothing spline: close, not exact
    s9 = isoflop_minimum(N9, 1e20 / (6 * N9), 0.1 * (np.log(N9) - 17.2) ** 2 + 3.0)
    assert s9["estimator"] == "spline" and not s9["at_edge"]
    assert math.log(s9["N_opt"]) == pytest.approx(17.2, abs=0.01) and s9["loss_opt"] == pytest.approx(3.0, abs=1e-3)
