"""Approach 2 power-law intervals that resample budgets and runs (analysis.uncertainty.intervals), and the
calibration study's machinery (analysis.studies.accuracy)."""

import math
import warnings

import numpy as np
import pytest

from analysis.fits.minima import estimate_minimum
from analysis.studies.accuracy import CALIBRATION, LAWS, calibration_study, coverage_table
from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name


@pytest.fixture(scope="module")
def sweep():
    return CALIBRATION.draw(np.random.default_rng(5))


def test_point_estimate_is_the_line_through_every_budgets_minimum(sweep):
    r = isoflop_power_law_interval(sweep, [1e21], n_resamples=20, seed=0)
    lc, ln = [], []
    for _, g in sweep.groupby("budget"):
        lc.append(np.log(g["C"]).mean())
        ln.append(estimate_minimum(np.log(g["N"]), g["loss"]).log_n)
    a, c = np.polyfit(lc, ln, 1)
    assert r.a == pytest.approx(a, rel=1e-12)
    assert r.n_opt(1e21) == pytest.approx(math.exp(c + a * math.log(1e21)), rel=1e-10)
    assert r.a == pytest.approx(LAWS["chinchilla"].a, abs=0.06)


def test_resampling_budgets_as_well_as_runs_widens_the_extrapolated_interval(sweep):
    width, bounds = {}, {}
    for scheme in ("runs", "budgets", "hierarchical"):
        # the spline's minima (the schemes' behaviour was measured with it; with 7 sizes a budget 'auto' would take
        # the local parabola, whose run resamples with 3-4 distinct sizes swing more than whole budgets do)
        r = isoflop_power_law_interval(sweep, [1e22], method="spline", scheme=scheme, n_resamples=40, seed=1)
        lo, hi = bounds[scheme] = r.interval(n_opt_name(1e22))
        assert lo < r.n_opt(1e22) < hi and r.n_failed == 0
        width[scheme] = math.log(hi / lo)
    assert width["hierarchical"] > width["runs"]
    again = isoflop_power_law_interval(sweep, [1e22], method="spline", scheme="hierarchical", n_resamples=40, seed=1)
    assert again.interval(n_opt_name(1e22)) == bounds["hierarchical"]  # reproducible by seed


def test_t_interval_is_the_least_squares_lines_own(sweep):
    from scipy import stats

    r = isoflop_power_law_interval(sweep, [1e21, 1e23], scheme="t")
    lc = [np.log(g["C"]).mean() for _, g in sweep.groupby("budget")]
    ln = [estimate_minimum(np.log(g["N"]), g["loss"]).log_n for _, g in sweep.groupby("budget")]
    fit = stats.linregress(lc, ln)
    half = stats.t.ppf(0.95, len(lc) - 2) * fit.stderr
    assert r.interval("a") == pytest.approx((fit.slope - half, fit.slope + half), rel=1e-9)
    w21, w23 = (math.log(hi / lo) for lo, hi in (r.interval(n_opt_name(1e21)), r.interval(n_opt_name(1e23))))
    assert 0 < w21 < w23  # wider the further it extrapolates
    assert r.samples.empty and r.scheme == "t"


def test_interval_errors_name_the_argument(sweep):
    with pytest.raises(ValueError, match="scheme='pairs'; allowed: t, runs, budgets, hierarchical"):
        isoflop_power_law_interval(sweep, [1e21], scheme="pairs")
    with pytest.raises(ValueError, match="budget_col='compute' is not a column"):
        isoflop_power_law_interval(sweep, [1e21], budget_col="compute")


def test_calibration_study_rows_and_coverage_table():
    methods = ("a2-runs", "a2-spline-budgets")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = calibration_study(n_sweeps=2, n_resamples=10, methods=methods)
    assert len(d) == 2 * 2 * 2  # sweeps x methods x (10x, 100x)
    assert set(d["factor"]) == {10.0, 100.0} and set(d["method"]) == set(methods)
    assert np.allclose(
        d["truth"], [LAWS["chinchilla"].compute_optimal(CALIBRATION.c_hi * f).N_opt for f in d["factor"]]
    )
    assert (d["lo"] < d["hi"]).all()
    t = coverage_table(d)
    assert len(t) == 4 and t["coverage"].between(0, 1).all()
    assert np.allclose(t["coverage"] + t["below"] + t["above"], 1.0)
