"""The Kaplan forms (analysis/fits/kaplan.py): the joint L(N, D) and the single-variable L(N), L(D) with an offset,
recovered from runs drawn from Kaplan et al. 2020's Table 2 constants.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.fits.kaplan import fit_kaplan
from analysis.laws.forms import KaplanJointLaw, OffsetPowerLaw
from analysis.studies.synthetic import synthetic_runs


def _kaplan_grid_runs(E, noise):
    law = KaplanJointLaw("truth", N_c=6.4e13, D_c=1.8e13, alpha_N=0.076, alpha_D=0.103, source="", E=E)
    N, D = np.meshgrid(np.geomspace(1e6, 1e9, 8), np.geomspace(1e8, 1e11, 8))
    return law, synthetic_runs(law, design=pd.DataFrame({"N": N.ravel(), "D": D.ravel()}), noise=noise)


def test_kaplan_joint_law_recovers_its_parameters():
    """Kaplan Table 2 constants over an 8x8 (N, D) grid. No offset, 0.2% noise: alpha_N, alpha_D within 0.003 and
    N_c, D_c within 20%. With an offset E = 1.5 and no noise: all five within 1%."""
    law, df = _kaplan_grid_runs(0.0, 0.002)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_kaplan(df, offset=False)
    assert abs(r.alpha_N - law.alpha_N) < 3e-3 and abs(r.alpha_D - law.alpha_D) < 3e-3
    assert abs(math.log(r.N_c / law.N_c)) < math.log(1.2) and abs(math.log(r.D_c / law.D_c)) < math.log(1.2)
    assert r.E == 0.0 and r.converged

    law, df = _kaplan_grid_runs(1.5, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_kaplan(df)
    for got, want in ((r.E, 1.5), (r.alpha_N, 0.076), (r.alpha_D, 0.103), (r.N_c, 6.4e13), (r.D_c, 1.8e13)):
        assert got == pytest.approx(want, rel=1e-2)
    assert r.predict(1e8, 1e10) == pytest.approx(law.predict(1e8, 1e10), rel=1e-4)
    assert r.compute_optimal(1e20).N_opt == pytest.approx(law.compute_optimal(1e20).N_opt, rel=0.05)


def test_kaplan_single_variable_forms_recover_their_parameters():
    """L(N) = 1.7 + (8.8e13/N)^0.076 (Kaplan eq. 1.1 plus an offset): the best loss at each N recovers E within
    0.01, alpha_N within 0.002 and N_c within 10%; OffsetPowerLaw alone does the same for L(D)."""
    N = np.geomspace(1e6, 1e10, 10)
    runs = pd.DataFrame({"N": np.repeat(N, 3), "D": np.tile([1e9, 3e9, 1e10], 10)})
    runs["C"] = 6 * runs["N"] * runs["D"]
    # smaller D only hurts: the best run of each N sits on L(N)
    runs["loss"] = 1.7 + (8.8e13 / runs["N"]) ** 0.076 + 0.05 * (runs["D"] < 5e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = fit_kaplan(runs)
    assert abs(r.l_n.E - 1.7) < 0.01 and abs(r.l_n.alpha - 0.076) < 2e-3
    assert abs(math.log(r.l_n.x_c / 8.8e13)) < math.log(1.1)
    assert r.predict_n(1e8) == pytest.approx(1.7 + (8.8e13 / 1e8) ** 0.076, rel=1e-3)
    D = np.geomspace(1e8, 1e12, 9)
    law_d = OffsetPowerLaw.fit(D, 1.5 + (5.4e13 / D) ** 0.095)
    assert law_d.E == pytest.approx(1.5, abs=0.01) and law_d.alpha == pytest.approx(0.095, abs=2e-3)
    no_offset = OffsetPowerLaw.fit(D, (5.4e13 / D) ** 0.095, offset=False)
    assert no_offset.x_c == pytest.approx(5.4e13, rel=1e-6) and no_offset.alpha == pytest.approx(0.095)
