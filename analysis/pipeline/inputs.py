"""What ``analyse`` starts from: the sweep loaded once, the fits it makes (``fit_functions``), the sweep's plan, and
the budgets it predicts at by default."""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.data import load


def default_budgets(runs: pd.DataFrame) -> tuple[float, ...]:
    """Predict one and two decades beyond the sweep's largest budget, where an extrapolation is still useful."""
    top = np.nanmax(runs["budget"]) if runs["budget"].notna().any() else runs["C"].max()
    return (float(f"{top * 10:.1e}"), float(f"{top * 100:.1e}"))


def load_sweep(sweep_dir, flops: str, params: str, metric: str = "loss", stopped: str = "predicted"):
    """(runs, curves or None, scan): the sweep loaded once, each excluded run warned about once."""
    kw: dict[str, Any] = dict(flops=flops, params=params, metric=metric, stopped=stopped)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", load.RunExcludedWarning)
        runs = load.load_runs(sweep_dir, **kw)
        try:
            curves = load.load_curves(sweep_dir, **kw)
        except (ValueError, FileNotFoundError):
            curves = None
    seen = set()
    for w in caught:  # pass exclusions on to the caller once, not twice (runs and curves both warn)
        if w.category is not load.RunExcludedWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            warnings.warn(str(w.message), load.RunExcludedWarning, stacklevel=3)
    return runs, curves, load.scan_runs(sweep_dir, **kw)


def fit_functions(grid="full", E: float | None = None) -> dict:
    """key -> (fit function, data role, bootstrap keywords, allocates under 6ND, label) for every approach."""
    from analysis.fits import LABELS
    from analysis.fits.approach1 import fit_approach1
    from analysis.uncertainty.candidates import LAWS, fixed_e_candidate

    out: dict[str, tuple[Callable[..., Any], str, dict[str, str] | None, bool, str]] = {
        "approach1": (fit_approach1, "curves", {}, False, LABELS["approach1"])
    }  # resamples whole runs (the result's resample_group)
    cands = dict(LAWS)
    if E is not None:
        cands["approach3_fixed_E"] = fixed_e_candidate(E)
    for key, c in cands.items():
        fn = c.fit
        if key.startswith("approach3") and not (isinstance(grid, str) and grid == "full"):
            fn = functools.partial(fn, grid=grid)
        # every budget keeps its run count
        boot_kw: dict[str, str] | None = {"strata_col": "budget"} if key == "approach2" else {}
        if not c.bootstrap:
            boot_kw = None  # the law is not bootstrapped (analysis.uncertainty.candidates.Candidate.bootstrap)
        out[key] = (fn, "runs", boot_kw, c.six_nd, c.label)
    return out


def read_plan(sweep_dir) -> dict | None:
    """The sweep's plan.json (which budgets the planner chose and why, predicted and measured wall time, and a
    sequential sweep's stages), or None when the sweep has none or it is unreadable."""
    import json

    path = Path(sweep_dir) / "plan.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
