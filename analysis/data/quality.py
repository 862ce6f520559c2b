"""The quality gate before every fit: runs that finished but must not be fitted (diverged, short, stalled).

A run can be ``complete`` and still be wrong for a scaling-law fit. ``quality_gate(runs)`` flags three kinds, each
with a reason that names the run and the numbers:

- **diverged**: the final loss (validation or training) is not finite, or the validation loss is at or above
  ln(vocab_size), the loss of a uniform guess over the vocabulary: the model learned nothing usable.
- **short**: it trained fewer tokens than it planned (``tokens_trained < tokens``; not asked of an early-stopped run
  kept at its predicted end, ``loss_predicted``, whose loss is the planned run's end), or it planned fewer FLOPs than
  its budget by more than one optimizer step (a budget is rounded to whole steps, so up to one step is normal).
- **stalled**: its loss sits more than ``stall_nats`` (default 0.15 nats; 0.25 for the smallest and largest run of
  a budget, ``edge_stall_nats``) above what its IsoFLOP neighbours (the
  other runs of the same budget) say it should be. The reference is robust to the normal U-shape of loss against
  log N: for an interior run it is the chord between its two neighbours in log N (on a convex U every point lies on
  or below that chord, so any excess is anomalous whatever the U's depth); for the smallest or largest run it is a
  parabola in log N fitted to the other runs of the budget (at least 3 distinct sizes) and, to be sure, also its
  nearest neighbour's loss: the edge run is flagged only if it is ``stall_nats`` above both. The worst offender is
  flagged first and the references recomputed without it, so one stalled run cannot hide or frame a neighbour.
  Budgets with fewer than 3 runs are not judged; two adjacent stalled runs can hide each other.

``analysis.data.load`` applies the gate by default (``load_runs(..., quality=True)``), so every fit, the report's
table of excluded runs and its warnings see the same runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

# Seeds of one CPU-sweep point differ by 0.02-0.05 nats (e.g. N = 14k at 2.5e11 FLOPs: 3.967 and 3.944), but one run
# in ~30 stays 0.2 nats high (the same point's seed 0: 4.208, 0.21 above the chord of its neighbours): 3-7 seed sd.
STALL_NATS = 0.15
# An edge run has no chord above it, only an extrapolation and its neighbour's loss, and on the steep side of a U the
# next size down can be 0.2 nats higher for real (N = 1.6k against 6.3k on the CPU sweep): edges keep 0.25.
EDGE_STALL_NATS = 0.25
FLAGGED_COLUMNS = ["run_id", "check", "reason"]


def _num(row, col) -> float:
    v = row.get(col, np.nan) if hasattr(row, "get") else np.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return np.nan


def _diverged(row) -> str | None:
    loss = _num(row, "loss")
    if not math.isfinite(loss):
        return f"final validation loss {loss!r} is not finite"
    if "final_train_loss" in row and row["final_train_loss"] is not None:
        tl = _num(row, "final_train_loss")
        if not math.isfinite(tl):
            return f"final train loss {tl!r} is not finite"
    vocab = _num(row, "vocab_size")
    if vocab > 1 and loss >= math.log(vocab):
        return (
            f"final validation loss {loss:.4g} >= ln(vocab_size={vocab:.0f}) = {math.log(vocab):.4g}, the loss of "
            "a uniform guess: it learned nothing usable"
        )
    return None


def _short(row) -> str | None:
    planned, trained = _num(row, "tokens"), _num(row, "tokens_trained")
    flag = row.get("loss_predicted", False) if hasattr(row, "get") else False
    stopped = isinstance(flag, (bool, np.bool_)) and bool(flag)  # an early-stopped run's loss is its planned end's
    if not stopped and math.isfinite(planned) and math.isfinite(trained) and trained < planned:
        return f"trained {trained:,.0f} of its {planned:,.0f} planned tokens ({100 * trained / planned:.1f}%)"
    budget, conv = _num(row, "budget"), row.get("budget_convention")
    if isinstance(conv, str) and math.isfinite(budget) and budget > 0:
        c, fpt, step = _num(row, f"flops_{conv}"), _num(row, f"flops_per_token_{conv}"), _num(row, "tokens_per_step")
        slack = fpt * step  # one optimizer step's FLOPs: the rounding every budget gets; unknown -> no verdict
        if math.isfinite(c) and math.isfinite(slack) and c < budget - slack - 1e-9 * budget:
            return (
                f"planned {c:.4g} FLOPs under {conv!r}, {100 * (1 - c / budget):.1f}% short of its budget "
                f"{budget:.4g} (more than one optimizer step, {slack:.3g} FLOPs)"
            )
    return None


def _stall_excess(x: np.ndarray, y: np.ndarray, i: int) -> tuple[float, str] | None:
    """How far run ``i`` (sorted by log N = x) sits above the reference its neighbours give, and that reference."""
    n = len(x)
    if 0 < i < n - 1:
        if x[i + 1] == x[i - 1]:
            return None
        ref = y[i - 1] + (y[i + 1] - y[i - 1]) * (x[i] - x[i - 1]) / (x[i + 1] - x[i - 1])
        return y[i] - ref, (
            f"{ref:.4g} on the chord between its neighbours N={math.exp(x[i - 1]):.3g} and N={math.exp(x[i + 1]):.3g}"
        )
    others = np.arange(n) != i
    if len(np.unique(x[others])) < 3:
        return None
    coef = np.polyfit(x[others], y[others], 2)
    pred = float(np.polyval(coef, x[i]))
    near = i + 1 if i == 0 else i - 1
    ref = max(pred, y[near])
    return y[i] - ref, (
        f"{ref:.4g}, the larger of the other runs' parabola in log N ({pred:.4g}) and its "
        f"nearest neighbour's loss ({y[near]:.4g})"
    )


def stalled_positions(
    x: np.ndarray, y: np.ndarray, stall_nats: float = STALL_NATS, edge_stall_nats: float = EDGE_STALL_NATS
) -> list[tuple[int, float, str, float]]:
    """The stall rule on one budget's runs, sorted by x = ln N: (position, excess, reference, limit) of every
    stalled run, worst first, each judged after the ones before it are left out. Arrays in, so a simulation of
    many sweeps (``analysis.uncertainty.calibration``) applies the very rule the loader does."""
    out = []
    left = np.arange(len(x))
    while left.size >= 3:
        xs, ys = x[left], y[left]
        worst = None
        for i in range(left.size):
            r = _stall_excess(xs, ys, i)
            limit = edge_stall_nats if i in (0, left.size - 1) else stall_nats
            if r is not None and r[0] > limit and (worst is None or r[0] - limit > worst[3]):
                worst = (i, r[0], r[1], r[0] - limit, limit)
        if worst is None:
            break
        i, excess, ref, _, limit = worst
        out.append((int(left[i]), float(excess), ref, limit))
        left = np.delete(left, i)
    return out


def _stalled(runs: pd.DataFrame, stall_nats: float, edge_stall_nats: float) -> dict:
    """index -> reason for every stalled run, budget by budget, worst first."""
    out: dict[Any, str] = {}
    if not {"budget", "N", "loss"} <= set(runs.columns):
        return out
    for budget, g in runs[runs["budget"].notna()].groupby("budget"):
        g = g[np.isfinite(g["loss"].astype(float)) & (g["N"].astype(float) > 0)].sort_values("N")
        x, y = np.log(g["N"].to_numpy(float)), g["loss"].to_numpy(float)
        for i, excess, ref, limit in stalled_positions(x, y, stall_nats, edge_stall_nats):
            where = "" if limit == stall_nats else " at the edge of a budget's sizes"
            out[g.index[i]] = (
                f"loss {y[i]:.4g} is {excess:.3g} nats above its IsoFLOP neighbours at budget "
                f"{budget:.4g} (N={math.exp(x[i]):.3g}; expected at most {ref}); the gate flags more "
                f"than {limit:g} nats{where}"
            )
    return out


def quality_gate(
    runs: pd.DataFrame, *, stall_nats: float = STALL_NATS, edge_stall_nats: float | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a runs table (``analysis.load_runs``'s columns) into (kept, flagged[run_id, check, reason]).

    Checks whose columns are missing are skipped, so any table with ``loss`` (and ``N``, ``budget`` for the stall
    check) works. ``kept`` keeps the input's attrs.
    """
    if not (isinstance(stall_nats, (int, float)) and math.isfinite(stall_nats) and stall_nats > 0):
        raise ValueError(f"argument stall_nats={stall_nats!r}: must be a positive number of nats")
    if edge_stall_nats is None:  # the default edge limit, never below the interior one
        edge_stall_nats = max(stall_nats, EDGE_STALL_NATS)
    if not (isinstance(edge_stall_nats, (int, float)) and math.isfinite(edge_stall_nats) and edge_stall_nats > 0):
        raise ValueError(f"argument edge_stall_nats={edge_stall_nats!r}: must be a positive number of nats")
    flags: dict = {}
    for idx, row in runs.iterrows():
        for check, fn in (("diverged", _diverged), ("short", _short)):
            why = fn(row)
            if why is not None:
                flags[idx] = (check, why)
                break
    rest = runs.drop(index=list(flags))
    for idx, why in _stalled(rest, stall_nats, edge_stall_nats).items():
        flags[idx] = ("stalled", why)
    ids = runs["run_id"] if "run_id" in runs.columns else pd.Series(runs.index.astype(str), index=runs.index)
    flagged = pd.DataFrame([(ids[i], c, w) for i, (c, w) in flags.items()], columns=FLAGGED_COLUMNS)
    kept = runs.drop(index=list(flags))
    kept.attrs.update(runs.attrs)
    return kept, flagged
