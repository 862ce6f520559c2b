"""Approach 3's and Kaplan's bootstraps calibrated on this sweep's design (issue 20 item 4): the double loop's
cached calibration when present, else Approach 3's single loop."""

from __future__ import annotations

import pandas as pd

from analysis.pipeline.inputs import fit_functions
from analysis.pipeline.quantities import CalibratedQuantities
from analysis.pipeline.result import Analysis
from analysis.sections import attempt as _attempt

LAW_CALIBRATION_SIMS = 100
# laws whose interval the report calibrates itself by one loop of simulated sweeps when the double loop's cache is
# absent (analysis/uncertainty/parametric_check.py): Approach 3, all simulated sweeps in one batched L-BFGS
SINGLE_LOOP = ("approach3",)
SINGLE_LOOP_SIMS = 200
LAW_CALIBRATION_RESAMPLES = 100


def law_calibrations(an: Analysis, compute: bool, cache_dir) -> None:
    """Approach 3's and Kaplan's run bootstraps calibrated on this sweep's design: computed when ``compute``, else
    read from ``cache_dir`` where a earlier ``python -m analysis.studies lawcalibration`` wrote it."""
    from analysis.uncertainty import law_calibration as lc

    reason = an.scan["reason"].astype(str) if "reason" in an.scan.columns else pd.Series(dtype=str)
    n_flagged = int(reason.str.startswith("quality gate (stalled)").sum())
    q = CalibratedQuantities(an.budgets)
    settings = dict(
        level=an.level,
        n_sims=LAW_CALIBRATION_SIMS,
        n_resamples=LAW_CALIBRATION_RESAMPLES,
        seed=None,
        jump=[0.15, 0.25],
        n_flagged=n_flagged,
    )
    plan = fit_functions()
    for key in ("approach3", "kaplan"):
        fit = an.fits.get(key)
        if fit is None:
            continue
        if compute:
            cal = _attempt(
                an.notes,
                f"{key}_calibration",
                "calibration not computed",
                lc.calibrate_law,
                key,
                fit,
                an.runs,
                q,
                fit_fn=plan[key][0],
                n_flagged=n_flagged,
                level=an.level,
                n_sims=LAW_CALIBRATION_SIMS,
                n_resamples=LAW_CALIBRATION_RESAMPLES,
                cache_dir=cache_dir,
            )
        else:
            cal = lc.cached(cache_dir, an.runs, key, fit, list(q(fit)), **settings)
        if cal is None and key in SINGLE_LOOP and an.boots.get(key) is not None:
            # no double-loop calibration in the cache: the single loop with its level calibrated by a fast double
            # bootstrap (~1 s; parametric_check.calibrated_half_widths; RESULTS.md: its coverage by setting)
            cal = _attempt(
                an.notes,
                f"{key}_calibration",
                "single-loop calibration not computed",
                lc.single_loop,
                key,
                fit,
                an.runs,
                q,
                n_flagged=n_flagged,
                level=an.level,
                n_sims=SINGLE_LOOP_SIMS,
                seed=an.seed,
            )
        if cal is not None:
            an.law_calibrations[key] = cal
