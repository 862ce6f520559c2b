"""Approach 3's and Kaplan's bootstraps calibrated on this sweep's design (issue 20 item 4): the double loop's
cached calibration when present, else the single loop with its level calibrated by a fast double bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.pipeline.inputs import fit_functions
from analysis.pipeline.quantities import CalibratedQuantities
from analysis.pipeline.result import Analysis, fit_intervals, intervals, n_stalled, qname, tokens_at
from analysis.sections import attempt as _attempt

LAW_CALIBRATION_SIMS = 100
# laws whose interval the report calibrates itself by one loop of simulated sweeps when the double loop's cache is
# absent (analysis/uncertainty/parametric_check.py): Approach 3 (all simulated sweeps in one batched L-BFGS) and
# Kaplan (in one batched Levenberg-Marquardt)
SINGLE_LOOP = ("approach3", "kaplan")
SINGLE_LOOP_SIMS = 200
LAW_CALIBRATION_RESAMPLES = 100


def law_calibrations(an: Analysis, compute: bool, cache_dir) -> None:
    """Approach 3's and Kaplan's run bootstraps calibrated on this sweep's design: computed when ``compute``, else
    read from ``cache_dir`` where a earlier ``python -m analysis.studies lawcalibration`` wrote it."""
    from analysis.uncertainty import law_calibration as lc

    n_flagged = n_stalled(an)
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
            # bootstrap (~1 s a law; parametric_check.calibrated_half_widths; RESULTS.md: its coverage by setting)
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
            failed = an.notes.get(f"{key}_calibration")
            if (
                failed and getattr(cal, "carried", "") == "fast-double"
            ):  # the double loop failed, the single one did not
                an.notes[f"{key}_calibration"] = f"{failed}; the single loop's interval is carried instead"
            an.law_calibrations[key] = cal
            if getattr(cal, "carried", "runs") != "runs":
                carried_band(an, key)


def carried_band(an: Analysis, key: str) -> None:
    """Fit ``key``'s band of N_opt and D_opt made to follow the calibrated interval it carries: along the band's
    grid, the run bootstrap's half-width in ln N_opt scaled by the ratio of the carried to the bootstrap width at the
    report's budgets (interpolated in ln C, held beyond them), centred on the estimate; D_opt on each budget's own
    compute (``result.tokens_at``). Otherwise the figure would draw the bootstrap the table no longer shows."""
    band = an.bands.get(key)
    if band is None or not len(band):
        return
    shown, boot = fit_intervals(an, key), intervals(an.boots.get(key))
    xs, fs = [], []
    for c in an.budgets:
        q = qname("N_opt", c)
        if q in shown and q in boot:
            (lo, hi), (b_lo, b_hi) = shown[q], boot[q]
            if min(lo, b_lo) > 0 and hi > lo and b_hi > b_lo:
                xs.append(np.log(c))
                fs.append(np.log(hi / lo) / np.log(b_hi / b_lo))
    if not xs:
        return
    order = np.argsort(xs)
    n_band = band[band["quantity"] == "N_opt"]
    C = n_band["C"].to_numpy(float)
    scale = np.interp(np.log(C), np.asarray(xs)[order], np.asarray(fs)[order])
    al = an.allocators[key].compute_optimal(C)
    n_star = np.broadcast_to(np.asarray(al.N_opt, dtype=float), C.shape)
    d_star = np.broadcast_to(np.asarray(al.D_opt, dtype=float), C.shape)
    half = np.log(n_band["hi"].to_numpy(float) / n_band["lo"].to_numpy(float)) / 2 * scale
    rows = []
    for c, n, d, h in zip(C, n_star, d_star, half):
        lo, hi = n * np.exp(-h), n * np.exp(h)
        d_lo, d_hi = tokens_at(float(n), float(d), np.array([hi, lo]), an.conversion.ratio)
        rows.append(dict(quantity="N_opt", C=c, lo=lo, hi=hi))
        rows.append(dict(quantity="D_opt", C=c, lo=float(d_lo), hi=float(d_hi)))
    an.bands[key] = pd.DataFrame(rows, columns=["quantity", "C", "lo", "hi"])
