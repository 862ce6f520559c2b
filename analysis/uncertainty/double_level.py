"""The fast double bootstrap's level (Davidson & MacKinnon 2007): one sweep simulated from each simulated sweep's own
fit says how far the single level of simulation is off, and the level carried moves by as much. Shared by Approach
3's and Kaplan's intervals (``parametric_check``) and Approach 2's t-widened interval (``calibration``)."""

from __future__ import annotations

import numpy as np

__all__ = ["calibrated_level", "corrected_coverage"]


def calibrated_level(
    t1: np.ndarray, t2: np.ndarray, level: float, widen_only: bool = False
) -> tuple[float, float, float]:
    """(the single loop's half-width, the calibrated level lambda, the half-width carried) from level-1 errors
    ``t1`` = |level-1 estimate - fit| and level-2 errors ``t2`` = |level-2 estimate - its level-1 fit| (NaN:
    failed fits, left out; under 10 of them, lambda = ``level``): lambda = share of t2 <= the ``level`` quantile of t1
    (kept in [0.5, 1 - 1/n]), and the
    half-width the lambda quantile of t1. If the spread one level down is k times the spread one level up (a noise
    estimate biased by k, say), lambda makes the half-width the ``level`` quantile of the real error. With
    ``widen_only`` lambda is at least ``level``."""
    a1, a2 = t1[np.isfinite(t1)], t2[np.isfinite(t2)]
    if len(a1) < 10:  # (nearly) every simulated fit failed: no interval
        return float("nan"), float("nan"), float("nan")
    plain = float(np.quantile(a1, level))
    lam = float(np.clip(np.mean(a2 <= plain), 0.5, 1 - 1 / len(a1))) if len(a2) >= 10 else level
    if widen_only:
        lam = max(lam, level)
    return plain, lam, float(np.quantile(a1, lam))


def corrected_coverage(t1: np.ndarray, t2: np.ndarray, factor: float) -> float:
    """The coverage the fast double bootstrap predicts on the real sweep for the interval estimate ± ``factor`` x
    half-width, from level-1 errors ``t1`` and level-2 errors ``t2`` in half-widths (NaN left out): the level-1
    coverage p = share of t1 <= factor, moved as ``calibrated_level`` moves a level, F1(Q2(p)) (F1 the share of t1
    at or below, Q2 the quantile of t2). Where level 2 errs as level 1 does it is p; where level 2 errs more (a
    simulation whose truth is the estimate puts its design farther off centre than the real one is) it is above
    p. For the factor ``calibrated_level`` returns it is the nominal level."""
    a1, a2 = t1[np.isfinite(t1)], t2[np.isfinite(t2)]
    if len(a1) < 10:
        return float("nan")
    p = float(np.mean(a1 <= factor))
    if len(a2) < 10:
        return p
    return float(np.mean(a1 <= np.quantile(a2, p)))
