"""analysis/uncertainty/truth.py: the true entropy from the runs table, a fitted E checked against it, and its
figure."""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis.report.plots import draw_truth, truth_figure
from analysis.uncertainty.truth import SourceTruth, TruthError, check_irreducible, known_truth
from scaling.core.records import RunSummary

H = 2.1145


def _runs(rates, floors=None, n=None):
    n = n or len(rates)
    df = pd.DataFrame(
        {
            "run_id": [f"run{i}" for i in range(n)],
            "C": np.geomspace(1e11, 1e12, n),
            "loss": np.linspace(3.0, 2.3, n),
            "budget": [1e11] * (n // 2) + [1e12] * (n - n // 2),
            "data_entropy_rate": rates,
        }
    )
    if floors is not None:
        df["data_loss_floor"] = floors
    return df


def test_the_truth_is_read_from_the_runs_table():
    t = known_truth(_runs([H] * 4, [H + 0.01] * 4))
    assert t == SourceTruth(entropy_rate=H, loss_floor=H + 0.01, n_runs=4)


def test_without_a_recorded_floor_the_floor_is_the_entropy_rate():
    assert known_truth(_runs([H] * 3)).loss_floor == H


def test_natural_text_sweeps_have_no_truth():
    assert known_truth(_runs([None] * 3)) is None
    assert known_truth(_runs([H] * 3).drop(columns="data_entropy_rate")) is None


def test_runs_that_disagree_about_the_truth_are_named():
    with pytest.raises(TruthError, match=r"data_entropy_rate.*run2=2\.5"):
        known_truth(_runs([H, H, 2.5, H]))
    with pytest.raises(TruthError, match=r"missing for \['run1'\]"):
        known_truth(_runs([H, None, H]))
    with pytest.raises(TruthError, match=r"data_loss_floor.*run0"):
        known_truth(_runs([H] * 3, [H + 0.1, H, H]))


def test_old_summaries_without_the_field_still_load_with_no_truth():
    old = {"run_id": "r", "sweep": "s", "status": "complete"}
    s = RunSummary.from_dict(old)
    assert s.data_entropy_rate is None and s.data_loss_floor is None
    assert known_truth(pd.DataFrame([s.flatten()])) is None


def test_the_check_says_whether_the_interval_contains_the_truth():
    inside = check_irreducible(H, 2.10, 2.05, 2.16)
    assert inside.contains and inside.error == pytest.approx(2.10 - H)
    outside = check_irreducible(SourceTruth(H, H, 17), 2.30, 2.25, 2.35, level=0.9)
    assert not outside.contains and outside.error == pytest.approx(2.30 - H)
    md = outside.markdown()
    assert "| true entropy rate H of the source | 2.1145 |" in md
    assert "2.3000 [2.2500, 2.3500]" in md and "**no**" in md and "misses H" in md
    assert "yes" in inside.markdown() and "contains H" in inside.markdown()


def test_a_floor_above_the_rate_is_the_target_and_is_shown():
    c = check_irreducible(SourceTruth(1.40, 1.45, 3), 1.46, 1.44, 1.48)
    assert c.contains  # the floor 1.45 is inside, although H = 1.40 is not
    assert "loss floor of a perfect model on these windows | 1.4500" in c.markdown()


def test_unusable_fitted_values_are_errors_naming_them():
    with pytest.raises(TruthError, match="E=nan"):
        check_irreducible(H, float("nan"), 2.0, 2.2)
    with pytest.raises(TruthError, match="lo=2.2 > hi=2.0"):
        check_irreducible(H, 2.1, 2.2, 2.0)
    with pytest.raises(TruthError, match="level=90"):
        check_irreducible(H, 2.1, 2.0, 2.2, level=90)


def test_draw_truth_draws_the_band_and_both_lines_without_pyplot_state():
    from matplotlib.figure import Figure

    before = plt.get_fignums()
    fig = Figure()
    ax = fig.add_subplot()
    draw_truth(ax, check_irreducible(SourceTruth(1.40, 1.45, 3), 1.46, 1.44, 1.48))
    labels = [line.get_label() for line in ax.get_lines()]
    assert any(lab.startswith("fitted E = 1.460") for lab in labels)
    assert any(lab.startswith("true entropy rate H = 1.400") for lab in labels)
    assert any(lab.startswith("loss floor") for lab in labels)
    band = [p for p in ax.patches if "interval" in p.get_label()]
    assert len(band) == 1
    assert band[0].get_y() == pytest.approx(1.44) and band[0].get_y() + band[0].get_height() == pytest.approx(1.48)
    assert plt.get_fignums() == before


def test_truth_figure_shows_every_run_and_the_truth(tmp_path):
    runs = _runs([H] * 6)
    fig = truth_figure(check_irreducible(known_truth(runs), 2.12, 2.08, 2.17), runs)
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6
    lo, hi = ax.get_ylim()
    assert lo < 2.08 and hi > 3.0
    fig.savefig(tmp_path / "truth.png")
    assert (tmp_path / "truth.png").stat().st_size > 0


def _runs_from_a_law_with_E_equal_to_H(seed: int) -> pd.DataFrame:
    """18 runs (6 sizes x 3 token counts) from L = H + 40/N^0.5 + 300/D^0.4 with 0.2% noise, recording the truth."""
    rng = np.random.default_rng(seed)
    N = np.repeat(np.geomspace(6e3, 1.5e5, 6), 3)
    D = np.tile([1e6, 3e6, 9e6], 6) * rng.uniform(0.9, 1.1, 18)
    loss = (H + 40.0 / N**0.5 + 300.0 / D**0.4) * np.exp(rng.normal(0, 0.002, 18))
    return pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(18)],
            "N": N,
            "D": D,
            "loss": loss,
            "data_entropy_rate": H,
            "data_loss_floor": H,
        }
    )


def test_a_fit_of_exact_synthetic_losses_recovers_the_truth():
    """End to end on the analysis side: losses from a known law with E = H, fitted by Approach 3 and bootstrapped,
    give an E whose interval contains H, and the check says so."""
    from analysis import bootstrap, fit_approach3

    runs = _runs_from_a_law_with_E_equal_to_H(seed=0)
    fit = fit_approach3(runs)
    boot = bootstrap(fit_approach3, runs, n_resamples=100, seed=1, n_jobs=1)
    lo, hi = boot.interval("E")
    c = check_irreducible(known_truth(runs), fit.E, lo, hi)
    assert c.contains, c.markdown()
    assert abs(c.error) < 0.05 and math.isfinite(c.error)


def test_the_pipeline_checks_approach3s_E_against_the_runs_known_floor_and_only_then():
    """``pipeline.checks.truth`` (``analyse`` calls it): runs that record their source's entropy rate get a TruthCheck
    of Approach 3's E and its bootstrap interval; runs without one get none."""
    from analysis import bootstrap, fit_approach3
    from analysis.pipeline import Analysis
    from analysis.pipeline.checks import truth as _truth

    runs = _runs_from_a_law_with_E_equal_to_H(seed=1)
    a3 = fit_approach3(runs)
    boot = bootstrap(fit_approach3, runs, n_resamples=30, seed=0, n_jobs=1)
    for with_truth in (True, False):
        r = runs if with_truth else runs.drop(columns=["data_entropy_rate", "data_loss_floor"])
        an = Analysis(
            source="synthetic",
            runs=r,
            curves=None,
            scan=pd.DataFrame(),
            budgets=(1e16,),
            c_range=(1e12, 1e16),
            n_boot=30,
            seed=0,
            level=0.9,
        )
        an.fits["approach3"], an.boots["approach3"] = a3, boot
        _truth(an)
        if with_truth:
            assert an.truth.floor == pytest.approx(H) and an.truth.E == pytest.approx(a3.E)
            assert (an.truth.lo, an.truth.hi) == boot.interval("E") and "interval contains" in an.truth.markdown()
        else:
            assert an.truth is None
