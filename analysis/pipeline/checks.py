"""Checks of a sweep's fits beside the fits themselves: a fit's doubts in plain words, Approach 3's E against a
synthetic source's known entropy, and what repeating data changes."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from analysis.pipeline.result import Analysis


def doubts(key: str, fit) -> str | None:
    """A plain-words warning when a fit converged to something the data cannot support."""
    if key.startswith("approach3"):
        bits = []
        if not (0 < fit.alpha < 2 and 0 < fit.beta < 2):
            bits.append(
                f"α = {fit.alpha:.3g}, β = {fit.beta:.3g} lie outside (0, 2), the range of the starting grid "
                "and of every published fit"
            )
        if fit.E < 1e-3:
            bits.append(f"E = {fit.E:.3g}: no irreducible loss")
        if not fit.converged:
            bits.append(f"L-BFGS did not converge ({fit.message})")
        if bits:
            return (
                "the parametric law is poorly constrained by these runs (" + "; ".join(bits) + "): its "
                "allocation and loss predictions should not be trusted; add sizes and budgets"
            )
    if key in ("approach1", "approach2") and not 0 < fit.a < 1:
        return f"N_opt ∝ C^{fit.a:.3g}: an exponent outside (0, 1) means the sweep does not bracket the optimum"
    return None


def truth(an: Analysis) -> None:
    """Where the runs' data has a known entropy rate (a synthetic source), Approach 3's E and its interval beside it."""
    from analysis.fits.approach3 import Approach3Result
    from analysis.uncertainty.truth import TruthError, check_irreducible, known_truth

    try:
        truth = known_truth(an.runs)
    except TruthError as e:
        an.notes["truth"] = f"no truth check: {e}"
        return
    a3, boot = an.fits.get("approach3"), an.boots.get("approach3")
    if truth is None or a3 is None:
        return
    assert isinstance(a3, Approach3Result)
    if boot is None:
        an.notes["truth"] = "no truth check: Approach 3 has no bootstrap interval of E (bootstrap off)"
        return
    lo, hi = boot.interval("E")
    an.truth = check_irreducible(truth, a3.E, lo, hi, level=an.level)


def repeated_data(an: Analysis) -> None:
    """Runs beyond ~4 epochs (``datacon.check_epochs``, its warning kept), and when any run repeats its data, how
    much the data-constrained correction moves the loss predicted at each budget's N_opt (``prediction_shift``)."""
    from analysis.fits import datacon

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", datacon.RepeatedDataWarning)
        an.repeated.runs = datacon.check_epochs(an.runs)
    an.repeated.warning = "; ".join(str(w.message) for w in caught if w.category is datacon.RepeatedDataWarning)
    ep = pd.to_numeric(an.runs.get("epochs", pd.Series(dtype=float)), errors="coerce")
    if not (ep > 1).any() or "unique_train_tokens" not in an.runs.columns:
        return
    fit = an.fits.get("datacon")
    assert fit is None or isinstance(fit, datacon.DataConstrainedFit)
    law = fit.law if fit is not None else datacon.MUENNIGHOFF_2023
    an.repeated.law_name = (
        "the data-constrained law fitted to this sweep"
        if fit is not None
        else "Muennighoff et al. 2023's published constants (no fit to this sweep)"
    )
    U = float(pd.to_numeric(an.runs["unique_train_tokens"], errors="coerce").max())
    key = next((k for k in (an.headline, "approach3", "approach2") if k and an.allocators.get(k) is not None), None)
    if key is None or not np.isfinite(U) or U <= 0:
        return
    al = an.allocators[key].compute_optimal(np.asarray(an.budgets, float))
    shift = datacon.prediction_shift(law, np.atleast_1d(al.N_opt), np.atleast_1d(al.D_opt), U)
    shift.insert(0, "C", np.asarray(an.budgets, float))
    shift.insert(1, "allocation", an.labels.get(key, key))
    an.repeated.shift = shift
