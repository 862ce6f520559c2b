"""The data-constrained law of Muennighoff et al. 2023 (analysis.fits.datacon)."""

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.fits.datacon import (
    MUENNIGHOFF_2023,
    DataConstrainedLaw,
    RepeatedDataWarning,
    check_epochs,
    fit_datacon,
    prediction_shift,
)

LAW = MUENNIGHOFF_2023


def test_reproduces_the_authors_worked_values():
    # datablations README, "Parametric Fit": the two models of their Figure 1 (right)
    assert LAW.predict(6.34e9, 242e9, 25e9) == pytest.approx(2.2256440889984477, abs=1e-12)
    assert round(LAW.predict(6.34e9, 242e9, 25e9), 4) == 2.2256
    assert LAW.predict(8.67e9, 178e9, 25e9) == pytest.approx(2.2269634075087867, abs=1e-12)
    assert (LAW.rd_star, LAW.rn_star, LAW.alpha) == (15.387756, 5.309743, 0.3526596)


def test_fresh_data_and_a_small_model_reduce_to_chinchillas_form():
    N, D = 1e8, 2e10  # N is far below the compute-optimal size for 2e10 unique tokens
    assert N < LAW.params_for_data(D)
    assert LAW.predict(N, D) == pytest.approx(LAW.predict_unconstrained(N, D), rel=1e-14)
    assert LAW.predict(N, D, U=5e10) == pytest.approx(LAW.predict_unconstrained(N, D), rel=1e-14)


def test_repeated_tokens_decay_in_value_towards_one_plus_rd_star_epochs():
    U = 1e9
    d_eff = LAW.effective_data(U * np.array([1, 2, 4, 16, 1e4]), U)
    assert d_eff[0] == U and np.all(np.diff(d_eff) > 0)
    assert d_eff[1] == pytest.approx(U * (1 + LAW.rd_star * (1 - np.exp(-1 / LAW.rd_star))))
    assert d_eff[2] / (4 * U) > 0.9  # 4 epochs: nearly as good as 4 epochs of fresh data
    assert d_eff[-1] == pytest.approx(U * (1 + LAW.rd_star), rel=1e-6)


def test_prediction_shift_is_zero_at_one_epoch_and_grows_with_repetition():
    t = prediction_shift(LAW, 1e8, [1e10, 4e10, 4e11], 1e10)
    assert list(t["epochs"]) == [1.0, 4.0, 40.0]
    assert t["delta"].iloc[0] == 0.0
    assert 0 < t["delta"].iloc[1] < t["delta"].iloc[2]
    assert t["rel_delta"].iloc[1] < 0.005 < t["rel_delta"].iloc[2]


def test_check_epochs_warns_naming_the_runs_beyond_four_epochs():
    runs = pd.DataFrame({"run_id": ["a", "b", "c"], "epochs": [0.9, 4.0, 6.5]})
    with pytest.warns(RepeatedDataWarning, match=r"1 run\(s\) .*more than 4 epochs.*up to 6.5\): c;"):
        assert check_epochs(runs) == ["c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_epochs(runs[runs["epochs"] <= 4]) == []
        assert check_epochs(runs.drop(columns="epochs")) == []


def synthetic_repeated_runs(truth: DataConstrainedLaw, seed=0, noise=0.002):
    """Fresh runs over a grid of N and D, plus runs repeating 1e8 or 1e9 unique tokens up to 100 epochs with
    models both below and above the compute-optimal size for the unique data."""
    rng = np.random.default_rng(seed)
    rows = [(N, D, D) for N in np.geomspace(3e6, 3e8, 6) for D in np.geomspace(1e8, 3e10, 6)]
    rows += [(N, U * ep, U) for U in (1e8, 1e9) for N in np.geomspace(1e6, 3e8, 6) for ep in (2, 5, 15, 40, 100)]
    df = pd.DataFrame(rows, columns=["N", "D", "unique_train_tokens"])
    df["epochs"] = df["D"] / df["unique_train_tokens"]
    df["loss"] = truth.predict(df["N"], df["D"], df["unique_train_tokens"]) * np.exp(
        noise * rng.standard_normal(len(df))
    )
    return df


def test_fit_recovers_the_decay_constants_given_the_base_law():
    truth = LAW
    fit = fit_datacon(synthetic_repeated_runs(truth), base=truth)
    assert fit.converged and fit.n_repeated == 60 and fit.n_runs == 96
    assert fit.law.rd_star == pytest.approx(truth.rd_star, rel=0.15)
    assert fit.law.rn_star == pytest.approx(truth.rn_star, rel=0.25)


def test_two_stage_fit_from_runs_alone_predicts_held_out_repetition():
    truth = DataConstrainedLaw("truth", E=1.8, A=400.0, B=1500.0, alpha=0.34, beta=0.30, rd_star=10.0, rn_star=4.0)
    runs = synthetic_repeated_runs(truth, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_datacon(runs.drop(columns="unique_train_tokens"))  # unique tokens from D / epochs
    assert fit.law.alpha == pytest.approx(0.34, abs=0.05) and fit.law.beta == pytest.approx(0.30, abs=0.05)
    assert fit.law.rd_star == pytest.approx(10.0, rel=0.4)
    N, D, U = 1e8, 3e11, 3e9  # 100 epochs of 3e9 tokens: outside the fitted runs
    assert fit.predict(N, D, U) == pytest.approx(truth.predict(N, D, U), rel=0.01)


def test_errors_name_the_missing_column_and_bad_value():
    with pytest.raises(ValueError, match="neither u_col='unique_train_tokens' nor epochs_col='epochs'"):
        fit_datacon(pd.DataFrame({"N": [1.0] * 5, "D": [1.0] * 5, "loss": [1.0] * 5}))
    with pytest.raises(ValueError, match="loss_col='final_loss' is not a column"):
        fit_datacon(pd.DataFrame({"N": [1.0], "D": [1.0]}), loss_col="final_loss")
    with pytest.raises(ValueError, match="U must be finite and > 0, got 0.0"):
        LAW.predict(1e9, 1e10, 0.0)


def test_the_data_constrained_optimum_is_chinchillas_with_unlimited_data_and_worse_with_little():
    """compute_optimal (what the rolling backtest asks of the registered law): with far more unique tokens than
    the optimum uses it is the closed-form Chinchilla optimum of the same constants; with few unique tokens the
    loss at the optimum is higher."""
    from analysis.fits.datacon import MUENNIGHOFF_2023, DataConstrainedFit
    from analysis.laws.forms import ParametricLaw
    from analysis.uncertainty.candidates import LAWS

    law = MUENNIGHOFF_2023
    plain = ParametricLaw("p", law.E, law.A, law.B, law.alpha, law.beta, source="test")
    free = DataConstrainedFit(law=law, base=None, unique_tokens=1e30)
    for C in (1e20, 1e23):
        got, want = free.compute_optimal(C), plain.compute_optimal(C)
        assert got.N_opt == pytest.approx(want.N_opt, rel=2e-3) and got.loss == pytest.approx(want.loss, rel=1e-6)
        assert got.D_opt == pytest.approx(C / (6 * got.N_opt))
    scarce = DataConstrainedFit(law=law, base=None, unique_tokens=1e9).compute_optimal(1e23)
    assert scarce.loss > plain.compute_optimal(1e23).loss
    assert LAWS["datacon"].six_nd and not LAWS["datacon"].bootstrap
    with pytest.raises(ValueError, match="U must be finite and > 0"):
        free.compute_optimal(1e20, U=-1.0)
