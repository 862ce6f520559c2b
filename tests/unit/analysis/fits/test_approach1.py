"""Approach 1, the envelope of training curves (analysis/fits/approach1.py), against curves drawn from known laws
(analysis.studies.synthetic).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.data.columns import FitError
from analysis.fits.approach1 import fit_approach1
from analysis.studies.synthetic import CHINCHILLA, SECOND_TRUTH, synthetic_curves

TRUTHS = [pytest.param(CHINCHILLA, id="chinchilla"), pytest.param(SECOND_TRUTH, id="second")]


@pytest.mark.parametrize("law", TRUTHS)
def test_approach1_recovers_exponent_approximately_from_curves(law):
    """30 model sizes (1e7..3e9), every logged point a finished schedule, no noise: the envelope picks discrete
    sizes, so the exponent is approximate: |a - a*| < 0.03; with 0.5% noise and 16 sizes, < 0.05."""
    r = fit_approach1(synthetic_curves(law, sizes=np.geomspace(1e7, 3e9, 30)))
    assert abs(r.a - law.a) < 0.03 and r.a + r.b == pytest.approx(1.0, abs=1e-9)
    noisy = fit_approach1(synthetic_curves(law, noise=0.005, seed=2))
    assert abs(noisy.a - law.a) < 0.05
    assert noisy.envelope["loss"].is_monotonic_decreasing


def test_approach1_uses_only_points_where_the_schedule_had_finished():
    curves = synthetic_curves(CHINCHILLA, sizes=np.geomspace(1e7, 3e9, 12), complete="last")
    r = fit_approach1(curves)
    assert r.n_points == 12  # one finished point a run
    with pytest.raises(FitError, match="'schedule_complete'.*only_schedule_complete=False"):
        fit_approach1(curves.drop(columns="schedule_complete"))
    assert fit_approach1(curves.drop(columns="schedule_complete"), only_schedule_complete=False).n_points == 720


def test_a_size_stopped_early_was_sampled_so_its_neighbour_on_the_envelope_is_no_edge():
    """Runs stopped early (train.early_stop_frac) have no finished schedule, so no envelope point; their size was
    still trained and found worse. Before, the smallest finished size counted as the edge and its envelope points
    were left out of the fit: on a real 10-minute sweep whose smallest size was stopped at three budgets, a = 0."""
    curves = synthetic_curves(CHINCHILLA, sizes=np.geomspace(1e7, 3e9, 12), complete="last")
    full = fit_approach1(curves)
    n_env = full.envelope.loc[full.envelope["used"], "N"].min()  # the smallest size the fit uses
    stopped = curves["N"] < n_env
    assert stopped.any()
    cut = curves.copy()
    cut.loc[stopped, "schedule_complete"] = False  # those runs' curves end before their schedule does
    r = fit_approach1(cut)
    assert r.envelope.loc[r.envelope["N"] == n_env, "used"].all()  # still an interior size
    assert r.a == pytest.approx(full.a, rel=1e-12)
    # the batched bootstrap applies the same rule: the identity resample refits to the same law
    (same,) = r.refit_resamples(cut, [np.arange(len(cut))])
    assert same.a == pytest.approx(r.a, rel=1e-12)
