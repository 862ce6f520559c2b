"""The input checks every fit shares (analysis/data/columns.py: take): an empty frame, a missing, non-numeric or
non-positive column, or something that is not a DataFrame is an error naming the column, the argument and the row.
"""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.data.columns import FitError
from analysis.fits.approach1 import fit_approach1
from analysis.fits.approach2 import fit_approach2
from analysis.fits.approach3 import fit_approach3
from analysis.fits.kaplan import fit_kaplan
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs

FITS = [fit_approach2, fit_approach3, fit_kaplan]


@pytest.mark.parametrize("fit", FITS + [fit_approach1])
def test_empty_frame_is_a_clear_error(fit):
    with pytest.raises(FitError, match="empty"):
        fit(pd.DataFrame(columns=["N", "D", "C", "loss", "budget", "run_id", "schedule_complete"]))


@pytest.mark.parametrize("fit", FITS)
def test_missing_column_error_names_the_column_and_the_argument(fit):
    df = synthetic_runs(CHINCHILLA).drop(columns="loss")
    with pytest.raises(FitError, match=r"column 'loss' \(loss_col\) is not in runs.*loss_col="):
        fit(df)
    df = synthetic_runs(CHINCHILLA).rename(columns={"D": "tokens"})
    with pytest.raises(FitError, match=r"column 'D' \(d_col\)"):
        fit(df)


@pytest.mark.parametrize("fit", FITS)
def test_non_positive_size_error_names_the_column_and_the_row(fit):
    df = synthetic_runs(CHINCHILLA)
    df.loc[5, "N"] = -3.0
    with pytest.raises(FitError, match=r"column 'N' \(n_col\) must be finite and > 0; row 5 has -3.0"):
        fit(df)


def test_non_numeric_column_and_non_frame_are_clear_errors():
    df = synthetic_runs(CHINCHILLA)
    df["loss"] = "high"
    with pytest.raises(FitError, match=r"column 'loss' \(loss_col\) must be numeric"):
        fit_approach3(df)
    with pytest.raises(TypeError, match="runs must be a pandas DataFrame, got list"):
        fit_approach2([1, 2, 3])
