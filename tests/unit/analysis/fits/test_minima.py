"""IsoFLOP minimum estimators (analysis.fits.minima) and the synthetic study that chose the default."""

import math
import warnings

import numpy as np
import pytest

from analysis.fits.minima import (
    DEFAULT_ESTIMATOR,
    ESTIMATORS,
    IsoflopMinimum,
    bootstrap_minimum,
    estimate_minimum,
    lowest_run,
    resolve,
)
from analysis.laws.published import CHINCHILLA_APPROACH3
from analysis.studies.accuracy import LAWS, STEEP, Setting, estimator_study


def isoflop_curve(law, C, centre_factor=1.0, span=6.0, n=9):
    """Sizes log-spaced around centre_factor x the law's N_opt(C), and the exact loss at D = C/(6N)."""
    n_opt = law.compute_optimal(C).N_opt
    N = np.geomspace(n_opt * centre_factor / span, n_opt * centre_factor * span, n)
    return np.log(N), law.predict(N, C / (6 * N)), math.log(n_opt)


def test_parabola_is_the_vertex_of_the_least_squares_quadratic():
    """The classic estimator (the one Approach 2 used before the study): vertex of a quadratic in ln N."""
    rng = np.random.default_rng(3)
    x, y, _ = isoflop_curve(CHINCHILLA_APPROACH3, 1e20, centre_factor=1.3)
    y = y * np.exp(0.004 * rng.standard_normal(y.size))
    p2, p1, p0 = np.polyfit(x, y, 2)
    vertex = -p1 / (2 * p2)
    new = estimate_minimum(x, y, "parabola")
    assert x.min() < vertex < x.max() and not new.at_edge
    assert new.log_n == pytest.approx(vertex, abs=1e-12)
    assert new.loss == pytest.approx(p0 - p1**2 / (4 * p2), rel=1e-12)
    assert new.curvature == pytest.approx(2 * p2, rel=1e-12)
    assert (new.method, new.n_points) == ("parabola", 9)


@pytest.mark.parametrize("method", ESTIMATORS)
def test_every_estimator_finds_a_centred_noise_free_minimum(method):
    x, y, truth = isoflop_curve(CHINCHILLA_APPROACH3, 1e21, span=4.0, n=11)
    m = estimate_minimum(x, y, method)
    assert isinstance(m, IsoflopMinimum) and m.method == resolve(method, 11) and not m.at_edge
    assert m.log_n == pytest.approx(truth, abs=0.05)
    assert m.loss == pytest.approx(CHINCHILLA_APPROACH3.compute_optimal(1e21).loss, abs=2e-4)
    assert m.curvature > 0


def test_off_centre_asymmetric_curve_biases_the_parabola_not_the_spline():
    # alpha/beta = 2.4: a strongly skewed curve, sampled with its minimum well left of centre
    x, y, truth = isoflop_curve(STEEP, 1e20, centre_factor=2.5, span=10.0)
    err = {m: abs(estimate_minimum(x, y, m).log_n - truth) for m in ("parabola", "cubic", "akima", "spline")}
    assert err["parabola"] > 0.08  # N_opt 12% too large, and by an amount that moves with the sampling
    assert err["spline"] < 0.03 and err["akima"] < 0.03 and err["cubic"] < err["parabola"]


def test_edge_minimum_is_kept_and_flagged():
    x = np.log(np.geomspace(1e6, 1e8, 7))
    y = 3.0 + 0.05 * (x - x.max() - 1.0) ** 2  # true minimum one unit of ln N beyond the largest size
    for method in ESTIMATORS:
        m = estimate_minimum(x, y, method)
        assert m.at_edge, method
    assert estimate_minimum(x, y, "parabola").log_n == pytest.approx(x.max() + 1.0)  # the vertex, extrapolated
    assert estimate_minimum(x, y, "spline").log_n == pytest.approx(x.max())  # clamped to the sampled range


def test_a_curve_with_no_minimum_falls_back_to_the_lowest_run():
    x = np.log([1e6, 2e6, 4e6, 8e6, 1.6e7])
    y = np.array([3.0, 2.9, 2.85, 2.9, 3.0]) * -1 + 6  # concave: peak in the middle
    m = estimate_minimum(x, y, "parabola")
    assert m.log_n in (x[0], x[-1]) and m.at_edge and math.isnan(m.curvature)


def test_repeated_seeds_at_one_size_are_averaged_by_the_interpolants():
    x, y, truth = isoflop_curve(CHINCHILLA_APPROACH3, 1e20, n=7)
    xx, yy = np.concatenate([x, x]), np.concatenate([y + 0.01, y - 0.01])
    for method, tol in (("akima", 1e-9), ("spline", 1e-4)):  # the spline's smoothing is re-chosen (GCV)
        assert estimate_minimum(xx, yy, method).log_n == pytest.approx(estimate_minimum(x, y, method).log_n, abs=tol)
        assert estimate_minimum(xx, yy, method).n_points == 14


def test_too_few_sizes_for_the_method_falls_back_to_the_parabola_and_says_so():
    x, y, truth = isoflop_curve(CHINCHILLA_APPROACH3, 1e20, n=4)
    m = estimate_minimum(x, y, "spline")
    assert m.method == "parabola" and m.n_points == 4
    assert m.log_n == estimate_minimum(x, y, "parabola").log_n


def test_bad_input_errors_name_the_problem():
    x, y, _ = isoflop_curve(CHINCHILLA_APPROACH3, 1e20, n=4)
    with pytest.raises(ValueError, match="method='quartic'; allowed: parabola"):
        estimate_minimum(x, y, "quartic")
    with pytest.raises(ValueError, match="at least 3 distinct N, got 2"):
        estimate_minimum(x[:2], y[:2], "parabola")
    with pytest.raises(ValueError, match="log_n has 4 values and loss 3"):
        estimate_minimum(x, y[:3], "parabola")
    with pytest.raises(ValueError, match="non-finite"):
        estimate_minimum(x, np.r_[y[:3], np.nan], "parabola")


def test_within_budget_bootstrap_covers_the_truth_and_is_reproducible():
    rng = np.random.default_rng(0)
    x, y, truth = isoflop_curve(CHINCHILLA_APPROACH3, 1e20, n=9)
    y = y * np.exp(0.003 * rng.standard_normal(y.size))
    b = bootstrap_minimum(x, y, DEFAULT_ESTIMATOR, n_resamples=100, seed=1)
    assert b.lo < b.estimate.log_n < b.hi and b.lo < truth < b.hi
    assert b.hi - b.lo < 1.5
    assert np.array_equal(
        b.samples, bootstrap_minimum(x, y, DEFAULT_ESTIMATOR, n_resamples=100, seed=1).samples, equal_nan=True
    )
    assert b.n_failed == int(np.isnan(b.samples).sum())


def test_study_measures_the_parabolas_bias_and_the_defaults_lack_of_it():
    # noise-free, so two replicates are exact; the steep law sampled off centre with a drifting guess
    s = Setting("steep x2 drift", "steep", noise=0.0, drift=0.15, offset=2.0, span=8.0)
    sweep = s.draw(np.random.default_rng(0))
    assert sweep.groupby("budget").size().eq(9).all() and np.allclose(sweep["C"], sweep["budget"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = estimator_study([s], methods=("parabola", DEFAULT_ESTIMATOR), replicates=2).set_index("estimator")
    assert t.loc["parabola", "a_true"] == pytest.approx(LAWS["steep"].a)
    assert abs(t.loc["parabola", "bias"]) > 0.015
    assert abs(t.loc[DEFAULT_ESTIMATOR, "bias"]) < 0.005


def test_auto_takes_the_local_parabola_under_nine_sizes_and_the_spline_from_nine():
    for n, want in ((5, "local_parabola"), (8, "local_parabola"), (9, "spline"), (12, "spline")):
        x, y, truth = isoflop_curve(CHINCHILLA_APPROACH3, 1e21, span=4.0, n=n)
        m = estimate_minimum(x, y, "auto")
        assert m.method == want == resolve("auto", n) and m.log_n == pytest.approx(truth, abs=0.05)
    assert resolve("cubic", 5) == "cubic"  # a named estimator is itself


def test_a_bootstrap_that_keeps_only_permutations_of_the_runs_gives_no_interval():
    """5 sizes, one run each, and the spline (which needs all 5): only resamples that draw every run once survive,
    and all of them give the same minimum. That is not an interval of zero width, it is no interval."""
    x, y, _ = isoflop_curve(CHINCHILLA_APPROACH3, 1e21, span=4.0, n=5)
    b = bootstrap_minimum(x, y, "spline", n_resamples=200, seed=0)
    assert b.n_failed > 150 and np.isnan(b.lo) and np.isnan(b.hi)
    auto = bootstrap_minimum(x, y, "auto", n_resamples=200, seed=0)  # the local parabola needs 3 of them
    assert auto.estimate.method == "local_parabola" and auto.lo < auto.estimate.log_n < auto.hi


def test_estimate_minimum_returns_the_vertex_and_flags_edge_minima():
    assert DEFAULT_ESTIMATOR in ESTIMATORS
    x = np.linspace(15, 19, 7)
    m = estimate_minimum(x, 0.1 * (x - 17.2) ** 2 + 3.0, "parabola")
    assert isinstance(m, IsoflopMinimum) and m.method == "parabola" and m.n_points == 7
    assert m.log_n == pytest.approx(17.2) and m.loss == pytest.approx(3.0) and m.curvature == pytest.approx(0.2)
    assert not m.at_edge
    beyond = estimate_minimum(x, 0.1 * (x - 20.0) ** 2 + 3.0, "parabola")  # vertex past the largest N: kept, flagged
    assert beyond.at_edge and beyond.log_n == pytest.approx(20.0)
    # the default on 7 sizes is the local parabola, which extrapolates its vertex (flagged); from 9 sizes it is the
    # spline, which does not: an edge minimum is then the end of the sampled range, flagged
    sb = estimate_minimum(x, 0.1 * (x - 20.0) ** 2 + 3.0)
    assert DEFAULT_ESTIMATOR == "auto" and sb.method == "local_parabola" and sb.at_edge
    assert sb.log_n == pytest.approx(20.0)
    x9 = np.linspace(15, 19, 9)
    s9 = estimate_minimum(x9, 0.1 * (x9 - 20.0) ** 2 + 3.0)
    assert s9.method == "spline" and s9.at_edge and s9.log_n == pytest.approx(19.0)
    falling = estimate_minimum(x, -0.05 * (x - 14.0) ** 2 + 3.0, "parabola")  # opens downward: lowest point
    assert (
        falling.at_edge and falling.log_n == 19.0 and np.isnan(falling.curvature)
    )  # no minimum: curvature NaN (minima.py)
    with pytest.raises(ValueError, match="at least 3 distinct N"):
        estimate_minimum(x[:2], x[:2])


def test_a_downward_parabola_makes_the_lowest_run_the_minimum_and_says_so():
    # a real budget of a make sweep (7.07e11 FLOPs, 5 sizes): one run in the middle ended 0.17 nats high, so the
    # local parabola (all 5 sizes) opens downward and the minimum falls back to the lowest run, without curvature
    log_n = np.log([1.41e4, 2.49e4, 3.88e4, 5.58e4, 7.58e4])
    loss = np.array([3.8135, 3.7937, 3.9627, 3.8762, 3.9214])
    m = estimate_minimum(log_n, loss)
    assert m.method == "local_parabola" and math.isnan(m.curvature)
    assert m.log_n == pytest.approx(log_n[1]) and m.loss == pytest.approx(3.7937) and not m.at_edge
    assert lowest_run(m.method, m.curvature)
    curved = estimate_minimum(log_n, 0.1 * (log_n - 10.3) ** 2 + 3.8)
    assert not lowest_run(curved.method, curved.curvature)
    x9 = np.linspace(15, 19, 9)  # the spline's minimum at an edge has no curvature either, but it is its curve's
    s9 = estimate_minimum(x9, 0.1 * (x9 - 20.0) ** 2 + 3.0)
    assert math.isnan(s9.curvature) and not lowest_run(s9.method, s9.curvature)
