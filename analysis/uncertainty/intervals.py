"""Intervals for Approach 2's power law N_opt ∝ C^a that count the scatter of the budgets' minima about the line.

Approach 2 is a two-level estimate: each budget's minimum (``analysis.fits.minima``) from its runs, then a straight
line of ln N_opt against ln C through the budgets' minima. An interval extrapolated 10x or 100x beyond the largest
budget has to carry both levels: the noise of each minimum and the scatter of the minima about the line (an
estimator's budget-to-budget error, curves that are not quite the law). ``isoflop_power_law_interval`` offers four
schemes:

- ``"t"``: the least-squares line's own interval, Student t with k - 2 degrees of freedom for k budgets: for ln N_opt
  at ln C = u, (c + a u) ± t_{k-2} s sqrt(1/k + (u - mean ln C)^2 / S_CC), s^2 the residual variance of the minima
  about the line (the confidence interval of a mean response, Seber & Lee 2003, Linear Regression Analysis §5.1;
  a ± t_{k-2} s / sqrt(S_CC) for a). The default: in the calibration study its coverage was nominal, where the
  bootstraps below under-covered (budgets, too few for a pairs bootstrap) or over-covered (hierarchical);
- ``"runs"``: resample runs within each budget, re-estimate every minimum, refit the line (within-budget noise only);
- ``"budgets"``: resample budgets with replacement (a pairs bootstrap of the line's points, Efron & Tibshirani 1993
  §9.5), keeping each budget's full-data minimum; with 8 budgets its percentile intervals under-cover, the
  small-sample weakness of the pairs bootstrap;
- ``"hierarchical"``: both: resample budgets, then runs within each picked budget (a two-stage bootstrap for nested
  data, Davison & Hinkley 1997 §3.8). It counts the within-budget noise twice (the scatter of the minima already
  holds it) and over-covers.

Coverage figures: ``python -m analysis.studies calibration``, recorded in analysis/README.md ("Measured").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from analysis.fits.minima import _MIN_DISTINCT, DEFAULT_ESTIMATOR, estimate_minimum, resolve

SCHEMES = ("t", "runs", "budgets", "hierarchical")


@dataclass(frozen=True)
class PowerLawInterval:
    """The line ln N_opt = a ln C + c through the budgets' minima (``a``, ``intercept``), percentile intervals of a
    and of N_opt at each target budget (``intervals``: quantity, estimate, lo, hi), one row a resample in
    ``samples`` (NaN where it had fewer than 2 distinct budgets; empty for the analytic scheme "t")."""

    a: float
    intercept: float
    intervals: pd.DataFrame
    samples: pd.DataFrame = field(repr=False)
    scheme: str = "t"
    method: str = DEFAULT_ESTIMATOR
    level: float = 0.9
    n_failed: int = 0

    def n_opt(self, C) -> np.ndarray:
        return np.exp(self.intercept + self.a * np.log(np.asarray(C, dtype=float)))

    def interval(self, quantity: str) -> tuple[float, float]:
        row = self.intervals[self.intervals["quantity"] == quantity]
        if row.empty:
            raise ValueError(
                f"PowerLawInterval.interval: quantity={quantity!r}; have {self.intervals['quantity'].tolist()}"
            )
        return float(row["lo"].iloc[0]), float(row["hi"].iloc[0])


def _line(log_c: np.ndarray, log_n: np.ndarray) -> tuple[float, float]:
    a, c = np.polyfit(log_c, log_n, 1)
    return float(a), float(c)


def _t_interval(log_c, log_n, log_t, a, c, names, estimate, method, level) -> PowerLawInterval:
    """Student-t intervals of the least-squares line (Seber & Lee 2003 §5.1): slope a and mean response at log_t."""
    k = log_c.size
    if k < 3:
        raise ValueError(
            f"isoflop_power_law_interval: scheme='t' needs at least 3 budgets (k - 2 degrees of freedom), got {k}"
        )
    resid = log_n - (c + a * log_c)
    s2 = float(resid @ resid) / (k - 2)
    scc = float(((log_c - log_c.mean()) ** 2).sum())
    tq = float(stats.t.ppf((1 + level) / 2, k - 2))
    half_a = tq * np.sqrt(s2 / scc)
    half_t = tq * np.sqrt(s2 * (1.0 / k + (log_t - log_c.mean()) ** 2 / scc))
    centre_t = c + a * log_t
    lo = [a - half_a, *np.exp(centre_t - half_t)]
    hi = [a + half_a, *np.exp(centre_t + half_t)]
    intervals = pd.DataFrame({"quantity": names, "estimate": estimate, "lo": lo, "hi": hi})
    return PowerLawInterval(
        a=a,
        intercept=c,
        intervals=intervals,
        samples=pd.DataFrame(columns=names),
        scheme="t",
        method=method,
        level=level,
        n_failed=0,
    )


def isoflop_power_law_interval(
    runs: pd.DataFrame,
    targets,
    *,
    method: str = DEFAULT_ESTIMATOR,
    scheme: str = "t",
    n_resamples: int = 200,
    level: float = 0.9,
    seed: int = 0,
    n_col: str = "N",
    c_col: str = "C",
    loss_col: str = "loss",
    budget_col: str = "budget",
) -> PowerLawInterval:
    """N_opt ∝ C^a through every budget's minimum by ``method`` (edge minima kept), with ``level`` intervals of a
    and of N_opt at each C in ``targets`` by ``scheme`` (one of ``SCHEMES``; ``n_resamples`` and ``seed`` serve the
    bootstrap schemes). A budget's C is the
    geometric mean of its runs' ``c_col``; budgets come from ``budget_col``."""
    fn = "isoflop_power_law_interval"
    if scheme not in SCHEMES:
        raise ValueError(f"{fn}: scheme={scheme!r}; allowed: {', '.join(SCHEMES)}")
    if not (isinstance(n_resamples, int) and n_resamples >= 2):
        raise ValueError(f"{fn}: n_resamples={n_resamples!r}; must be an integer >= 2")
    if not 0 < level < 1:
        raise ValueError(f"{fn}: level={level!r}; must be in (0, 1)")
    for name, col in (("n_col", n_col), ("c_col", c_col), ("loss_col", loss_col), ("budget_col", budget_col)):
        if col not in runs.columns:
            raise ValueError(f"{fn}: {name}={col!r} is not a column of runs; columns are {list(runs.columns)}")
    groups = []
    for _, g in runs.groupby(budget_col, sort=True):
        groups.append(
            (
                float(np.log(g[c_col].to_numpy(float)).mean()),
                np.log(g[n_col].to_numpy(float)),
                g[loss_col].to_numpy(float),
            )
        )
    if len(groups) < 2:
        raise ValueError(f"{fn}: runs span {len(groups)} budget(s); the power law needs at least 2")
    log_c = np.array([c for c, _, _ in groups])
    full = np.array([estimate_minimum(x, y, method).log_n for _, x, y in groups])
    a, c = _line(log_c, full)
    log_t = np.log(np.atleast_1d(np.asarray(targets, dtype=float)))
    names = ["a"] + [n_opt_name(t) for t in np.exp(log_t)]
    estimate = [a] + list(np.exp(c + a * log_t))
    if scheme == "t":
        return _t_interval(log_c, full, log_t, a, c, names, estimate, method, level)

    rng = np.random.default_rng(seed)
    # "auto" resolves once per budget, on all its sizes: a resample keeps its budget's estimator
    methods = [resolve(method, np.unique(x).size) for _, x, _ in groups]
    out = np.full((n_resamples, len(names)), np.nan)
    for r in range(n_resamples):
        pick = rng.integers(0, len(groups), len(groups)) if scheme != "runs" else np.arange(len(groups))
        if np.unique(pick).size < 2:
            continue
        lc, ln = [], []
        for k in pick:
            if scheme == "budgets":
                lc.append(log_c[k])
                ln.append(full[k])
                continue
            _, x, y = groups[k]
            idx = rng.integers(0, x.size, x.size)
            if np.unique(x[idx]).size >= _MIN_DISTINCT[methods[k]]:
                lc.append(log_c[k])
                ln.append(estimate_minimum(x[idx], y[idx], methods[k]).log_n)
        if np.unique(lc).size < 2:
            continue
        ra, rc = _line(np.array(lc), np.array(ln))
        out[r] = [ra, *np.exp(rc + ra * log_t)]
    samples = pd.DataFrame(out, columns=names)
    q = [(1 - level) / 2, (1 + level) / 2]
    lo_hi = [np.nanquantile(samples[k], q) if samples[k].notna().any() else (np.nan, np.nan) for k in names]
    intervals = pd.DataFrame(
        {"quantity": names, "estimate": estimate, "lo": [v[0] for v in lo_hi], "hi": [v[1] for v in lo_hi]}
    )
    return PowerLawInterval(
        a=a,
        intercept=c,
        intervals=intervals,
        samples=samples,
        scheme=scheme,
        method=method,
        level=level,
        n_failed=int(samples["a"].isna().sum()),
    )


def n_opt_name(C: float) -> str:
    """The ``intervals`` quantity name of N_opt at budget C."""
    return f"N_opt@{C:.3g}"
