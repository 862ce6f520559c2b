"""Approach 2's compute multiplier calibrated on the pair at hand (analysis/compare/calibration_approach2.py): its
closed-form M against compare's grid M, a small simulated pair with a known multiplier (coverage bookkeeping, cache),
a design of many sizes a budget (spline and local parabola minima, batched) and the refusal of an estimator that is
not batched, and the carried interval in compare's table when Approach 2 is the
primary law."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.compare.calibration import log_m
from analysis.compare.calibration_approach2 import _stratified, calibrate_multiplier_approach2, log_m_approach2
from analysis.compare.multiplier import log_multiplier
from analysis.compare.study import law_with_multiplier
from analysis.fits.approach2 import fit_approach2
from analysis.fits.approach3 import fit_approach3
from analysis.laws.forms import OffsetPowerLaw
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs

BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)


def _pair(n_per_budget: int = 5):
    b = law_with_multiplier(CHINCHILLA, 2.0, "b")
    runs = [
        synthetic_runs(law, budgets=BUDGETS, n_per_budget=n_per_budget, noise=0.01, seed=s)
        for law, s in ((CHINCHILLA, 1), (b, 2))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return runs, [fit_approach3(r, grid="small") for r in runs], [fit_approach2(r) for r in runs]


def test_the_closed_form_multiplier_is_compares_grid_multiplier():
    a, b = OffsetPowerLaw(E=1.8, x_c=1e10, alpha=0.15), OffsetPowerLaw(E=1.7, x_c=3e9, alpha=0.12)
    grid = np.geomspace(1e14, 1e26, 4000)
    at = np.searchsorted(grid, [1e17, 1e19, 1e21])
    want = log_multiplier(grid, a.predict(grid), b.predict(grid), at)
    row = lambda law: np.array([law.E, np.log(law.x_c), law.alpha])  # noqa: E731
    got = log_m_approach2(row(a), row(b), grid[at])
    np.testing.assert_allclose(got, want, atol=5e-3)
    assert log_m_approach2(row(a), row(b), [1e40])[0] == np.inf  # B's loss below A's floor
    assert np.isnan(log_m_approach2(np.full(3, np.nan), row(b), [1e17])[0])  # a failed refit


def test_a_small_simulated_pair_with_a_known_multiplier(tmp_path):
    """A pair 2x apart: the truth is the Approach 3 laws' M (near 2 in range), the widened interval covers at least
    90% of the simulated pairs at every compute value (exactly where it is widened), the plain one and the median
    bias are reported, and the second call reads the cache (its key names the law: Approach 3's calibration of the
    same pair is another file)."""
    runs, f3, f2 = _pair()
    C = np.array([1e17, 1e19, 1e20])
    kw = dict(level=0.9, n_sims=20, n_resamples=10, cache_dir=tmp_path)
    cal = calibrate_multiplier_approach2(*runs, *f3, *f2, C, [1e20], **kw)
    assert cal.law == "approach2" and set(cal.table["method"]) == {"separate", "separate-widened"}
    truth = np.exp(log_m(np.asarray(f3[0].theta), np.asarray(f3[1].theta), 1.0, 1.0, C))
    np.testing.assert_allclose(cal.truth_M, truth, rtol=1e-9)
    np.testing.assert_allclose(cal.truth_M[:2], 2.0, rtol=0.2)
    # widened by max(1, the factor the simulation asks for): exactly 90% (18 of 20) where that factor is >= 1
    w = cal.table[cal.table["method"] == "separate-widened"]
    need, f = np.array(cal.factors["needed"]), np.array(cal.factors["separate-widened"])
    np.testing.assert_allclose(f, np.maximum(need, 1.0))
    exact = w["coverage"].to_numpy()[need >= 1]
    assert (w["coverage"] >= 0.9).all() and ((exact >= 0.9) & (exact <= 0.9 + 1 / 20 + 1e-9)).all()
    assert (w["n"] == 20).all()
    assert len(cal.bias) == 3 and all(abs(b) < 1.0 for b in cal.bias[:2])
    assert cal.carried in ("separate", "separate-widened") and len(f) == 3
    again = calibrate_multiplier_approach2(*runs, *f3, *f2, C, [1e20], **kw)
    assert again.from_cache and again.law == "approach2" and again.bias == pytest.approx(cal.bias)
    pd.testing.assert_frame_equal(again.table, cal.table, check_dtype=False)
    assert len(list(tmp_path.glob("multiplier-calibration-*.json"))) == 1


def test_a_design_of_many_sizes_a_budget_is_calibrated_with_the_minima_its_sweeps_resolve(tmp_path):
    """9 sizes a budget: "auto" resolves the spline (before, refused as not batched); each simulated sweep's refits
    are those of fit_approach2 on its kept runs and resamples, with the estimators those kept runs resolve."""
    from analysis.compare.calibration_approach2 import refit_sweeps, sweep_estimators
    from analysis.fits.approach2 import isoflop_groups

    runs, f3, f2 = _pair(n_per_budget=9)
    C = np.array([1e17, 1e19, 1e20])
    cal = calibrate_multiplier_approach2(*runs, *f3, *f2, C, [1e20], n_sims=20, n_resamples=10, cache_dir=tmp_path)
    assert cal.law == "approach2" and cal.carried in ("separate", "separate-widened")
    assert (cal.table["n"] >= 18).all() and np.isfinite(cal.table["coverage"]).all()
    # one simulated sweep's refits against fit_approach2 one resample at a time (a budget lost to the gate included)
    r = runs[0].reset_index(drop=True)
    g = isoflop_groups(r).to_numpy(float)
    kept = np.ones(len(r), bool)
    kept[np.flatnonzero(g == g[0])[:2]] = False  # 7 sizes left: that budget's minimum by the local parabola
    est = sweep_estimators(f2[0], g, r["N"].to_numpy(float), kept)
    assert est[g[0]] == "local_parabola" and sorted(set(est.values())) == ["local_parabola", "spline"]
    losses = r["loss"].to_numpy(float)[None, :] * np.exp(np.random.default_rng(0).normal(0, 0.01, (1, len(r))))
    rows = refit_sweeps(r, f2[0], losses, kept[None, :], 6, np.random.default_rng(5))
    idx = [np.flatnonzero(kept)] + _stratified(g, kept, 6, np.random.default_rng(5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = [fit_approach2(r.assign(loss=losses[0]).iloc[i], estimator=est).loss_law for i in idx]
    lc = np.log(1e19)
    np.testing.assert_allclose(
        rows[0, :, 0] + np.exp(rows[0, :, 2] * (rows[0, :, 1] - lc)), [law.predict(1e19) for law in one], rtol=1e-4
    )


def test_an_estimator_that_is_not_batched_is_refused_before_any_compute():
    runs, f3, _ = _pair(n_per_budget=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f2 = [fit_approach2(r, estimator="cubic") for r in runs]
    with pytest.raises(ValueError, match="not batched"):
        calibrate_multiplier_approach2(*runs, *f3, *f2, [1e17, 1e20], [1e20], n_sims=20, n_resamples=10)


def test_compare_carries_approach2s_calibrated_interval_when_it_is_the_primary_law():
    from analysis.compare import compare
    from analysis.compare.calibration import carried_interval
    from analysis.compare.report import markdown

    runs, _, _ = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            *runs,
            n_boot=40,
            grid="small",
            law="approach2",
            targets=[1e20],
            calibrate_sims=20,
            calibrate_resamples=10,
            shared_test=False,
        )
    cals = {c.law: c for c in cmp.calibrations}
    assert set(cals) == {"approach2", "approach3"}
    cal, tab = cals["approach2"], cmp.pairs["approach2"][0].table
    assert cmp.carried == cal.carried
    # the truth: compare's own M of the Approach 3 frontiers (the runs' FLOPs as loaded), at the same compute values
    a3 = cmp.pairs["approach3"][0].table
    np.testing.assert_allclose(cal.C, a3["C"], rtol=1e-12)
    np.testing.assert_allclose(cal.truth_M, a3["M"], rtol=1e-9)
    fa, fb = cmp.frontiers["approach2"]
    M, lo, hi = carried_interval(cal, tab, fa, fb, cmp.level)
    np.testing.assert_allclose(tab["M_carried_lo"], lo, rtol=1e-12)
    np.testing.assert_allclose(tab["M_carried_hi"], hi, rtol=1e-12)
    np.testing.assert_allclose(tab["M_cal_lo"], lo, rtol=1e-12)
    # Approach 3's table shows its own calibrated interval but carries nothing of it
    np.testing.assert_allclose(a3["M_carried_lo"], a3["M_lo"], rtol=1e-12)
    text = markdown(cmp, figure_name=None)
    assert "median ln(M_est / M_true)" in text and "The primary law's M (Approach 2" in text


def test_an_infinite_estimate_keeps_its_interval_and_is_scored_as_it_is():
    """M = ∞ (B's loss below A's fitted floor) has no centre to scale about: the widened interval is the interval
    itself (scaling about the ±1e6 stand-in moved the lower end from 4 to 30-600 on a real pair), and the factor
    counts such a pair as covered at any f when the interval holds the truth, never otherwise."""
    from analysis.compare.calibration import _score, _widen, widening

    lo, hi = _widen(np.array([np.inf]), np.log([4.0]), np.array([np.inf]), np.array([0.999995]))
    np.testing.assert_allclose(lo, np.log(4.0))
    assert hi[0] == np.inf
    # ten pairs with an infinite estimate: 7 intervals hold the truth (ln M = 3), 3 start above it; one finite pair
    est = np.array([np.inf] * 10 + [0.0])[:, None]
    lo_ = np.array([1.0] * 7 + [5.0] * 3 + [-1.0])[:, None]
    hi_ = np.full((11, 1), np.inf)
    hi_[-1] = 1.0
    f = widening(est, lo_, hi_, np.array([3.0]), 0.5)
    assert f[0] == 0.0  # the median pair is covered whatever the factor
    assert widening(est, lo_, hi_, np.array([3.0]), 0.9)[0] >= 1e6  # no factor reaches 90%: 3 of 11 never hold it
    wlo, whi = _widen(est, lo_, hi_, np.full(1, 2.0))
    np.testing.assert_allclose(wlo[:10, 0], lo_[:10, 0])
    assert _score(wlo, whi, np.array([3.0]))[0][0] == pytest.approx(7 / 11)
