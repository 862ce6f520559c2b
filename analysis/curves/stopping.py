"""Early stopping from curve fits (issue 18, item 5), replayed on a finished sweep with the trainer's own rule
(``scaling/train/callbacks/early_stop.py``, ``train.early_stop_frac``): at the first evaluation from a fraction of
each run at which the curve has seen at least half of the run's annealing area (``curve_law.decision_ready``: before
a WSD cooldown the law cannot see the drop to come, so the trainer defers), fit the Tissue law to its curve so far
(``scaling.core.curve_law.tissue_end``, on the subset's measure), extrapolate its end with a 90% interval, and stop
it when even the interval's low end lies more than ``margin`` above the best finished end among the other runs of its
budget (its IsoFLOP neighbours; their final subset loss where logged, else their final loss, as the trainer
compares). The replay sees every neighbour finished, the trainer only those finished before the run reaches the
fraction: the replay's stops are an upper bound of the trainer's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.curves.schedule import subset_curve
from scaling.core import records
from scaling.core.curve_law import annealing_shares, decision_ready, tissue_end


def replay(
    runs: pd.DataFrame, frac: float = 0.5, margin: float = 0.02, law: str = "tissue", n_boot: int = 50
) -> pd.DataFrame:
    """One row a run: budget, N, final loss, the step looked at (NaN: no evaluation was ready), predicted end
    [lo, hi] from the curve up to it, whether it would have stopped, the FLOPs that saves, and whether the run was
    its budget's lowest final loss."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1)")
    if margin < 0:
        raise ValueError(f"margin={margin}: must be >= 0")
    if law != "tissue":
        raise ValueError(f"law={law!r}: the trainer's early stop fits the Tissue law only ('tissue')")
    same = {}
    for r in runs.itertuples():
        s = records.read_summary(r.run_dir)
        same[r.run_id] = s.final_subset_val_loss if s.final_subset_val_loss is not None else float(r.loss)
    rows = []
    for r in runs.itertuples():
        others = runs[(runs["budget"] == r.budget) & (runs["run_id"] != r.run_id)]
        eta, steps, loss = subset_curve(str(r.run_dir))
        n = len(eta)
        shares = annealing_shares(eta)
        look = [int(s) for s in steps if decision_ready(shares, int(s), n, frac)]
        row = dict(run_id=r.run_id, budget=r.budget, N=r.N, C=r.C, loss=r.loss, step=np.nan)
        row.update(pred=np.nan, lo=np.nan, hi=np.nan)
        if len(look):
            row["step"] = int(look[0])
            try:
                row["pred"], row["lo"], row["hi"] = tissue_end(eta, steps, loss, upto=int(look[0]), n_boot=n_boot)
            except ValueError:  # too few points before the cut: never stopped
                pass
        best_other = min((same[i] for i in others["run_id"]), default=np.inf)
        row["best_other"] = best_other
        row["stop"] = bool(np.isfinite(row["lo"]) and row["lo"] > (1 + margin) * best_other)
        row["flops_saved"] = (1 - row["step"] / n) * float(r.C) if row["stop"] else 0.0
        row["was_minimum"] = bool(len(others) == 0 or r.loss <= others["loss"].min())
        rows.append(row)
    return pd.DataFrame(rows)


def write_stopped(runs: pd.DataFrame, replayed: pd.DataFrame, out_dir) -> Path:
    """A copy of the sweep in ``out_dir`` as the trainer would have left it with ``replayed``'s stops (``replay``):
    every run folder copied, and each stopped run's metrics cut at the step it stopped after and its summary made
    the trainer's ``stopped`` one (no final loss, the prediction in ``predicted_final_loss[_lo|_hi]``), so that the
    loader (``analysis.data.load``, ``stopped=``) reads the replay as it would read a live sweep. Returns out_dir."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out_dir {str(out)!r} is not empty: the replayed sweep is written into a new folder")
    stops = replayed[replayed["stop"]].set_index("run_id")
    for r in runs.itertuples():
        dst = out / Path(str(r.run_dir)).name
        shutil.copytree(str(r.run_dir), dst)
        if r.run_id not in stops.index:
            continue
        st = stops.loc[r.run_id]
        step = int(st["step"])
        m = records.read_metrics(dst)
        records.write_metrics(dst, m[m["step"] <= step].to_dict("records"))
        s = records.read_summary(dst)
        s.status = records.STATUS_STOPPED
        s.reason = f"early stop at step {step} (replayed by analysis.curves.stopping)"
        s.final_val_loss = s.final_val_bpb = s.final_subset_val_loss = None
        s.stopped_step = step
        s.tokens_trained = step * s.tokens_per_step
        s.predicted_final_loss, s.predicted_final_loss_lo, s.predicted_final_loss_hi = (
            float(st["pred"]),
            float(st["lo"]),
            float(st["hi"]),
        )
        records.write_summary(dst, s)
        (dst / records.CHECKPOINT_FILE).unlink(missing_ok=True)
    return out
