"""Approach 2's intervals beyond the run bootstrap: the Student-t interval of its line, each budget's within-budget
interval of its minimum, and the interval chosen by simulating this sweep's own design (issue 20)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.pipeline.result import Analysis, bands, n_stalled, tokens_at
from analysis.sections import attempt as _attempt


def approach2_intervals(an: Analysis, grid_c) -> None:
    """Approach 2's calibrated Student-t intervals (a, N_opt at the budgets and along the band grid, which then
    replaces the run bootstrap's N_opt band) and each budget's within-budget bootstrap interval of its minimum."""
    from analysis.fits.approach2 import Approach2Result
    from analysis.fits.minima import bootstrap_minimum
    from analysis.uncertainty.intervals import isoflop_power_law_interval

    a2 = an.fits["approach2"]
    assert isinstance(a2, Approach2Result)  # only called when Approach 2 was fitted
    used = a2.per_budget[a2.per_budget["used"]]
    runs = used_runs(an, used)
    # the t interval is calibrated for spline minima; with local-parabola minima (budgets of under 9 sizes, 'auto') it
    # under-covered (their small bias is not in the line's scatter), so there the run bootstrap (which over-covers)
    # stays the interval and the t interval is shown beside it (coverages: analysis/README.md, "Measured")
    if len(used) >= 3:
        targets = np.concatenate([np.asarray(an.budgets, float), np.asarray(grid_c, float)])
        t = _attempt(
            an.notes,
            "approach2_t_interval",
            "Student-t interval not computed",
            isoflop_power_law_interval,
            runs,
            targets,
            method=a2.estimator,
            scheme="t",
            level=an.level,
        )
        if t is not None and not (used["estimator"] == "spline").all():
            an.a2.t_check, t = t, None
        if t is not None:
            an.a2.interval = t
            an.bands["approach2"] = carried_band(an, t, grid_c)
    rows = []
    method = dict(zip(used["budget"], used["estimator"]))  # the estimator each budget's minimum actually used
    for b, g in runs.groupby("budget"):
        try:
            m = bootstrap_minimum(
                np.log(g["N"].to_numpy(float)),
                g["loss"].to_numpy(float),
                method.get(b, a2.estimator),
                n_resamples=200,
                level=an.level,
                seed=an.seed,
            )
            rows.append(dict(budget=float(b), N_lo=float(np.exp(m.lo)), N_hi=float(np.exp(m.hi)), n_failed=m.n_failed))
        except ValueError as e:
            an.notes[f"approach2_minimum_{b:.3g}"] = f"no within-budget interval: {e}"
    an.a2.minima = pd.DataFrame(rows, columns=["budget", "N_lo", "N_hi", "n_failed"])


def approach2_calibration(an: Analysis, grid_c, cache_dir) -> None:
    """Simulate this sweep's design (``calibrate_approach2``) and carry the interval it chooses: the t interval,
    widened by the simulated factor where it needs it, or a bootstrap; the run bootstrap stays beside it."""
    from analysis.fits.approach2 import Approach2Result
    from analysis.uncertainty.calibration import calibrate_approach2
    from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

    a2 = an.fits["approach2"]
    assert isinstance(a2, Approach2Result)  # only called when Approach 2 was fitted
    used = a2.per_budget[a2.per_budget["used"]]
    if len(used) < 3:
        return
    runs = used_runs(an, used)
    n_flagged = n_stalled(an)
    targets = np.concatenate([np.asarray(an.budgets, float), np.asarray(grid_c, float)])
    shown = ["a"] + [n_opt_name(b) for b in an.budgets]
    cal = _attempt(
        an.notes,
        "approach2_calibration",
        "calibration not computed",
        calibrate_approach2,
        runs,
        targets,
        a2=a2,
        law=an.fits.get("approach3"),
        n_flagged=n_flagged,
        level=an.level,
        estimator=a2.estimator,
        cache_dir=cache_dir,
        quantities=shown,
    )
    if cal is None:
        return
    an.a2.calibration = cal
    t = an.a2.interval or an.a2.t_check
    if cal.carried in ("t", "t-widened") and t is not None:
        carried = cal.apply(t)
    elif cal.carried == "budgets":
        carried = _attempt(
            an.notes,
            "approach2_calibration_budgets",
            "pairs bootstrap not computed",
            isoflop_power_law_interval,
            runs,
            targets,
            method=a2.estimator,
            scheme="budgets",
            n_resamples=max(an.n_boot, 200),
            level=an.level,
            seed=an.seed,
        )
    else:
        carried = None  # the run bootstrap
    an.a2.t_check = None if cal.carried == "t" else t
    an.a2.interval = carried
    if carried is not None:
        an.bands["approach2"] = carried_band(an, carried, grid_c)
    elif an.boots.get("approach2") is not None:
        an.bands["approach2"] = bands(an.boots["approach2"], grid_c)


def carried_band(an: Analysis, interval, grid_c) -> pd.DataFrame:
    """The N_opt band of a carried interval of Approach 2's line along ``grid_c``, and the D_opt band that follows
    it at each budget (C = 6 N D r(N) held fixed, ``result.tokens_at``), not the run bootstrap's."""
    from analysis.uncertainty.intervals import n_opt_name

    al = an.allocators["approach2"].compute_optimal(np.asarray(grid_c, float))
    rows = []
    for c, n, d in zip(grid_c, np.atleast_1d(al.N_opt), np.atleast_1d(al.D_opt)):
        lo, hi = interval.interval(n_opt_name(c))
        d_lo, d_hi = tokens_at(float(n), float(d), np.array([hi, lo]), an.conversion.ratio)
        rows.append(dict(quantity="N_opt", C=c, lo=lo, hi=hi))
        rows.append(dict(quantity="D_opt", C=c, lo=float(d_lo), hi=float(d_hi)))
    return pd.DataFrame(rows, columns=["quantity", "C", "lo", "hi"])


def used_runs(an: Analysis, used: pd.DataFrame) -> pd.DataFrame:
    """The runs of the budgets in ``used`` (Approach 2's per-budget rows it fitted), each with its IsoFLOP group as
    its budget."""
    from analysis.fits.approach2 import isoflop_groups

    runs = an.runs.assign(budget=isoflop_groups(an.runs))
    return runs[np.isin(runs["budget"], used["budget"])]
