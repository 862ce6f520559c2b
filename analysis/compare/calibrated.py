"""The multiplier calibrations applied to a comparison: Approach 3's M on every pair (``calibration``), and
Approach 2's when it is the primary law (``calibration_approach2``); each pair's table gets the calibrated interval
(M_cal, M_cal_lo, M_cal_hi), and the primary law's carries it (M_carried...), with ``cmp.carried`` saying which
method. A pair whose calibration cannot be made gets a note and keeps what it had."""

from __future__ import annotations

import numpy as np

from analysis.compare.calibration import DEFAULT_RESAMPLES, DEFAULT_SIMS, calibrate_multiplier, carried_interval

CARRIED_WHY = (
    "chosen per comparison by simulating these sweeps' designs from their fitted laws and noise (section "
    "'Calibration of the multiplier's interval')"
)


def calibrate(cmp, n_sims: int = DEFAULT_SIMS, n_resamples: int = DEFAULT_RESAMPLES, cache_dir=None) -> None:
    """Calibrate each pair's Approach 3 M on ``cmp`` (a ``core.Comparison``), then Approach 2's where it is the
    primary law, and carry the primary law's calibrated interval."""
    _calibrate_approach3(cmp, n_sims, n_resamples, cache_dir)
    if cmp.law == "approach2":
        _calibrate_approach2(cmp, n_sims, n_resamples, cache_dir)


def _carry(cmp, law: str) -> None:
    cals = [c for c in cmp.calibrations if c.law == law]
    if cals and cmp.law == law:
        kinds = sorted({c.carried for c in cals})
        cmp.carried = kinds[0] if len(kinds) == 1 else "per pair"
        cmp.carried_why = CARRIED_WHY


def _apply(cmp, cal, tab, fa, fb) -> None:
    tab["M_cal"], tab["M_cal_lo"], tab["M_cal_hi"] = carried_interval(cal, tab, fa, fb, cmp.level)
    if cmp.law == cal.law:
        tab["M_carried"], tab["M_carried_lo"], tab["M_carried_hi"] = tab["M_cal"], tab["M_cal_lo"], tab["M_cal_hi"]


def _flagged(cmp, k: int) -> tuple[int, int]:
    return cmp.runs[0].attrs.get("n_flagged", 0), cmp.runs[k + 1].attrs.get("n_flagged", 0)


def _calibrate_approach3(cmp, n_sims: int, n_resamples: int, cache_dir) -> None:
    from analysis.compare.shared_exponent import shared_undetermined, shared_vector

    frs = cmp.frontiers.get("approach3")
    if not frs or "approach3" not in cmp.pairs:
        cmp.notes.append("M's calibration not run: Approach 3 was not fitted to every sweep")
        return
    t = cmp.test
    K = len(cmp.names)
    shared_ok = t is not None and not shared_undetermined(t)
    for k, pair in enumerate(cmp.pairs["approach3"]):
        x0 = None
        if shared_ok:
            x = shared_vector(t)  # (ln E, α, β, ln A_0..K-1, ln B_0..K-1) -> this pair's 7
            x0 = np.array([x[0], x[1], x[2], x[3], x[3 + k + 1], x[3 + K], x[3 + K + k + 1]])
        tab = pair.table
        try:
            cal = calibrate_multiplier(
                cmp.runs[0],
                cmp.runs[k + 1],
                frs[0].fit,
                frs[k + 1].fit,
                tab["C"].to_numpy(float),
                cmp.targets,
                shared_x0=x0,
                shared_scale=t.scale if shared_ok else None,
                n_flagged=_flagged(cmp, k),
                level=cmp.level,
                n_sims=n_sims,
                n_resamples=n_resamples,
                pair=f"{pair.b} vs {pair.a}",
                cache_dir=cache_dir,
            )
        except (ValueError, ArithmeticError) as e:
            cmp.notes.append(f"M's calibration for {pair.b} vs {pair.a} not made: {e}")
            continue
        cmp.calibrations.append(cal)
        _apply(cmp, cal, tab, frs[0], frs[k + 1])
    _carry(cmp, "approach3")


def _calibrate_approach2(cmp, n_sims: int, n_resamples: int, cache_dir) -> None:
    """Approach 2's M on each pair, from the same truth (the sweeps' Approach 3 laws) and noise."""
    from analysis.compare.calibration_approach2 import calibrate_multiplier_approach2

    f2, f3 = cmp.frontiers.get("approach2"), cmp.frontiers.get("approach3")
    if not f2 or not f3 or "approach2" not in cmp.pairs or "approach3" not in cmp.pairs:
        cmp.notes.append("Approach 2's M not calibrated: its truth is the sweeps' Approach 3 laws, not fitted to all")
        return
    for k, pair in enumerate(cmp.pairs["approach2"]):
        tab = pair.table
        try:
            cal = calibrate_multiplier_approach2(
                cmp.runs[0],
                cmp.runs[k + 1],
                f3[0].fit,
                f3[k + 1].fit,
                f2[0].fit,
                f2[k + 1].fit,
                tab["C"].to_numpy(float),
                cmp.targets,
                n_flagged=_flagged(cmp, k),
                level=cmp.level,
                n_sims=n_sims,
                n_resamples=n_resamples,
                pair=f"{pair.b} vs {pair.a}",
                cache_dir=cache_dir,
                truth=np.log(cmp.pairs["approach3"][k].table["M"].to_numpy(float)),  # the same C: one grid
            )
        except (ValueError, ArithmeticError) as e:
            cmp.notes.append(f"Approach 2's M calibration for {pair.b} vs {pair.a} not made: {e}")
            continue
        cmp.calibrations.append(cal)
        _apply(cmp, cal, tab, f2[0], f2[k + 1])
    _carry(cmp, "approach2")
