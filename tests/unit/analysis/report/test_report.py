"""The analysis of a sweep, its report, figures and command line (analysis/pipeline/, report.py, figures.py,
plots.py, conventions.py, robustness.py, __main__.py)."""

import dataclasses
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from analysis import load_runs
from analysis.cli.main import main
from analysis.data.load import RunExcludedWarning
from analysis.laws.conventions import InConvention, SixNDRatio
from analysis.laws.published import ParametricLaw
from analysis.pipeline import analyse
from analysis.pipeline.checks import doubts
from analysis.report import canvas
from analysis.report.figures import FIGURES, make_figures
from analysis.report.markdown import write_report
from support import run_cli
from synthetic_sweep import BAD_RUNS, BUDGETS, TRUE_LAW, write_sweep

FAST = dict(n_boot=8, grid="small")  # enough resamples to exercise intervals, few enough for a unit test


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("report") / "isoflop")


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report_out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        return write_report(sweep, out, budgets=[1e16, 1e17], **FAST)


@pytest.fixture(scope="module")
def analysis_6n(sweep):
    """The sweep analysed with C = 6ND, the convention the true law's allocation is stated in."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        return analyse(sweep, flops="6n", budgets=[1e16], **FAST)


def section(text: str, title: str) -> str:
    return text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_report_writes_every_figure_as_png_and_svg_plus_tables(report):
    out = report.parent
    for name in FIGURES:
        png, svg = out / f"{name}.png", out / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
        assert ET.parse(svg).getroot().tag.endswith("svg"), name
    text = report.read_text()
    for title in (
        "Summary",
        "Runs",
        "IsoFLOP minima (Approach 2)",
        "Fits",
        "Predictions",
        "Backtest",
        "Conventions",
        "Comparison to published laws",
        "Figures",
        "Notes",
    ):
        assert f"\n## {title}\n" in text, title
    for name in FIGURES:
        assert f"![{name}]({name}.png)" in text


def test_report_tables_hold_the_runs_minima_fits_and_predictions(report, sweep):
    text = report.read_text()
    runs = section(text, "Runs")
    assert f"{6 * len(BUDGETS)} runs used" in runs
    for run_id, why in BAD_RUNS.items():  # every excluded run is listed with its reason
        line = next(line for line in runs.splitlines() if line.startswith(f"| {run_id} |"))
        assert why in line
    minima = section(text, "IsoFLOP minima (Approach 2)")
    assert minima.count("| inside |") == len(BUDGETS)  # every budget's minimum lies inside its sampled sizes
    assert "'auto' estimator" in minima  # analysis.fits.minima.DEFAULT_ESTIMATOR
    assert minima.count("| local_parabola |") == len(BUDGETS)  # 6 sizes a budget: under AUTO_SPLINE_SIZES
    fits = section(text, "Fits")
    for head in ("### Approach 1", "### Approach 2", "### Approach 3", "### Kaplan"):
        assert head in fits
    # Approach 3's parameters carry bootstrap intervals: "estimate [lo, hi]"
    a3 = fits.split("### Approach 3")[1].split("\n### ")[0]  # the headline law's section comes first
    alpha_row = next(line for line in a3.splitlines() if line.startswith("| α |"))
    assert alpha_row.count("[") == 1
    predictions = section(text, "Predictions")
    assert "### C = 1e16 FLOPs" in predictions and "### C = 1e17 FLOPs" in predictions
    assert "Chinchilla Approach 3 (Hoffmann+ 2022)" in predictions and "Epoch AI refit" in predictions
    backtest = section(text, "Backtest")
    for label in (
        "Approach 2 (IsoFLOP)",
        "Approach 3 (parametric)",
        "Kaplan L(N, D)",
        "Data-constrained (Muennighoff+ 2023)",
        "Curve law (every checkpoint)",
    ):
        assert f"| {label} | 3 |" in backtest or f"| **{label} (best)** | 3 |" in backtest, label
    assert "**Best on this sweep:" in backtest and "Rule: lowest median" in backtest
    bt = pd.read_csv(report.parent / "backtest.csv")
    assert len(bt) == 5 * 3  # 5 registered laws x (cutoff 3e13 -> 1e14, 3e14; cutoff 1e14 -> 3e14)
    np.testing.assert_allclose(bt["distance"], bt["C_target"] / bt["C_cutoff"])
    summary = section(text, "Summary")
    assert "**Headline:" in summary and "extrapolated best in the rolling backtest" in summary
    csv = pd.read_csv(report.parent / "runs.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        runs_df = load_runs(sweep)
    assert len(csv) == len(runs_df)
    np.testing.assert_allclose(csv.sort_values("run_id")["loss"], runs_df.sort_values("run_id")["loss"])


def test_predictions_recover_the_true_allocation_with_intervals(analysis_6n):
    an = analysis_6n
    a3 = an.fits["approach3"]
    assert abs(a3.a - TRUE_LAW.a) < 0.05
    p = an.predictions(1e16).set_index("source")
    truth = float(TRUE_LAW.n_opt(1e16))
    for source in ("Approach 3 (parametric)",):
        assert p.loc[source, "N_opt"] == pytest.approx(truth, rel=0.3), source
        assert p.loc[source, "tokens_per_param"] == pytest.approx(p.loc[source, "D_opt"] / p.loc[source, "N_opt"])
    r = p.loc["Approach 3 (parametric)"]
    assert r["N_opt_lo"] <= r["N_opt"] <= r["N_opt_hi"] and r["N_opt_lo"] < r["N_opt_hi"]
    assert r["loss_lo"] <= r["loss"] <= r["loss_hi"]
    assert np.isfinite(r["loss"]) and r["loss"] == pytest.approx(TRUE_LAW.E + 0.8, abs=1.0)
    # published laws sit beside the fits, without intervals
    pub = p[p["kind"] == "published"]
    assert len(pub) >= 5 and pub["N_opt"].gt(0).all()
    # with C = 6ND no conversion is needed
    assert an.conversion.ratio is None and an.allocators["approach3"] is a3


def test_approach2_prediction_recovers_the_true_allocation(analysis_6n):
    """4 budgets x 6 sizes: the default ('auto') takes the local parabola here. With the spline (the default before)
    N_opt(1e16) / truth was 1.78 (a = 0.56 against the true 0.452), with the parabola 1.25."""
    p = analysis_6n.predictions(1e16).set_index("source")
    assert p.loc["Approach 2 (IsoFLOP)", "N_opt"] == pytest.approx(float(TRUE_LAW.n_opt(1e16)), rel=0.3)


def test_a_6nd_allocation_is_converted_to_the_sweeps_flop_convention(sweep):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        runs = load_runs(sweep)  # chinchilla FLOPs: embeddings, attention and logits on top of 6ND
    ratio = SixNDRatio(runs["N"], runs["D"], runs["C"])
    measured = runs["C"] / (6 * runs["N"] * runs["D"])
    np.testing.assert_allclose(ratio(runs["N"].to_numpy()), measured, rtol=1e-9)  # exact at the sweep's sizes
    assert not ratio.identity and (measured > 1).all()
    big = ratio(np.array([1e9, 1e12]))
    assert 1 < big[1] < big[0] < measured.min()  # overheads shrink towards 6ND for large models
    truth = ParametricLaw("truth", TRUE_LAW.E, TRUE_LAW.A, TRUE_LAW.B, TRUE_LAW.alpha, TRUE_LAW.beta, source="test")
    C = np.array([1e14, 1e17, 1e21])
    a = InConvention(truth, ratio).compute_optimal(C)
    np.testing.assert_allclose(6 * a.N_opt * a.D_opt * ratio(a.N_opt), C, rtol=1e-8)
    assert (a.N_opt < truth.compute_optimal(C).N_opt).all()  # fewer 6ND FLOPs to spend than C


def test_every_figure_has_log_axes_and_labelled_units(analysis_6n):
    figs = make_figures(analysis_6n)
    assert set(figs) == set(FIGURES)
    for name, fig in figs.items():
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert panels[0].get_ylabel(), name
        for ax in panels:
            assert ax.get_xscale() == "log" and ax.get_xlabel(), name
    labels = " ".join(ax.get_xlabel() + " " + ax.get_ylabel() for f in figs.values() for ax in f.axes)
    for unit in ("FLOPs", "nats/token", "parameters", "tokens"):
        assert unit in labels
    ax = figs["optimal_allocation"].axes[0]
    legend = " ".join(t.get_text() for t in figs["optimal_allocation"].legends[0].get_texts())
    assert "Approach 3 (parametric): a = " in legend and "published" in legend
    assert "Kaplan L(N, D): a = " in legend  # the fitted Kaplan law too: the backtest can make it the headline
    assert ax.collections, "bootstrap bands are drawn as filled areas"


def test_a_sweep_with_one_budget_still_gets_a_report_that_says_what_is_missing(tmp_path):
    one = write_sweep(tmp_path / "one_budget", budgets=(1e14,), with_bad_runs=False)
    path = write_report(one, n_boot=0, grid="small")
    assert path == one / "report" / "report.md"
    text = path.read_text()
    assert "No IsoFLOP fit" in section(text, "IsoFLOP minima (Approach 2)")
    assert "at least 2" in section(text, "Fits")  # the fit's own reason is passed on
    assert "No backtest" in section(text, "Backtest")
    notes = section(text, "Notes")
    assert "approach2" in notes and "approach1" in notes
    for name in ("isoflop", "loss_vs_compute", "residuals", "optimal_allocation"):
        assert (path.parent / f"{name}.png").exists()


def test_predict_cli_prints_each_approach_beside_the_published_laws(sweep):
    r = run_cli(
        ["-m", "analysis", "predict", str(sweep), "--budget", "1e21", "--n-boot", "4", "--grid", "small"], timeout=300
    )
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "C = 1e+21 FLOPs" in out
    header = next(line for line in out.splitlines() if "N_opt" in line and "tokens/param" in line)
    assert "D_opt (tokens)" in header and "loss" in header
    a3 = next(line for line in out.splitlines() if line.strip().startswith("Approach 3 (parametric)"))
    assert a3.count("[") == 4  # N_opt, D_opt, tokens/param and loss each with an interval
    assert any("Chinchilla Approach 3 (Hoffmann+ 2022) (published)" in line for line in out.splitlines())
    assert "excluded" in r.stderr and "big_diverged" in r.stderr  # exclusions are reported, once each
    assert r.stderr.count("'big_diverged'") == 1


def test_cli_errors_name_the_problem(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["predict", str(tmp_path), "--budget", "lots"])
    assert e.value.code == 2
    assert "'lots' is not a number" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "report,fit,predict,plot" in capsys.readouterr().out


def test_fit_and_plot_subcommands(sweep, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        assert main(["fit", str(sweep), "--approach", "approach2", "--n-boot", "4"]) == 0
        out = capsys.readouterr().out
        assert "Approach2Result(a=" in out and "a (N_opt ∝ C^a)" in out
        assert main(["plot", str(sweep), "--out", str(tmp_path), "--n-boot", "0", "--grid", "small"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(f"{n}.png" for n in FIGURES)


def test_sci_formats_counts_compactly():
    assert canvas.sci(1.5e21) == "1.5e21"
    assert canvas.sci(3e14) == "3e14"
    assert canvas.sci(float("nan")) == "n/a"


def test_a_degenerate_parametric_fit_is_flagged_not_silently_reported(analysis_6n):
    from analysis.fits.approach3 import Approach3Result
    from analysis.laws.forms import ParametricLaw

    assert not [k for k in analysis_6n.notes if k.endswith("_doubt")]  # the synthetic sweep's fits are sound
    degenerate = Approach3Result(
        law=ParametricLaw("approach3", E=1e-9, A=2e64, B=14.6, alpha=18.7, beta=0.1),
        huber_loss=1e-4,
        n_starts=32,
        converged=True,
    )
    doubt = doubts("approach3", degenerate)
    assert "α = 18.7" in doubt and "no irreducible loss" in doubt and "should not be trusted" in doubt


def test_the_package_exports_stay_functions_after_their_modules_are_imported():
    """``analysis.analyse`` is the function even once analysis.report.markdown (which imports the pipeline) is
    loaded."""
    code = (
        "import analysis.report.markdown, analysis.uncertainty.resampling, analysis\n"
        "assert callable(analysis.analyse) and callable(analysis.write_report), analysis.analyse\n"
        "assert callable(analysis.rolling_backtest) and callable(analysis.bootstrap)\n"
        "assert 'torch' not in __import__('sys').modules\n"
    )
    r = run_cli(["-c", code], timeout=120)
    assert r.returncode == 0, r.stderr


def test_backtest_cli_prints_the_rolling_table_and_the_best_law(sweep, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        assert main(["backtest", str(sweep), "--grid", "small", "--fixed-E", "1.6"]) == 0
    out = capsys.readouterr().out
    assert "cutoff_budget" in out and "log_err_N" in out and "distance" in out
    assert "Approach 3, E = 1.6 fixed" in out and "**Best on this sweep:" in out
    assert "statistical" in out  # the 6ND laws' conversion route is named


def test_report_lists_the_quality_gates_exclusions_and_the_repeated_data_check(report, sweep):
    from analysis.data.load import scan_runs

    text = report.read_text()
    gate = section(text, "Quality gate")
    scan = scan_runs(sweep)
    gated = scan[(~scan["usable"]) & scan["reason"].fillna("").str.startswith("quality gate")]
    for r in gated.itertuples():  # every run the gate left out, with its reason
        assert f"| {r.run_id} |" in gate and r.reason.split(":")[0] in gate
    if gated.empty:
        assert "left out no run" in gate
    rep = section(text, "Repeated data")
    assert "epochs" in rep and ("**Warning:**" in rep or "No run trains for more than 4 epochs" in rep)
    iso = section(text, "IsoFLOP minima (Approach 2)")
    assert "within-budget bootstrap interval" in iso and "| estimator |" in iso
    fits = section(text, "Fits")
    # Approach 2's interval is the one the per-sweep calibration chose, stated with its simulated figures
    assert "chosen by simulating this sweep's own design" in fits
    assert "**(carried)**" in section(text, "Calibration of Approach 2's interval")


def test_with_nine_sizes_a_budget_approach2_carries_the_student_t_interval(tmp_path):
    from analysis.pipeline import a2_interval_source

    sweep = write_sweep(tmp_path / "nine", n_sizes=9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = analyse(sweep, n_boot=8, grid="small", backtests=False, conventions=False, calibrate=False)
    assert (an.fits["approach2"].per_budget["estimator"] == "spline").all()
    assert an.a2.interval is not None and "Student-t interval of the line" in a2_interval_source(an)
    lo, hi = an.a2.interval.interval("a")
    assert lo < an.fits["approach2"].a < hi


def test_figures_drawn_in_the_second_process_are_the_files_the_report_would_draw(analysis_6n, tmp_path):
    """``render_early`` (what ``analyse`` runs beside the bootstraps) gives the bytes ``canvas.save`` writes, and
    ``write_figures`` writes those bytes instead of drawing the figures again."""
    from analysis.report.figures import EARLY, render_early, write_figures

    rendered, failed = render_early(analysis_6n)
    assert set(rendered) | set(failed) <= set(EARLY) and {"isoflop", "residuals"} <= set(rendered)
    for name, fig in make_figures(analysis_6n, only=list(rendered)).items():
        (png,) = canvas.save(fig, tmp_path / "main", name, formats=("png",))
        assert png.read_bytes() == rendered[name]["png"]
    an = dataclasses.replace(analysis_6n, rendered={"isoflop": {"png": b"drawn beside", "svg": b"<svg/>"}})
    paths = write_figures(an, tmp_path / "out")
    assert (tmp_path / "out" / "isoflop.png").read_bytes() == b"drawn beside"
    assert {p.stem for p in paths} >= {"isoflop", "optimal_allocation"}


def test_without_a_double_loop_cache_approach3_and_kaplan_carry_the_fast_double_bootstraps_interval(report):
    text = report.read_text()
    assert "level calibrated by a fast double bootstrap" in text and "quantile of the first level's" in text
    assert "**Kaplan" in text and "batched Levenberg-Marquardt" in text and "--law kaplan" in text
