"""Fitted end points in the fits (issue 18, item 4): each run's final loss replaced by its curve law's end point.

A run's curve on one measure (``schedule.subset_curve``: the fixed ``train.eval_tokens`` subset) is fitted by a
per-run law (Tissue or multi-power) and read at the run's last update, with a moving-block bootstrap interval
(``predict.smoothed_end``). The fitted end is on the subset's measure; it is mapped onto the final loss's measure
(the whole validation split) by the run's own logged offset, final_val_loss − final_subset_val_loss
(``schedule.final_offset``), or, for older runs that did not log it, by the sweep's median ratio of final loss to
fitted end over the runs fitted (a constant factor: it moves no IsoFLOP minimum).

``RULE`` says when a fitted end replaces the raw one; ``with_fitted_ends`` applies it to a runs table and returns a
copy whose ``loss`` is the chosen end (``raw_loss`` keeps the measured one), ready for any fit or backtest.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.curves import predict
from analysis.curves.schedule import final_offset, subset_curve

MIN_POINTS = 8  # points after warmup the rule asks of a curve (Tissue has 5 parameters, lambda among them)
RULE = (
    f"a run's fitted end replaces its raw final loss only where its curve has >= {MIN_POINTS} points on one measure "
    "after warmup, the fit describes them to within 2% (relative rmse), its interval is finite, and the run logged "
    "its final subset loss (its own subset -> final offset); otherwise the raw final loss is kept"
)


def fitted_ends(
    runs: pd.DataFrame, law: str = "tissue", n_boot: int = 50, level: float = 0.9, seed: int = 0
) -> pd.DataFrame:
    """One row a run (``runs`` as ``analysis.data.load.load_runs`` gives them, with ``run_dir``): run_id, raw
    (its final loss), n_points, rmse_rel, end_subset (the fitted end on the subset's measure), offset (logged, or NaN),
    fitted, lo, hi (the end and its ``level`` interval on the final loss's measure), offset_source (run | sweep)."""
    if law not in predict.LAWS:
        raise ValueError(f"law={law!r}: must be one of {predict.LAWS}")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: must be >= 0")
    rows = []
    for r in runs.itertuples():
        row = dict(run_id=r.run_id, raw=float(r.loss), n_points=0, rmse_rel=np.nan, end_subset=np.nan)
        row.update(lo_subset=np.nan, hi_subset=np.nan)
        eta, steps, loss = subset_curve(str(r.run_dir))
        s, y = predict.after_warmup(eta, steps, loss)
        row["n_points"] = len(s)
        off = final_offset(str(r.run_dir))
        row["offset"] = np.nan if off is None else off
        try:
            fit = predict.fit_curve(law, eta, s, y)
            row["rmse_rel"] = float(fit.rmse_rel)  # type: ignore[attr-defined]
            p, lo, hi = predict.smoothed_end(law, eta, s, y, n_boot=n_boot, level=level, seed=seed)
            row.update(end_subset=p, lo_subset=lo, hi_subset=hi)
        except ValueError:  # too few points for the law: no fitted end
            pass
        rows.append(row)
    out = pd.DataFrame(rows)
    fitted = out["end_subset"].notna()
    ratio = float(np.median(out.loc[fitted, "raw"] / out.loc[fitted, "end_subset"])) if fitted.any() else np.nan
    logged = out["offset"].notna()
    for k in ("", "lo", "hi"):
        src = "end_subset" if not k else f"{k}_subset"
        out[k or "fitted"] = np.where(logged, out[src] + out["offset"], out[src] * ratio)
    out["offset_source"] = np.where(logged, "run", "sweep")
    out.attrs["sweep_ratio"] = ratio
    return out.drop(columns=["lo_subset", "hi_subset"])


def use_fitted(
    ends: pd.DataFrame, min_points: int = MIN_POINTS, max_rmse: float = 0.02, logged_offset: bool = True
) -> pd.Series:
    """``RULE``: where a run's fitted end replaces its raw final loss (``logged_offset=False``: also runs mapped by
    the sweep's median ratio)."""
    if min_points < 1:
        raise ValueError(f"min_points={min_points}: must be >= 1")
    ok = ends["fitted"].notna() & np.isfinite(ends["lo"]) & np.isfinite(ends["hi"])
    if logged_offset:
        ok &= ends["offset_source"] == "run"
    return ok & (ends["n_points"] >= min_points) & (ends["rmse_rel"] <= max_rmse)


def with_fitted_ends(runs: pd.DataFrame, ends: pd.DataFrame, use: pd.Series | None = None) -> pd.DataFrame:
    """A copy of ``runs`` whose ``loss`` is each run's fitted end where ``use`` (default ``use_fitted(ends)``) says,
    its raw final loss elsewhere; ``raw_loss`` keeps the measured one and ``fitted_end`` says which was taken."""
    use = use_fitted(ends) if use is None else use
    chosen = dict(zip(ends["run_id"], np.where(use, ends["fitted"], ends["raw"])))
    taken = dict(zip(ends["run_id"], use.to_numpy(bool)))
    out = runs.copy()
    out["raw_loss"] = out["loss"]
    out["loss"] = [chosen.get(i, lo) for i, lo in zip(out["run_id"], out["loss"])]
    out["fitted_end"] = [bool(taken.get(i, False)) for i in out["run_id"]]
    out.attrs.update(runs.attrs)
    return out
