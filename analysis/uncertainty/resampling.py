"""Percentile bootstrap intervals of any fitted quantity, resampling runs (or whole budgets).

References: Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13 (percentile intervals); Hoffmann
et al. 2022 (arXiv:2203.15556) for the IsoFLOP optimum a backtest is judged against.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.data.columns import FitError
from analysis.fits.approach2 import isoflop_groups
from analysis.laws.protocol import FitResult
from analysis.numbers import short


@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap: ``samples`` has one row a resample (NaN where its fit failed), ``intervals`` one row a
    quantity with the full-data estimate and the [lo, hi] interval at ``level``."""

    result: Any
    samples: pd.DataFrame = field(repr=False)
    intervals: pd.DataFrame = field(repr=False)
    level: float
    n_resamples: int
    n_failed: int
    seed: int
    group_col: str | None
    seconds: float = float("nan")

    def interval(self, quantity: str) -> tuple[float, float]:
        row = self.intervals[self.intervals["quantity"] == quantity]
        if row.empty:
            raise FitError(
                f"BootstrapResult.interval: quantity={quantity!r}; have {self.intervals['quantity'].tolist()}"
            )
        return float(row["lo"].iloc[0]), float(row["hi"].iloc[0])

    def __repr__(self) -> str:
        lines = [
            f"BootstrapResult({self.n_resamples} resamples over "
            f"{self.group_col or 'rows'}, {self.n_failed} failed, {self.level:.0%} percentile intervals, "
            f"seed={self.seed})"
        ]
        for _, r in self.intervals.iterrows():
            lines.append(f"  {r['quantity']:>16}: {short(r['estimate'])}  [{short(r['lo'])}, {short(r['hi'])}]")
        return "\n".join(lines)


def accepts(fn: Callable, names) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(n in params for n in names)


def _resample_indices(
    df: pd.DataFrame, n_resamples: int, seed: int, group_col: str | None, strata_col: str | None
) -> list[np.ndarray]:
    """Row positions of every resample, drawn up front from one generator so results do not depend on n_jobs."""
    rng = np.random.default_rng(seed)
    n = len(df)
    if group_col is not None:
        codes, uniq = pd.factorize(df[group_col], sort=True)
        members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
        out = []
        for _ in range(n_resamples):
            pick = rng.integers(0, len(members), len(members))
            out.append(np.concatenate([members[k] for k in pick]))
        return out
    if strata_col is not None:
        codes, uniq = pd.factorize(
            isoflop_groups(df, strata_col) if strata_col == "budget" else df[strata_col], sort=True
        )
        members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
        return [np.concatenate([m[rng.integers(0, m.size, m.size)] for m in members]) for _ in range(n_resamples)]
    return [rng.integers(0, n, n) for _ in range(n_resamples)]


def _resample(df: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    out = df.iloc[idx].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def _bootstrap_chunk(fit_fn, df, chunk, kwargs, quantities):
    rows = []
    for idx in chunk:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = fit_fn(_resample(df, idx), **kwargs)
                rows.append({k: float(v) for k, v in quantities(res).items()})
            except (FitError, ValueError, ArithmeticError, np.linalg.LinAlgError):
                rows.append(None)
    return rows


def bootstrap(
    fit_fn: Callable[..., Any],
    df: pd.DataFrame,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    quantities: Callable[[Any], dict[str, float]] | None = None,
    level: float = 0.9,
    group_col: str | None = None,
    strata_col: str | None = None,
    budget: float | None = None,
    n_jobs: int | None = None,
    batched: bool = True,
    result: FitResult | None = None,
) -> BootstrapResult:
    """Percentile bootstrap of any fit: refit ``fit_fn`` on ``n_resamples`` resamples of ``df`` and report the
    ``level`` interval of every quantity.

    Resamples draw rows (runs) with replacement; with ``group_col``, whole groups (e.g. "run_id" for curves,
    "budget" for IsoFLOP sets); with ``strata_col``, rows within each stratum (each budget keeps its run count).
    ``fit_fn`` returns a ``analysis.laws.protocol.FitResult``, and only that protocol is used: whole groups of the
    result's ``resample_group`` (Approach 1: runs of curves) are resampled by default. ``quantities(result) -> dict``
    picks what to report (default ``result.default_quantities(budget=budget)``: exponents, E, N_opt and D_opt at
    ``budget``...). Resamples start from the full-data optimum with the keywords of ``result.warm_start()`` (Approach
    3, Kaplan) where ``fit_fn`` accepts them. When ``batched`` is true and ``result.refit_resamples(df, resamples,
    n_threads=)`` answers (Approach 3: every resample in one batched L-BFGS from that optimum, with the result's own
    columns, delta and fixed E), the result refits them all on ``n_jobs`` threads; otherwise
    ``fit_fn`` is called once a resample, on ``n_jobs`` processes (joblib). Reproducible by
    ``seed`` whatever ``n_jobs``; ``n_jobs`` None uses every core (for other fits: when the resamples would take
    more than a few seconds on one). ``result``: ``fit_fn(df)`` when the caller has already made it (not refitted).
    Resamples whose fit fails are NaN rows, counted in ``n_failed``; infinite
    values (a coefficient that overflows in a degenerate refit) are NaN too.
    """
    t0 = time.perf_counter()
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise FitError(
            f"bootstrap: df must be a non-empty DataFrame, got "
            f"{type(df).__name__ if not isinstance(df, pd.DataFrame) else 'an empty one'}"
        )
    if not (isinstance(n_resamples, int) and n_resamples >= 2):
        raise FitError(f"bootstrap: n_resamples={n_resamples!r}; must be an integer >= 2")
    if not (0 < level < 1):
        raise FitError(f"bootstrap: level={level!r}; must be in (0, 1)")
    for name, col in (("group_col", group_col), ("strata_col", strata_col)):
        if col is not None and col not in df.columns:
            raise FitError(f"bootstrap: {name}={col!r} is not a column of df; columns are {list(df.columns)}")
    full: FitResult = fit_fn(df) if result is None else result
    if group_col is None and strata_col is None:
        g = full.resample_group
        if g is not None and g in df.columns:
            group_col = g
    if quantities is None:
        quantities = _DefaultQuantities(budget)
    estimate = {k: float(v) for k, v in quantities(full).items()}
    kwargs = full.warm_start()
    if kwargs and not accepts(fit_fn, kwargs):
        kwargs = {}
    data = df.reset_index(drop=True)
    data.attrs.update(df.attrs)
    chunks_idx = _resample_indices(data, n_resamples, seed, group_col, strata_col)
    cores = os.cpu_count() or 1
    fits = None
    if batched:
        # ask the result: Approach 3 solves every resample (x every start) in one batched L-BFGS, on threads;
        # the others answer None and are refitted one resample at a time below
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = full.refit_resamples(data, chunks_idx, n_threads=cores if n_jobs is None or n_jobs < 0 else n_jobs)
    if fits is not None:
        rows: list[dict[str, float] | None] = []
        for res in fits:
            if res is None:  # the batched refit's "this resample cannot be fitted" (fit_fn would raise)
                rows.append(None)
                continue
            try:
                rows.append({k: float(v) for k, v in quantities(res).items()})
            except (FitError, ValueError, ArithmeticError):
                rows.append(None)
    else:
        # time one resample here to decide whether the process pool pays for itself
        t1 = time.perf_counter()
        rows = _bootstrap_chunk(fit_fn, data, chunks_idx[:1], kwargs, quantities)
        per_fit = time.perf_counter() - t1
        if n_jobs is None:
            n_jobs = cores if per_fit * (n_resamples - 1) > 3.0 else 1
        elif n_jobs < 0:
            n_jobs = cores
        rest = chunks_idx[1:]
        if n_jobs > 1 and len(rest) > 1:
            from joblib import Parallel, delayed

            parts = [p for p in np.array_split(np.arange(len(rest)), n_jobs * 4) if len(p)]
            for out in Parallel(n_jobs=n_jobs)(
                delayed(_bootstrap_chunk)(fit_fn, data, [rest[i] for i in p], kwargs, quantities) for p in parts
            ):
                rows.extend(out)
        else:
            rows.extend(_bootstrap_chunk(fit_fn, data, rest, kwargs, quantities))
    names = list(estimate)
    samples = pd.DataFrame([r if r is not None else {k: np.nan for k in names} for r in rows], columns=names)
    samples = samples.replace([np.inf, -np.inf], np.nan)  # an overflowing coefficient (degenerate refit): no value
    n_failed = sum(r is None for r in rows)
    if n_failed > 0.1 * n_resamples:
        warnings.warn(f"bootstrap: {n_failed} of {n_resamples} resamples failed to fit; intervals use the rest")
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    intervals = pd.DataFrame(
        {
            "quantity": names,
            "estimate": [estimate[k] for k in names],
            "lo": [float(np.nanquantile(samples[k], lo_q)) if samples[k].notna().any() else np.nan for k in names],
            "hi": [float(np.nanquantile(samples[k], hi_q)) if samples[k].notna().any() else np.nan for k in names],
        }
    )
    return BootstrapResult(
        result=full,
        samples=samples,
        intervals=intervals,
        level=level,
        n_resamples=n_resamples,
        n_failed=n_failed,
        seed=seed,
        group_col=group_col or strata_col,
        seconds=time.perf_counter() - t0,
    )


class _DefaultQuantities:
    """Picklable ``lambda r: r.default_quantities(budget=budget)`` for worker processes."""

    def __init__(self, budget):
        self.budget = budget

    def __call__(self, result):
        return result.default_quantities(budget=self.budget)
