"""Every fit result satisfies the declared protocol (analysis/laws/protocol.py), and each method answers on a real
small fit: the bootstrap, the backtests and the report call nothing else."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.fits.approach1 import fit_approach1
from analysis.fits.approach2 import fit_approach2
from analysis.fits.approach3 import fit_approach3
from analysis.fits.datacon import DataConstrainedLaw, fit_datacon
from analysis.fits.kaplan import fit_kaplan
from analysis.laws.forms import Allocation
from analysis.laws.protocol import FitResult, Law, Parameter
from analysis.studies.synthetic import CHINCHILLA, synthetic_curves, synthetic_runs
from analysis.uncertainty.candidates import LAWS, fixed_e_candidate

BUDGETS = (1e18, 1e19, 1e20, 1e21)


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    df = synthetic_runs(CHINCHILLA, budgets=BUDGETS, n_per_budget=7, noise=0.003, seed=0)
    df["unique_train_tokens"] = df["D"] * 2.0  # every run under one epoch: the data-constrained law fits too
    df["epochs"] = 0.5
    return df


def _fits(runs):
    curves = synthetic_curves(CHINCHILLA, sizes=np.geomspace(1e7, 3e9, 8), n_points=20)
    yield "approach1", fit_approach1(curves)
    yield "approach2", fit_approach2(runs)
    yield "approach3", fit_approach3(runs, grid="small")
    yield "approach3_fixed_E", fixed_e_candidate(CHINCHILLA.E).fit(runs, grid="small")
    yield "kaplan", fit_kaplan(runs)
    yield (
        "datacon",
        fit_datacon(
            runs,
            base=DataConstrainedLaw(
                "base", CHINCHILLA.E, CHINCHILLA.A, CHINCHILLA.B, CHINCHILLA.alpha, CHINCHILLA.beta, 5.0, 5.0
            ),
        ),
    )


def test_every_registered_law_is_covered_here():
    assert set(LAWS) <= {
        "approach2",
        "approach3",
        "kaplan",
        "datacon",
        "curve_joint",
    }  # curve_joint: tests/unit/analysis/curves/test_joint.py


@pytest.mark.parametrize("key", ["approach1", "approach2", "approach3", "approach3_fixed_E", "kaplan", "datacon"])
def test_every_fit_result_satisfies_the_protocol_and_answers_each_method(runs, key):
    fit = dict(_fits(runs))[key]
    assert isinstance(fit, FitResult) and isinstance(fit.law, Law)
    al = fit.compute_optimal(1e22)
    assert isinstance(al, Allocation) and al.N_opt > 0 and al.D_opt > 0
    assert isinstance(fit.law.compute_optimal(1e22), Allocation)
    assert isinstance(fit.a, float) and isinstance(fit.b, float)
    q = fit.default_quantities()
    at = fit.default_quantities(budget=1e22)  # every result takes a budget (the data-constrained one did not)
    assert set(q) < set(at) and at["N_opt"] == pytest.approx(al.N_opt)
    assert isinstance(fit.warm_start(), dict)
    assert fit.resample_group is None or isinstance(fit.resample_group, str)
    params = fit.parameters()
    assert params and all(isinstance(p, Parameter) and math.isfinite(p.value) for p in params)
    assert all(p.quantity is None or p.quantity in q for p in params)  # what the table shows is what is resampled
    assert fit.fit_summary() and all(isinstance(k, str) for k in fit.fit_summary())


def test_a_batched_refit_of_the_data_itself_gives_the_fit_back(runs):
    """refit_resamples answers None (refit one at a time) or one result a resample; the identity resample is the
    data, so its result allocates as the fit does (Approaches 2, 3 and Kaplan batch; the data-constrained law not)."""
    batched = set()
    for key, fit in _fits(runs):
        out = fit.refit_resamples(runs, [np.arange(len(runs))], n_threads=1)
        if out is None:
            continue
        batched.add(key)
        assert len(out) == 1
        assert out[0].compute_optimal(1e22).N_opt == pytest.approx(fit.compute_optimal(1e22).N_opt, rel=1e-3)
    assert {"approach3", "kaplan"} <= batched and "datacon" not in batched


def test_results_hold_their_law_rather_than_copies_of_its_constants(runs):
    fits = dict(_fits(runs))
    a3, kaplan, a2 = fits["approach3"], fits["kaplan"], fits["approach2"]
    assert (a3.E, a3.alpha, a3.a, a3.G) == (a3.law.E, a3.law.alpha, a3.law.a, a3.law.G)
    assert (kaplan.N_c, kaplan.alpha_D, kaplan.a) == (kaplan.law.N_c, kaplan.law.alpha_D, kaplan.law.a)
    assert a2.n_opt is a2.law.n_opt and a2.loss_law is a2.law.loss
    assert a3.compute_optimal(1e22) == a3.law.compute_optimal(1e22)
