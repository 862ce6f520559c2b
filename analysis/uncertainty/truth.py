"""End-to-end truth: check a fitted irreducible loss E against the exact entropy of a synthetic training source.

A sweep trained on a synthetic source (``data.source=chain``, scaling/data/sources.py) records in every run's summary
the source's entropy rate H (``data_entropy_rate``) and the loss floor of a perfect model on that run's windows
(``data_loss_floor``: H plus the cost of not seeing the context before a window, which is 0 for an order-1 chain).
The floor is the E that a perfect fit of L(N, D) = E + A/N^alpha + B/D^beta recovers, so it is the target here.

    truth = known_truth(runs)                        # None for a sweep on natural text
    check = check_irreducible(truth, E, lo, hi)      # the fit's E and its interval (e.g. a bootstrap's)
    print(check.markdown())

This module computes only, from the runs table (``analysis.load_runs``), never the data cache; the figure is
``analysis.report.truth_plot.truth_figure(check, runs)`` (or ``draw_truth(ax, check)`` on an Axes of your own).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

RATE_COL = "data_entropy_rate"
FLOOR_COL = "data_loss_floor"


class TruthError(ValueError):
    """The runs disagree about the truth, or a fitted value is unusable; the message names the runs or the value."""


@dataclass(frozen=True)
class SourceTruth:
    """What the runs' data source knows exactly, in nats/token."""

    entropy_rate: float  # H
    loss_floor: float  # the loss of a perfect model on the runs' windows; equals H for an order-1 chain
    n_runs: int


def _constant(runs: pd.DataFrame, col: str, id_col: str) -> float | None:
    """The one value of ``col`` across ``runs``; None if no run has one; TruthError naming the odd runs otherwise."""
    if col not in runs.columns:
        return None
    values = pd.to_numeric(runs[col], errors="coerce")
    known = values.notna()
    if not known.any():
        return None
    ids = runs[id_col].astype(str) if id_col in runs.columns else pd.Series(runs.index.astype(str), index=runs.index)
    if not known.all():
        raise TruthError(
            f"column {col!r}: known for {int(known.sum())} runs but missing for "
            f"{sorted(ids[~known])}: the sweep mixes data sources"
        )
    ref = float(values.iloc[0])
    odd = ~np.isclose(values.to_numpy(float), ref, rtol=0, atol=1e-9)
    if odd.any():
        detail = ", ".join(f"{i}={v:.6g}" for i, v in zip(ids[odd], values[odd]))
        raise TruthError(
            f"column {col!r} must be one value across the sweep; {ids.iloc[0]} has {ref:.6g} but "
            f"{detail}: the runs were trained on different data (or window lengths)"
        )
    return ref


def known_truth(runs: pd.DataFrame, *, id_col: str = "run_id") -> SourceTruth | None:
    """The exact entropy of the sweep's data from the runs table, or None when the source's entropy is unknown
    (natural text: no run recorded one). Runs that disagree, or a mix of known and unknown, are a TruthError."""
    rate = _constant(runs, RATE_COL, id_col)
    if rate is None:
        return None
    floor = _constant(runs, FLOOR_COL, id_col)
    return SourceTruth(entropy_rate=rate, loss_floor=rate if floor is None else floor, n_runs=len(runs))


@dataclass(frozen=True)
class TruthCheck:
    """A fitted E and its interval beside the truth. ``contains``: does [lo, hi] hold the loss floor?"""

    H: float  # the source's entropy rate
    floor: float  # the E a perfect fit recovers (= H unless windows cut the source's context short)
    E: float
    lo: float
    hi: float
    level: float = 0.9
    label: str = "Approach 3"

    @property
    def contains(self) -> bool:
        return bool(self.lo <= self.floor <= self.hi)

    @property
    def error(self) -> float:
        """E minus the floor, nats/token: positive when the fit puts the irreducible loss above the truth."""
        return self.E - self.floor

    def markdown(self) -> str:
        verdict = "yes" if self.contains else "**no**"
        lines = [
            "| quantity | nats/token |",
            "| --- | --- |",
            f"| true entropy rate H of the source | {self.H:.4f} |",
        ]
        if not math.isclose(self.floor, self.H, abs_tol=5e-5):
            lines.append(f"| loss floor of a perfect model on these windows | {self.floor:.4f} |")
        lines += [
            f"| fitted E ({self.label}), {self.level:.0%} interval | {self.E:.4f} [{self.lo:.4f}, {self.hi:.4f}] |",
            f"| E - truth | {self.error:+.4f} |",
            f"| interval contains the truth | {verdict} |",
        ]
        what = "H" if math.isclose(self.floor, self.H, abs_tol=5e-5) else "the loss floor"
        summary = (
            f"The {self.level:.0%} interval of the fitted E {'contains' if self.contains else 'misses'} "
            f"{what} ({self.floor:.4f}); E is {abs(self.error):.4f} nats {'above' if self.error >= 0 else 'below'}"
            f" it."
        )
        return "\n".join(lines) + "\n\n" + summary + "\n"


def check_irreducible(
    truth: SourceTruth | float, E: float, lo: float, hi: float, *, level: float = 0.9, label: str = "Approach 3"
) -> TruthCheck:
    """Compare a fitted irreducible loss ``E`` with interval [``lo``, ``hi``] to the truth (a SourceTruth, or H)."""
    for name, v in (("E", E), ("lo", lo), ("hi", hi)):
        if v is None or not math.isfinite(float(v)):
            raise TruthError(f"check_irreducible: {name}={v!r} must be a finite loss in nats/token")
    if lo > hi:
        raise TruthError(f"check_irreducible: interval lo={lo!r} > hi={hi!r}; expected lo <= hi")
    if not 0 < level < 1:
        raise TruthError(f"check_irreducible: level={level!r} must be in (0, 1)")
    if isinstance(truth, SourceTruth):
        H, floor = truth.entropy_rate, truth.loss_floor
    else:
        H = floor = float(truth)
    return TruthCheck(H=float(H), floor=float(floor), E=float(E), lo=float(lo), hi=float(hi), level=level, label=label)
