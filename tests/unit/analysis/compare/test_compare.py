"""Comparing recipes (analysis/compare/): the multiplier on exact laws, the refusals, the shared-exponent test, and
one end-to-end comparison of two synthetic sweeps written to disk as run directories."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.compare import CompareError, compare
from analysis.compare.multiplier import compute_to_reach, log_multiplier, throughput_ratio
from analysis.compare.shared_exponent import shared_exponent_test
from analysis.compare.study import law_with_exponents, law_with_multiplier
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs

BUDGETS = (1e17, 1e18, 1e19, 1e20)
GRID = np.geomspace(1e14, 1e25, 400)


def _runs(law, noise=0.0, seed=0, budgets=BUDGETS):
    return synthetic_runs(law, budgets=budgets, n_per_budget=7, noise=noise, seed=seed)


@pytest.mark.parametrize("m", [1.0, 1.5, 3.0])
def test_the_multiplier_of_exact_laws_is_the_constant_they_were_built_with(m):
    b = law_with_multiplier(CHINCHILLA, m, "b")
    at = np.arange(100, 300, 20)
    lm = log_multiplier(GRID, CHINCHILLA.compute_optimal(GRID).loss, b.compute_optimal(GRID).loss, at)
    np.testing.assert_allclose(np.exp(lm), m, rtol=2e-3)


def test_the_multiplier_of_laws_with_different_exponents_moves_with_compute():
    b = law_with_exponents(CHINCHILLA, 0.06, 1e18, "b")
    at = np.searchsorted(GRID, [1e18, 1e21])
    m = np.exp(log_multiplier(GRID, CHINCHILLA.compute_optimal(GRID).loss, b.compute_optimal(GRID).loss, at))
    assert m[0] == pytest.approx(1.0, abs=0.05) and m[1] > 2  # about equal at the reference budget, B pulls ahead


def test_a_loss_out_of_the_frontiers_reach_is_infinite_compute_not_a_guess():
    loss = CHINCHILLA.compute_optimal(GRID).loss
    assert compute_to_reach(GRID, loss, [CHINCHILLA.E - 0.1])[0] == np.inf
    assert compute_to_reach(GRID, loss, [100.0])[0] == -np.inf


def test_compare_recovers_a_known_multiplier_from_nearly_noiseless_sweeps():
    b = law_with_multiplier(CHINCHILLA, 1.5, "b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            _runs(CHINCHILLA, 0.002, 1),
            _runs(b, 0.002, 2),
            n_boot=0,
            grid="small",
            law="approach3",
            targets=[1e21],
            carry="auto",
        )
    t = cmp.pairs["approach3"][0].table
    np.testing.assert_allclose(t.loc[t["where"] == "in range", "M"], 1.5, rtol=0.05)
    np.testing.assert_allclose(t.loc[t["where"] == "target", "M"], 1.5, rtol=0.15)  # 10x beyond the runs
    assert cmp.test is not None and cmp.test.verdict == "consistent with shared"
    assert list(cmp.n_opt["sweep"]) == ["A", "B"]
    # carry="auto" and sharing not rejected: the shared law's M (constant in C, both sweeps' runs) is carried
    assert cmp.carried == "shared" and "does not reject" in cmp.carried_why
    np.testing.assert_allclose(t["M_shared"], 1.5, rtol=0.05)
    assert (t["M_carried"] == t["M_shared"]).all()


def test_the_shared_law_multiplier_is_exact_on_a_law_with_a_multiplier():
    from analysis.compare.shared_exponent import shared_log_multiplier

    a, b = CHINCHILLA, law_with_multiplier(CHINCHILLA, 3.0, "b")
    x = np.array([np.log(a.E), a.alpha, a.beta, np.log(a.A), np.log(b.A), np.log(a.B), np.log(b.B)])
    assert np.exp(shared_log_multiplier(x, 1)) == pytest.approx(3.0, rel=1e-9)


def test_the_shared_law_multiplier_counts_the_sweeps_flop_conventions_as_the_separate_fits_do():
    # one law, B's FLOP convention counting 1.3x A's for the same N and D: B needs 1.3x the compute of A for any
    # loss, so M = C_A(L_B(C)) / C = 1 / 1.3, from the separate fits and from the shared law alike
    a = _runs(CHINCHILLA, 0.002, 1)
    b = _runs(CHINCHILLA, 0.002, 2)
    b["C"], b["budget"] = b["C"] * 1.3, b["budget"] * 1.3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(a, b, n_boot=0, grid="small", law="approach3", targets=[1e21], calibrate_sims=0)
    t = cmp.pairs["approach3"][0].table
    np.testing.assert_allclose(t.loc[t["where"] == "in range", "M"], 1 / 1.3, rtol=0.05)
    np.testing.assert_allclose(t.loc[t["where"] == "target", "M"], 1 / 1.3, rtol=0.15)  # 10x beyond the runs
    np.testing.assert_allclose(t["M_shared"], 1 / 1.3, rtol=0.02)


def test_the_shared_law_flop_term_matches_the_separate_frontiers_when_the_ratio_varies_with_size():
    from analysis.compare.shared_exponent import flop_ratio_log_term, shared_log_multiplier
    from analysis.laws.conventions import in_convention

    a, b = CHINCHILLA, law_with_multiplier(CHINCHILLA, 3.0, "b")
    x = np.array([np.log(a.E), a.alpha, a.beta, np.log(a.A), np.log(b.A), np.log(a.B), np.log(b.B)])
    ra = lambda N: 1 + (np.asarray(N, float) / 1e6) ** -0.3  # noqa: E731 (C / 6ND falling with size)
    rb = lambda N: 1.2 + 0 * np.asarray(N, float)  # noqa: E731
    grid = np.geomspace(1e14, 1e25, 4000)
    at = np.searchsorted(grid, [1e18, 1e21])
    la, lb = in_convention(a, ra).compute_optimal(grid).loss, in_convention(b, rb).compute_optimal(grid).loss
    sep = log_multiplier(grid, la, lb, at)
    shared = [shared_log_multiplier(x, 1) + flop_ratio_log_term(x, 1, ra, rb, grid[i]) for i in at]
    np.testing.assert_allclose(shared, sep, atol=2e-3)
    assert abs(sep[1] - np.log(3.0)) > 0.05  # the term matters here
    assert flop_ratio_log_term(x, 1, None, 1.3, 1e20) == pytest.approx(-np.log(1.3), rel=1e-12)


def test_recipes_that_scale_differently_carry_the_separate_fits_multiplier_with_the_shared_one_shown():
    b = law_with_exponents(CHINCHILLA, 0.1, 1e18, "b")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            _runs(CHINCHILLA, 0.01, 1),
            _runs(b, 0.01, 2),
            n_boot=10,
            grid="small",
            law="approach3",
            targets=[1e21],
            carry="auto",
            calibrate_sims=0,
        )
    t = cmp.pairs["approach3"][0].table
    assert cmp.test.p_value < 0.05 and cmp.carried == "separate" and "rejects" in cmp.carried_why
    assert (t["M_carried"] == t["M"]).all() and np.isfinite(t["M_shared"]).all()
    s = cmp.shared_m[0]
    assert s["n_valid"] == 10 and s["lo"] <= s["M"] <= s["hi"]
    from analysis.compare.report import markdown

    text = markdown(cmp)
    assert "Carried multiplier: M from the separate fits" in text
    assert "M (shared law)" in text


def test_analysis_compare_is_the_function_whether_or_not_the_package_was_imported():
    import analysis
    import analysis.compare as package

    assert callable(analysis.compare) and callable(package)
    with pytest.raises(CompareError, match="at least two sweeps"):
        package(_runs(CHINCHILLA))


def test_shared_exponent_test_tells_equal_from_different_scaling():
    rng_laws = [(CHINCHILLA, CHINCHILLA), (CHINCHILLA, law_with_exponents(CHINCHILLA, 0.1, 1e18, "b"))]
    p = []
    for la, lb in rng_laws:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p.append(shared_exponent_test([_runs(la, 0.01, 1), _runs(lb, 0.01, 2)]).p_value)
    assert p[0] > 0.05 and p[1] < 0.01


def test_too_few_runs_give_no_verdict_on_the_exponents():
    few = [_runs(CHINCHILLA, 0.01, s, budgets=(1e17, 1e18)).groupby("budget").head(3) for s in (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = shared_exponent_test(few)
    assert t.verdict == "undetermined" and "degrees of freedom" in t.sentence()


def test_throughput_ratio_is_b_flops_per_second_over_a():
    a = pd.DataFrame({"C": [1e12, 2e12, 4e12], "wall_seconds": [10.0, 20.0, 40.0]})
    b = a.assign(wall_seconds=a["wall_seconds"] * 2)
    point, samples = throughput_ratio(a, b, 50, 0)
    assert point == pytest.approx(0.5) and np.allclose(samples, 0.5)
    assert throughput_ratio(a.drop(columns="wall_seconds"), b, 10, 0) is None


def _with(df, **attrs):
    df = df.copy()
    df.attrs.update(attrs)
    return df


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda a: [a], "at least two sweeps"),
        (lambda a: [a, a[a["budget"] == 1e17]], "1 budget(s)"),
        (lambda a: [a, _with(a, flops_convention="chinchilla")], "FLOP conventions differ"),
        (lambda a: [a, _with(a, params_convention="total")], "parameter conventions differ"),
        (lambda a: [a.assign(vocab_size=512), a.assign(vocab_size=32000)], "different tokenizers"),
        (lambda a: [a, a.drop(columns="loss")], "no column"),
        (lambda a: [a, a.assign(loss=-1.0)], "positive finite"),
    ],
)
def test_what_cannot_be_compared_is_refused_in_one_line_before_any_fit(make, words):
    with pytest.raises(CompareError) as e:
        compare(*make(_runs(CHINCHILLA)), n_boot=0)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_bits_per_byte_may_cross_tokenizers():
    a = _runs(CHINCHILLA).assign(vocab_size=512)
    a["bpb"] = a["loss"] / 3.0
    b = a.assign(vocab_size=32000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(a, b, metric="bpb", n_boot=0, grid="small", law="approach3", shared_test=False)
    np.testing.assert_allclose(cmp.pairs["approach3"][0].table["M"], 1.0, rtol=1e-6)


@pytest.mark.slow
def test_compare_and_report_two_sweeps_on_disk(tmp_path):
    from analysis.cli.main import main
    from synthetic_sweep import Law, write_sweep

    law_a = Law()
    s = np.sqrt(2.0)
    law_b = Law(A=law_a.A * s**-law_a.alpha, B=law_a.B * s**-law_a.beta)  # 2x the compute efficiency
    a = write_sweep(tmp_path / "recipe_a", law=law_a, seed=1, noise=0.003)
    b = write_sweep(tmp_path / "recipe_b", law=law_b, seed=2, noise=0.003)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(
            ["report", str(a), str(b), "--n-boot", "20", "--grid", "small", "--target", "1e15"]
            + ["--calibrate-sims", "20", "--calibrate-resamples", "10"]
        )
    assert rc == 0, out.getvalue()
    folder = tmp_path / "compare-recipe_a-vs-recipe_b"
    assert (folder / "compare.md").exists() and (folder / "compare.png").exists()
    text = (folder / "compare.md").read_text()
    assert "Do the recipes share exponents and floor?" in text and "recipe_b vs recipe_a" in text
    assert "Calibration of the multiplier's interval" in text and len(list(folder.glob("multiplier-calibration-*")))
    tables = list(folder.glob("multiplier_*.csv"))
    t = pd.read_csv(tables[0])
    inside = t[t["where"] == "in range"]
    assert np.median(inside["M"]) == pytest.approx(2.0, rel=0.25)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["compare", str(a), str(tmp_path / "nowhere")])
    assert rc == 2 and "does not exist" in err.getvalue()


def test_an_interval_reaching_past_the_frontier_says_infinity_not_nan():
    from analysis.compare.multiplier import _quantiles

    lo, hi = _quantiles(np.array([[0.1], [np.inf], [np.inf], [0.2], [np.nan]]), 0.9)
    assert np.isfinite(lo[0]) and hi[0] == np.inf


def test_a_target_past_the_baselines_floor_is_drawn_at_the_panels_edge():
    """B's floor below A's: at a far target B reaches a loss A never does (M = ∞). The figure drew its error bar from
    ∞ and failed ('yerr' must not contain negative values) on the first real GPT-vs-Llama comparison."""
    from dataclasses import replace

    from analysis.compare.report import figure

    b = replace(law_with_multiplier(CHINCHILLA, 2.0, "b"), E=CHINCHILLA.E - 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            _runs(CHINCHILLA, 0.002, 1),
            _runs(b, 0.002, 2),
            n_boot=20,
            grid="small",
            law="approach3",
            targets=[1e30],
            calibrate_sims=0,
        )
    t = cmp.pairs["approach3"][0].table
    assert (
        t.loc[t["where"] == "target", "M"].iloc[0] == np.inf and t.loc[t["where"] == "target", "M_hi"].iloc[0] == np.inf
    )
    figure(cmp)  # draws (raised before)


def test_the_separate_fits_multiplier_is_carried_by_default_and_the_shared_one_on_request():
    b = law_with_multiplier(CHINCHILLA, 1.5, "b")
    runs = (_runs(CHINCHILLA, 0.002, 1), _runs(b, 0.002, 2))
    got = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for carry in ("separate", "shared"):
            got[carry] = compare(*runs, n_boot=0, grid="small", law="approach3", targets=[1e21], carry=carry)
    t = got["separate"].pairs["approach3"][0].table
    assert got["separate"].carried == "separate" and (t["M_carried"] == t["M"]).all()
    assert got["shared"].carried == "shared" and "as asked" in got["shared"].carried_why
    with pytest.raises(CompareError, match="carry='both'"):
        compare(*runs, n_boot=0, carry="both")
