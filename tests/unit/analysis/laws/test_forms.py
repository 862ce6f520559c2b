"""The law forms and their closed-form allocations (analysis/laws/forms.py): power laws, the Chinchilla and Kaplan
optima checked against brute-force minima, and one meaning of predict and compute_optimal shared by every fitted
result and the published laws.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from analysis.data.columns import FitError
from analysis.fits.approach1 import fit_approach1
from analysis.fits.approach2 import fit_approach2
from analysis.fits.approach3 import fit_approach3
from analysis.fits.kaplan import fit_kaplan
from analysis.laws.forms import (
    Allocation,
    KaplanJointLaw,
    ParametricLaw,
    PowerLaw,
    kaplan_joint_optimum,
    parametric_optimum,
)
from analysis.studies.synthetic import CHINCHILLA, SECOND_TRUTH, synthetic_curves, synthetic_runs

TRUTHS = [pytest.param(CHINCHILLA, id="chinchilla"), pytest.param(SECOND_TRUTH, id="second")]


@pytest.mark.parametrize("law", TRUTHS)
@pytest.mark.parametrize("C", [1e18, 5.76e23, 1e26])
def test_closed_form_allocation_equals_brute_force_minimum_under_6ND(law, C):
    """Minimising L(N, C/(6N)) over log N numerically gives the closed form's N_opt within 1e-5 relative."""
    res = optimize.minimize_scalar(
        lambda x: law.predict(math.exp(x), C / (6 * math.exp(x))), bracket=(10.0, 30.0), tol=1e-12
    )
    al = parametric_optimum(*law.params, C)
    assert al.N_opt == pytest.approx(math.exp(res.x), rel=1e-5)
    assert 6 * al.N_opt * al.D_opt == pytest.approx(C, rel=1e-12)
    assert al.loss == pytest.approx(law.predict(al.N_opt, al.D_opt))


def test_kaplan_closed_form_equals_brute_force_minimum():
    law = KaplanJointLaw("t", N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103, source="", E=1.0)
    for C in (1e18, 1e22):
        res = optimize.minimize_scalar(
            lambda x, C=C: law.predict(math.exp(x), C / (6 * math.exp(x))), bracket=(10.0, 30.0), tol=1e-12
        )
        assert kaplan_joint_optimum(law.N_c, law.D_c, law.alpha_N, law.alpha_D, law.E, C).N_opt == pytest.approx(
            math.exp(res.x), rel=1e-4
        )


def test_allocation_accepts_arrays_of_budgets():
    al = parametric_optimum(*CHINCHILLA.params, np.array([1e20, 1e22]))
    assert isinstance(al, Allocation) and al.N_opt.shape == (2,)
    assert np.all(al.tokens_per_param == al.D_opt / al.N_opt)
    no_loss = fit_approach1(synthetic_curves(CHINCHILLA)).compute_optimal(np.array([1e20, 1e22]))
    assert no_loss.loss.shape == (2,) and np.isnan(no_loss.loss).all()
    assert isinstance(Allocation.of(1e20, 1e9, 2e10).loss, float)


def test_power_law_fit_in_log_space():
    x = np.geomspace(1e18, 1e22, 5)
    pl = PowerLaw.fit(x, 0.1 * x**0.5)
    assert pl.coef == pytest.approx(0.1) and pl.exponent == pytest.approx(0.5)
    assert pl.predict(1e20) == pytest.approx(1e9)
    with pytest.raises(FitError, match="at least 2 points"):
        PowerLaw.fit([1.0], [2.0])


def test_predict_is_a_loss_at_N_D_and_compute_optimal_an_allocation_on_every_result():
    df = synthetic_runs(CHINCHILLA, noise=0.0)
    results = {
        "approach1": fit_approach1(synthetic_curves(CHINCHILLA)),
        "approach2": fit_approach2(df),
        "approach3": fit_approach3(df, grid="small"),
        "kaplan": fit_kaplan(df),
    }
    for key, r in results.items():
        al = r.compute_optimal(1e21)
        assert isinstance(al, Allocation) and al.C == 1e21 and al.N_opt > 0, key
        if key in ("approach3", "kaplan"):  # laws of L(N, D): predict is that loss
            assert r.predict(al.N_opt, al.D_opt) == pytest.approx(al.loss, rel=1e-9), key
        else:  # allocation laws have no L(N, D), so no predict at all (never a second meaning)
            assert not hasattr(r, "predict"), key
    # a fit's .law is the same class as the published laws, and agrees with the fit
    from analysis.laws.published import CHINCHILLA_APPROACH3, KAPLAN_JOINT

    assert type(results["approach3"].law) is type(CHINCHILLA_APPROACH3) is ParametricLaw
    assert type(results["kaplan"].law) is type(KAPLAN_JOINT) is KaplanJointLaw
    for key in ("approach3", "kaplan"):
        r = results[key]
        assert r.law.predict(1e9, 2e10) == pytest.approx(r.predict(1e9, 2e10), rel=1e-12)
        assert r.law.compute_optimal(1e21).N_opt == pytest.approx(r.compute_optimal(1e21).N_opt, rel=1e-12)
    a2 = results["approach2"]
    assert a2.law.compute_optimal(1e21).loss == pytest.approx(a2.compute_optimal(1e21).loss)
