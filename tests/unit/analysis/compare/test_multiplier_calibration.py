"""The compute multiplier's per-comparison calibration (analysis/compare/calibration.py): its closed-form M against
compare's grid M, the coverage / width / widening bookkeeping on arrays whose answer is known, and one small
simulated pair end to end (known multiplier, cache)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.compare.calibration import (
    _score,
    _widen,
    calibrate_multiplier,
    choose,
    log_m,
    widening,
)
from analysis.compare.multiplier import log_multiplier, multiplier_samples
from analysis.compare.study import law_with_exponents, law_with_multiplier
from analysis.fits.approach3 import fit_approach3
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs


def _theta(law):
    return np.array([np.log(law.E), np.log(law.A), np.log(law.B), law.alpha, law.beta])


def test_the_closed_form_multiplier_is_compares_grid_multiplier():
    b = law_with_exponents(CHINCHILLA, 0.05, 1e18, "b")
    grid = np.geomspace(1e14, 1e26, 3000)
    at = np.searchsorted(grid, [1e17, 1e19, 1e21])
    want = log_multiplier(grid, CHINCHILLA.compute_optimal(grid).loss, b.compute_optimal(grid).loss, at)
    got = log_m(_theta(CHINCHILLA), _theta(b), 1.0, 1.0, grid[at])
    np.testing.assert_allclose(got, want, atol=5e-3)
    # a constant multiplier whatever the two sweeps' FLOP-convention factors; B below A's floor: infinite
    m = log_m(_theta(CHINCHILLA), _theta(law_with_multiplier(CHINCHILLA, 3.0, "b")), 1.0, 1.0, [1e18, 1e22])
    np.testing.assert_allclose(np.exp(m), 3.0, rtol=1e-9)
    low = _theta(CHINCHILLA) - np.array([0.3, 0, 0, 0, 0])
    assert log_m(_theta(CHINCHILLA), low, 1.0, 1.0, [1e30])[0] == np.inf


def test_coverage_width_and_widening_on_errors_of_known_spread():
    """Estimates 0, truths drawn N(0, 1), intervals ±1: 68% coverage, width 2; widened by the 90% quantile of |z|
    (1.645) they cover exactly 90% and are 3.29 wide. Errors in which side of the interval is read, or in the
    median width, fail this."""
    rng = np.random.default_rng(0)
    S = 4000
    truth = rng.standard_normal((S, 1))
    est, lo, hi = np.zeros((S, 1)), -np.ones((S, 1)), np.ones((S, 1))
    # score takes one truth per column (the laws' M); shift the interval instead of the truth
    cov, wid, n = _score(lo - truth, hi - truth, np.zeros(1))
    assert cov[0] == pytest.approx(0.683, abs=0.02) and wid[0] == pytest.approx(2.0) and n[0] == S
    f = widening(est - truth, lo - truth, hi - truth, np.zeros(1), 0.9)
    assert f[0] == pytest.approx(1.645, abs=0.06)
    wlo, whi = _widen(est - truth, lo - truth, hi - truth, f)
    cov, wid, _ = _score(wlo, whi, np.zeros(1))
    assert cov[0] == pytest.approx(0.9, abs=1 / S) and wid[0] == pytest.approx(2 * f[0])
    # an asymmetric interval is widened on the side the truth lies: [-0.1, +2] misses truths below -0.1
    f2 = widening(est - truth, lo * 0.1 - truth, hi * 2 - truth, np.zeros(1), 0.9)
    wlo, whi = _widen(est - truth, lo * 0.1 - truth, hi * 2 - truth, f2)
    assert _score(wlo, whi, np.zeros(1))[0][0] == pytest.approx(0.9, abs=1 / S)
    # an infinite end stays infinite, and an infinite truth is covered by an open side
    assert _widen(np.zeros(1), np.array([-1.0]), np.array([np.inf]), np.array([0.5]))[1][0] == np.inf
    assert _score(np.array([[0.0], [0.0]]), np.array([[np.inf], [1.0]]), np.array([np.inf]))[0][0] == 0.5


def test_choose_carries_the_narrowest_method_in_band_else_the_widened_one():
    rows = lambda cov_sep, w_sep, cov_sh, w_sh: pd.DataFrame(  # noqa: E731
        [
            ("separate", 1e20, True, 2.0, cov_sep, w_sep, 100),
            ("shared", 1e20, True, 2.0, cov_sh, w_sh, 100),
            ("separate-widened", 1e20, True, 2.0, 0.9, 1.0, 100),
        ],
        columns=["method", "C", "target", "M_true", "coverage", "median_width", "n"],
    )
    assert choose(rows(0.91, 1.0, 0.89, 0.5), 0.9)[0] == "shared"
    assert choose(rows(0.91, 1.0, 0.89, 0.5), 0.9, use_shared=False)[0] == "separate"
    assert choose(rows(0.97, 1.0, 0.80, 0.5), 0.9)[0] == "separate-widened"


def test_a_small_simulated_pair_with_a_known_multiplier(tmp_path):
    """A pair 2x apart: the simulation's true M is 2 everywhere, the widened interval covers 90% of the simulated
    pairs at every compute value, the separate fits' bootstrap is reported beside it, and the second call reads the
    cache."""
    b = law_with_multiplier(CHINCHILLA, 2.0, "b")
    runs = [
        synthetic_runs(law, budgets=(1e17, 1e18, 1e19), n_per_budget=5, noise=0.01, seed=s)
        for law, s in ((CHINCHILLA, 1), (b, 2))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [fit_approach3(r, grid="small") for r in runs]
    C = np.array([1e17, 1e19, 1e20])
    kw = dict(level=0.9, n_sims=20, n_resamples=10, cache_dir=tmp_path)
    cal = calibrate_multiplier(*runs, *fits, C, [1e20], **kw)
    t = cal.table
    assert set(t["method"]) == {"separate", "separate-widened"}  # no shared fit given: not a candidate
    ratios = [float(np.median(r["C"] / (6 * r["N"] * r["D"]))) for r in runs]
    truth = np.exp(log_m(np.asarray(fits[0].theta), np.asarray(fits[1].theta), *ratios, C))
    np.testing.assert_allclose(cal.truth_M, truth, rtol=1e-9)  # the simulation's truth: the fitted laws' M
    np.testing.assert_allclose(cal.truth_M[:2], 2.0, rtol=0.2)  # in range: near the M they were drawn with
    w = t[t["method"] == "separate-widened"]
    assert ((w["coverage"] >= 0.9) & (w["coverage"] <= 0.9 + 1 / 20 + 1e-9)).all() and (w["n"] == 20).all()
    assert cal.carried in ("separate", "separate-widened") and len(cal.factors["separate-widened"]) == 3
    again = calibrate_multiplier(*runs, *fits, C, [1e20], **kw)
    assert again.from_cache and again.carried == cal.carried
    pd.testing.assert_frame_equal(again.table, t, check_dtype=False)


def test_the_simulated_shared_law_multiplier_counts_the_flop_conventions():
    """One law, B's FLOP convention counting 1.3x A's: the simulation's true M is 1 / 1.3, and the shared law's
    estimate of it (ln M in N·D space plus ln(r_A / r_B)) sits on it, so its interval covers."""
    from analysis.compare.shared_exponent import shared_exponent_test, shared_vector

    runs = [synthetic_runs(CHINCHILLA, budgets=(1e17, 1e18, 1e19), n_per_budget=5, noise=0.003, seed=s) for s in (1, 2)]
    runs[1]["C"], runs[1]["budget"] = runs[1]["C"] * 1.3, runs[1]["budget"] * 1.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [fit_approach3(r, grid="small") for r in runs]
        t = shared_exponent_test(runs, [f.log_params for f in fits])
    C = np.array([1e17, 1e19])
    cal = calibrate_multiplier(
        *runs, *fits, C, [1e19], shared_x0=shared_vector(t), shared_scale=t.scale, n_sims=20, n_resamples=10
    )
    np.testing.assert_allclose(cal.truth_M, 1 / 1.3, rtol=0.1)
    s = cal.table[cal.table["method"] == "shared"]
    assert (s["coverage"] >= 0.5).all()  # 0.00 when the shared estimate leaves out ln(r_A / r_B)


def test_the_widening_factor_is_applied_to_an_interval_over_as_many_resamples_as_it_was_fitted_on():
    """The factor is fitted to intervals over R resamples; the real pair's widened interval is its interval over
    its first R resamples (same percentile rule) widened, not compare's n_boot interval (wider when n_boot > R)."""
    import dataclasses

    from analysis.compare import compare
    from analysis.compare.calibration import _widen, carried_interval, matched_interval

    b = law_with_multiplier(CHINCHILLA, 2.0, "b")
    runs = [
        synthetic_runs(law, budgets=(1e17, 1e18, 1e19), n_per_budget=5, noise=0.01, seed=s)
        for law, s in ((CHINCHILLA, 1), (b, 2))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            *runs,
            n_boot=60,
            grid="small",
            law="approach3",
            targets=[1e20],
            calibrate_sims=20,
            calibrate_resamples=10,
            shared_test=False,
        )
    fa, fb = cmp.frontiers["approach3"]
    tab, cal = cmp.pairs["approach3"][0].table, cmp.calibrations[0]
    # over all 60 resamples the rule is compare's own; over the first 10 it is another (here narrower) interval
    lo60, hi60 = matched_interval(fa, fb, tab["C"], 60, cmp.level)
    np.testing.assert_allclose(lo60, tab["M_lo"], rtol=1e-12)
    np.testing.assert_allclose(hi60, tab["M_hi"], rtol=1e-12)
    lo10, hi10 = matched_interval(fa, fb, tab["C"], 10, cmp.level)
    s = multiplier_samples(fa.grid, fa.boot_loss[:10], fb.boot_loss[:10], np.searchsorted(fa.grid, tab["C"]))
    np.testing.assert_allclose(np.log(lo10), np.nanquantile(s, 0.05, axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.log(hi10), np.nanquantile(s, 0.95, axis=0), rtol=1e-12)
    assert not np.allclose(lo10, tab["M_lo"])
    widened = dataclasses.replace(cal, carried="separate-widened", factors={"separate-widened": [1.5] * len(tab)})
    M, lo, hi = carried_interval(widened, tab, fa, fb, cmp.level)
    w_lo, w_hi = _widen(np.log(tab["M"]), np.log(lo10), np.log(hi10), np.full(len(tab), 1.5))
    np.testing.assert_allclose(lo, np.exp(w_lo), rtol=1e-12)
    np.testing.assert_allclose(hi, np.exp(w_hi), rtol=1e-12)
    # an unwidened method keeps compare's interval
    plain = dataclasses.replace(cal, carried="separate")
    np.testing.assert_allclose(carried_interval(plain, tab, fa, fb, cmp.level)[1], tab["M_lo"], rtol=1e-12)
    # where nothing is scaled (factor 1, or an infinite estimate), compare's interval over all its resamples is
    # carried, not the noisier one over the first 10 (which it once was: [32.3, inf] for [4.44, inf] on a real pair)
    f = np.full(len(tab), 1.5)
    f[0] = 1.0
    mixed = dataclasses.replace(cal, carried="separate-widened", factors={"separate-widened": list(f)})
    tab_inf = tab.copy()
    tab_inf.loc[tab_inf.index[1], "M"] = np.inf
    _, lo, hi = carried_interval(mixed, tab_inf, fa, fb, cmp.level)
    np.testing.assert_allclose(lo[:2], tab["M_lo"].to_numpy()[:2], rtol=1e-12)
    np.testing.assert_allclose(hi[:2], tab["M_hi"].to_numpy()[:2], rtol=1e-12)
    np.testing.assert_allclose(lo[2:], np.exp(w_lo[2:]), rtol=1e-12)
