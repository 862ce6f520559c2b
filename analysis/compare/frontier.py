"""One sweep's compute-optimal frontier: the loss L*(C) and the size N_opt(C) a law predicts along a grid of
compute, from the full data and from every bootstrap resample of its runs, in the sweep's own FLOP convention.

Which law: each sweep's rolling backtest (``analysis.uncertainty.backtests``) names the law that extrapolated best;
when every sweep's backtest names the same law and that law predicts a loss, it is the comparison's primary law,
otherwise Approach 3 is (one law for all sweeps, so that a multiplier compares recipes, not laws). Approach 3's
frontier is always computed beside it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FRONTIER_LAWS = ("approach3", "approach2", "kaplan")  # laws with a loss at the optimum


@dataclass
class Frontier:
    """``loss[g]``, ``n_opt[g]`` at ``grid[g]`` (FLOPs as loaded) from the full data; ``boot_loss[r, g]``,
    ``boot_n[r, g]`` from bootstrap resample r (NaN where its fit failed; None without a bootstrap)."""

    name: str
    key: str
    label: str
    fit: Any
    grid: np.ndarray
    loss: np.ndarray
    n_opt: np.ndarray
    boot_loss: np.ndarray | None = None
    boot_n: np.ndarray | None = None
    n_failed: int = 0
    notes: list[str] = field(default_factory=list)

    def band(self, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the frontier loss along the grid."""
        if self.boot_loss is None:
            nan = np.full_like(self.loss, np.nan)
            return nan, nan
        q = (1 - level) / 2
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanquantile(self.boot_loss, q, axis=0), np.nanquantile(self.boot_loss, 1 - q, axis=0)


class FrontierQuantities:
    """What each bootstrap resample reports: loss and N_opt at every grid point (picklable for worker processes)."""

    def __init__(self, grid, ratio=None):
        self.grid, self.ratio = np.asarray(grid, float), ratio

    def __call__(self, fit) -> dict:
        from analysis.laws.conventions import in_convention

        a = in_convention(fit, self.ratio).compute_optimal(self.grid)
        loss = np.broadcast_to(np.asarray(a.loss, dtype=float), self.grid.shape)
        n = np.broadcast_to(np.asarray(a.N_opt, dtype=float), self.grid.shape)
        out = {f"L{i}": float(v) for i, v in enumerate(loss)}
        out.update({f"N{i}": float(v) for i, v in enumerate(n)})
        return out


def law_plan(key: str, grid="full"):
    """(fit function, bootstrap keywords, allocates under 6ND, label) of a law the comparison can use."""
    from analysis.pipeline import fit_functions

    fn, _, boot_kw, six_nd, label = fit_functions(grid)[key]
    return fn, boot_kw or {}, six_nd, label


def sweep_ratio(runs: pd.DataFrame):
    """C / 6ND of the sweep's runs (None when C is 6ND): exact for harness runs, statistical otherwise."""
    from analysis.laws.conventions import ratio_for

    ratio, _ = ratio_for(runs)
    return None if getattr(ratio, "identity", False) else ratio


def preferred_law(runs: pd.DataFrame, grid="full") -> tuple[str | None, str, dict[str, float]]:
    """(the law this sweep's rolling backtest prefers among those with a loss frontier, or None; why; each law's
    median |ln(N_pred/N_obs)| over the backtest's (cutoff, target) pairs, for the laws that predicted at least half
    of them)."""
    from analysis.uncertainty.backtests import rolling_backtest
    from analysis.uncertainty.candidates import Candidate

    laws = []
    for key in FRONTIER_LAWS:
        fn, _, six_nd, label = law_plan(key, grid)
        laws.append(Candidate(key, label, fn, six_nd=six_nd))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bt = rolling_backtest(runs, laws, ratio=sweep_ratio(runs))
        except Exception as e:  # too few budgets for any cutoff, every law failing, ...
            return None, f"no rolling backtest ({type(e).__name__}: {e})", {}
    errors = {str(r.law): float(r.median_abs_log_err_N) for r in bt.eligible.itertuples()}
    if bt.best is None:
        return None, "the rolling backtest named no law", errors
    return bt.best, f"the rolling backtest prefers {bt.best}", errors


def fit_frontier(
    name: str,
    runs: pd.DataFrame,
    key: str,
    grid_c,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    grid="full",
    n_jobs: int | None = None,
) -> Frontier:
    """Fit law ``key`` to ``runs`` and bootstrap its frontier along ``grid_c`` (resampling runs; Approach 2 within
    each budget). Raises ``ValueError`` when the law cannot be fitted or has no loss frontier."""
    from analysis.laws.conventions import in_convention
    from analysis.uncertainty.resampling import bootstrap

    fn, boot_kw, six_nd, label = law_plan(key, grid)
    grid_c = np.asarray(grid_c, float)
    ratio = sweep_ratio(runs) if six_nd else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fn(runs)
    a = in_convention(fit, ratio).compute_optimal(grid_c)
    loss = np.broadcast_to(np.asarray(a.loss, float), grid_c.shape).copy()
    if not np.isfinite(loss).any():
        raise ValueError(f"{label} fitted to sweep {name} predicts no loss at the optimum")
    fr = Frontier(name, key, label, fit, grid_c, loss, np.broadcast_to(np.asarray(a.N_opt, float), grid_c.shape).copy())
    if n_boot:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            boot = bootstrap(
                fn,
                runs,
                n_resamples=n_boot,
                seed=seed,
                quantities=FrontierQuantities(grid_c, ratio),
                n_jobs=n_jobs,
                **boot_kw,
            )
        G = len(grid_c)
        s = boot.samples
        fr.boot_loss = s[[f"L{i}" for i in range(G)]].to_numpy(float)
        fr.boot_n = s[[f"N{i}" for i in range(G)]].to_numpy(float)
        fr.n_failed = boot.n_failed
        if boot.n_failed:
            fr.notes.append(
                f"{boot.n_failed} of {n_boot} resamples of {name} could not be fitted; intervals use the rest"
            )
    return fr
