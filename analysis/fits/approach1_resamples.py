"""Approach 1 refitted on a thousand resamples of runs in numpy: the bootstrap's fast path (issue 19 item 5).

A resample of Approach 1 draws whole runs (curves); its envelope is the lower envelope of the drawn runs' points
(a run drawn twice adds the same points again, which the strict "lower than every bin below" rule ignores), so each
resample is a mask over the curve points sorted once by C. The binning, the envelope and the edge-size rule are
``fit_approach1``'s, on arrays instead of a DataFrame a resample; the numbers are the same.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions
from analysis.laws.forms import AllocationLaw, PowerLaw

EMPTY_ENVELOPE = pd.DataFrame(columns=["C", "N", "D", "loss", "run_id", "used"])  # a batched result keeps no envelope


def refit(result, curves: pd.DataFrame, resamples, make, n_bins: int | None = 40) -> list | None:
    """``fit_approach1`` (default settings) of every resample of rows, as ``Approach1Result``s whose ``envelope``
    is empty (None where ``fit_approach1`` raises), built by ``make`` (the result class); None when the curves lack
    the default columns."""
    cols = ("N", "D", "C", "loss", "run_id", "schedule_complete")
    if any(c not in curves.columns for c in cols):
        return None
    num = {k: pd.to_numeric(curves[k], errors="coerce").to_numpy(float) for k in ("N", "D", "C", "loss")}
    keep = ~np.isnan(num["loss"])  # fit_approach1 drops steps without a loss, refuses other bad values
    if not all(np.all(np.isfinite(v[keep]) & (v[keep] > 0)) for v in num.values()):
        return None
    ok = keep & curves["schedule_complete"].fillna(False).astype(bool).to_numpy()
    rows = np.flatnonzero(ok)
    order = rows[np.argsort(num["C"][rows], kind="stable")]
    lc, y = np.log(num["C"][order]), num["loss"][order]
    N, D, C = num["N"][order], num["D"][order], num["C"][order]
    codes_all, _ = pd.factorize(curves["run_id"])
    codes = codes_all[order]
    sampled_n, sampled_codes = num["N"][keep], codes_all[keep]  # the edge rule's sizes: unfinished schedules too
    fc, pc = conventions(curves)
    out: list = []
    for idx in resamples:
        drawn = np.zeros(codes_all.max() + 1, bool)
        drawn[codes_all[np.asarray(idx, int)]] = True
        m = drawn[codes]
        if not m.any():
            out.append(None)
            continue
        x, yy = lc[m], y[m]
        pos = np.flatnonzero(m)
        if n_bins:
            edges = np.linspace(x[0], x[-1], n_bins + 1)
            which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
            srt = np.lexsort((yy, which))  # by bin, then loss: each bin's first is its minimum
            first = srt[np.r_[True, which[srt][1:] != which[srt][:-1]]]
            picks = np.sort(first)
        else:
            picks = np.arange(x.size)
        py = yy[picks]
        best_before = np.r_[np.inf, np.minimum.accumulate(py)[:-1]]
        env = pos[picks[py < best_before]]
        Nm = sampled_n[drawn[sampled_codes]]
        used = np.ones(env.size, bool)
        if np.unique(Nm).size >= 3:
            used = (N[env] > Nm.min()) & (N[env] < Nm.max())
        u = env[used]
        if np.unique(C[u]).size < 2:
            out.append(None)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                law = AllocationLaw(
                    name="approach1",
                    n_opt=PowerLaw.fit(C[u], N[u]),
                    d_opt=PowerLaw.fit(C[u], D[u]),
                    source="fitted to this sweep",
                    flops_convention=fc,
                    params_convention=pc,
                )
        except (FitError, ValueError, ArithmeticError):
            out.append(None)
            continue
        out.append(
            make(
                law=law,
                envelope=EMPTY_ENVELOPE,
                n_runs=int(drawn.sum()),
                n_points=int(m.sum()),
                data=None,
                resample_group=result.resample_group,
            )
        )
    return out
