"""Early stopping from curve fits (issue 18, item 5), as a replay on a finished sweep: at a fraction of each run, fit
its curve so far, extrapolate its end with an interval, and say whether it would have been stopped because even the
interval's low end lies far above the best finished end among the runs of its budget (its IsoFLOP neighbours). Off
by default everywhere: the planner does not call it (scaling/ never imports analysis/); this measures what it would
save and whether it would have stopped an IsoFLOP minimum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.curves.predict import smoothed_end
from analysis.curves.schedule import run_curve


def replay(
    runs: pd.DataFrame, frac: float = 0.5, margin: float = 0.02, law: str = "tissue", n_boot: int = 50
) -> pd.DataFrame:
    """One row a run: budget, N, final loss, predicted end [lo, hi] from its first ``frac``, whether it would have
    stopped (lo > (1 + margin) x the best final loss of the other runs of its budget), the FLOPs that saves, and
    whether the run was its budget's lowest final loss."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1)")
    if margin < 0:
        raise ValueError(f"margin={margin}: must be >= 0")
    rows = []
    for r in runs.itertuples():
        others = runs[(runs["budget"] == r.budget) & (runs["run_id"] != r.run_id)]
        eta, steps, loss = run_curve(str(r.run_dir))
        row = dict(run_id=r.run_id, budget=r.budget, N=r.N, C=r.C, loss=r.loss, pred=np.nan, lo=np.nan, hi=np.nan)
        try:
            row["pred"], row["lo"], row["hi"] = smoothed_end(
                law, eta, steps, loss, n_boot=n_boot, upto=int(frac * len(eta))
            )
        except ValueError:  # too few points before the cut: never stopped
            pass
        best_other = float(others["loss"].min()) if len(others) else np.inf
        row["stop"] = bool(np.isfinite(row["lo"]) and row["lo"] > (1 + margin) * best_other)
        row["flops_saved"] = (1 - frac) * float(r.C) if row["stop"] else 0.0
        row["was_minimum"] = bool(len(others) == 0 or r.loss <= others["loss"].min())
        rows.append(row)
    return pd.DataFrame(rows)
