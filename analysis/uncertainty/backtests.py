"""Backtests: refit without the largest budgets and predict them, one cutoff or rolling over every cutoff, per law.

Reference: Hoffmann et al. 2022 (arXiv:2203.15556) for the IsoFLOP optimum a backtest is judged against.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, take, unique_index
from analysis.fits.approach2 import isoflop_groups, isoflop_minimum, usable_minimum
from analysis.laws.forms import Allocation
from analysis.numbers import short
from analysis.uncertainty.resampling import accepts


@dataclass(frozen=True)
class BacktestResult:
    """A fit made without one budget, judged on it: ``predicted`` vs the ``observed`` IsoFLOP optimum of the
    held-out budget (its IsoFLOP minimum); relative errors are predicted / observed - 1."""

    holdout_budget: float
    C: float
    observed: Allocation
    predicted: Allocation
    rel_err_N: float
    rel_err_D: float
    rel_err_loss: float
    observed_at_edge: bool
    n_train_runs: int
    n_holdout_runs: int
    result: Any = field(repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        q = ("N_opt", "D_opt", "loss")
        return pd.DataFrame(
            {
                "quantity": q,
                "predicted": [self.predicted.N_opt, self.predicted.D_opt, self.predicted.loss],
                "observed": [self.observed.N_opt, self.observed.D_opt, self.observed.loss],
                "rel_error": [self.rel_err_N, self.rel_err_D, self.rel_err_loss],
            }
        )

    def __repr__(self) -> str:
        edge = "; observed minimum at the edge of its sizes" if self.observed_at_edge else ""
        return (
            f"BacktestResult(holdout budget {self.holdout_budget:.3g} (C={self.C:.3g}, {self.n_holdout_runs} "
            f"runs; fit on {self.n_train_runs}): N_opt {self.predicted.N_opt:.3g} vs {self.observed.N_opt:.3g} "
            f"({self.rel_err_N:+.1%}), D_opt {self.predicted.D_opt:.3g} vs {self.observed.D_opt:.3g} "
            f"({self.rel_err_D:+.1%}), loss {short(self.predicted.loss)} vs {short(self.observed.loss)} "
            f"({self.rel_err_loss:+.2%}){edge})"
        )


def backtest(
    fit_fn: Callable[..., Any],
    runs: pd.DataFrame,
    *,
    holdout_budget: float | None = None,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    budget_col: str = "budget",
    curves: pd.DataFrame | None = None,
    run_col: str = "run_id",
) -> BacktestResult:
    """Fit without one IsoFLOP budget (default: the largest) and predict its optimal N, D and loss.

    The observed optimum is the held-out budget's IsoFLOP minimum in ln N (``isoflop_minimum``); C is the
    geometric mean of its runs' ``c_col``. ``fit_fn`` is called on the remaining runs, or, when ``curves`` is
    given (Approach 1), on the curves of the remaining runs (matched on ``run_col``). Relative errors are
    predicted / observed - 1 (NaN for the loss if the fit cannot predict it).
    """
    fn = "backtest"
    runs = unique_index(runs)
    t = take(runs, fn, positive=("N", "D", "loss", "C"), min_rows=4, N=n_col, D=d_col, loss=loss_col, C=c_col)
    key = isoflop_groups(runs.loc[t.index], budget_col, c_col)
    budgets = np.sort(key.unique())
    if budgets.size < 3:
        raise FitError(f"{fn}: runs span {budgets.size} budget(s); a backtest needs at least 3 (2 to fit, 1 held out)")
    if holdout_budget is None:
        holdout_budget = float(budgets[-1])
    match = np.isclose(key.to_numpy(), holdout_budget, rtol=1e-6)
    if not match.any():
        raise FitError(f"{fn}: holdout_budget={holdout_budget!r} is not one of the budgets {budgets.tolist()}")
    held = t[match]
    obs = isoflop_minimum(held["N"], held["D"], held["loss"])
    if not usable_minimum(obs["N_opt"], obs["D_opt"]):
        raise FitError(
            f"{fn}: the held-out budget {holdout_budget:.3g} has no usable minimum (its parabola's vertex, ln N = "
            f"{obs['log_n_opt']:.4g}, is beyond what floats hold)"
        )
    C = float(np.exp(np.log(held["C"]).mean()))
    train = runs.loc[t.index[~match]]
    if curves is not None:
        if run_col not in runs.columns or run_col not in curves.columns:
            raise FitError(f"{fn}: run_col={run_col!r} must be a column of both runs and curves")
        res = fit_fn(curves[curves[run_col].isin(set(train[run_col]))])
    else:
        res = fit_fn(train)
    pred = res.compute_optimal(C)
    observed = Allocation.of(C, obs["N_opt"], obs["D_opt"], obs["loss_opt"])
    if obs["at_edge"]:
        warnings.warn(
            f"{fn}: the held-out budget's minimum N={obs['N_opt']:.3g} lies at or beyond the edge of its "
            f"sampled N; the observed optimum is an extrapolation"
        )
    return BacktestResult(
        holdout_budget=float(holdout_budget),
        C=C,
        observed=observed,
        predicted=pred,
        rel_err_N=float(pred.N_opt / observed.N_opt - 1),
        rel_err_D=float(pred.D_opt / observed.D_opt - 1),
        rel_err_loss=float(pred.loss / observed.loss - 1),
        observed_at_edge=obs["at_edge"],
        n_train_runs=len(train),
        n_holdout_runs=int(match.sum()),
        result=res,
    )


# rolling backtest

ROLLING_COLUMNS = [
    "law",
    "label",
    "cutoff_budget",
    "C_cutoff",
    "target_budget",
    "C_target",
    "distance",
    "N_pred",
    "N_obs",
    "log_err_N",
    "loss_pred",
    "loss_obs",
    "rel_err_loss",
    "obs_at_edge",
    "n_train_runs",
]


def eligible_laws(summary: pd.DataFrame, n_pairs: int) -> pd.DataFrame:
    """Rows of a rolling backtest's ``summary`` whose law predicted at least half of the ``n_pairs`` pairs."""
    return summary[(summary["n_pairs"] >= max(1, n_pairs / 2)) & summary["median_abs_log_err_N"].notna()]


@dataclass(frozen=True)
class RollingBacktest:
    """Every law refitted on the budgets up to each cutoff, predicting every larger budget's IsoFLOP optimum.

    ``table`` has one row a (law, cutoff, target): distance = C_target / C_cutoff, log_err_N = ln(N_pred / N_obs),
    rel_err_loss = loss_pred / loss_obs - 1 (NaN where the law predicts no loss). ``summary`` has one row a law:
    pairs predicted, median |log_err_N|, median |rel_err_loss|. ``best`` is the law with the lowest median
    |log_err_N| among those that predicted at least half of the pairs (``RULE``); ``failures`` says why a law could
    not be fitted at a cutoff.
    """

    table: pd.DataFrame = field(repr=False)
    summary: pd.DataFrame = field(repr=False)
    best: str | None
    n_pairs: int
    failures: dict = field(default_factory=dict, repr=False)
    estimator: str = ""
    seconds: float = float("nan")

    RULE = (
        "lowest median |ln(N_pred / N_obs)| over every (cutoff, larger budget) pair, among laws that predicted "
        "at least half of the pairs; ties broken by the median |loss error|"
    )

    @property
    def eligible(self) -> pd.DataFrame:
        """The summary rows of the laws ``best`` is chosen among: those that predicted at least half of the pairs."""
        return eligible_laws(self.summary, self.n_pairs)

    def __repr__(self) -> str:
        lines = [f"RollingBacktest({self.n_pairs} (cutoff, target) pairs, best: {self.best}, {self.seconds:.1f} s)"]
        for r in self.summary.itertuples():
            lines.append(
                f"  {r.label:>32}: {r.n_pairs} pairs, median |ln N err| {short(r.median_abs_log_err_N)}, "
                f"median |loss err| {short(r.median_abs_rel_err_loss)}"
            )
        return "\n".join(lines)


def rolling_backtest(
    runs: pd.DataFrame,
    laws=None,
    *,
    E: float | None = None,
    ratio=None,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    budget_col: str = "budget",
    min_budgets: int = 2,
    estimator: str | None = None,
) -> RollingBacktest:
    """For every cutoff budget (from the ``min_budgets``-th smallest to the second largest), fit each law in
    ``laws`` (default ``analysis.uncertainty.candidates.candidates(E=E)``) on the runs of budgets <= cutoff and predict
    the optimum of every larger budget; compare with that budget's observed IsoFLOP minimum (``isoflop_minimum`` with
    ``estimator``, default the Approach 2 default), N in ln ratio and the loss as a relative error, against the
    extrapolation distance C_target / C_cutoff.

    Laws with ``six_nd`` allocate under C = 6ND; their allocations are converted through ``ratio`` (default
    ``analysis.laws.conventions.ratio_for(runs)``: exact through the family rule for this harness's runs). Each cutoff's
    fit starts from the previous cutoff's optimum through the result's ``warm_start()`` where the law's fit accepts
    those keywords (no information
    from larger budgets reaches a fit). A law that cannot be fitted at a cutoff is listed in ``failures``.
    """
    from analysis.fits.minima import DEFAULT_ESTIMATOR
    from analysis.laws.conventions import in_convention, ratio_for
    from analysis.uncertainty.candidates import candidates

    t0 = time.perf_counter()
    fn = "rolling_backtest"
    estimator = estimator or DEFAULT_ESTIMATOR
    laws = candidates(E=E) if laws is None else list(laws)
    runs = unique_index(runs)
    t = take(runs, fn, positive=("N", "D", "loss", "C"), min_rows=4, N=n_col, D=d_col, loss=loss_col, C=c_col)
    runs = runs.loc[t.index]
    key = isoflop_groups(runs, budget_col, c_col).to_numpy()
    budgets = np.unique(key)
    if budgets.size < min_budgets + 1:
        raise FitError(
            f"{fn}: runs span {budgets.size} budget(s); a rolling backtest needs at least "
            f"{min_budgets + 1} (min_budgets={min_budgets} to fit, 1 to predict)"
        )
    if ratio is None and any(law.six_nd for law in laws):
        ratio, _ = ratio_for(runs)
    C_of = {b: float(np.exp(np.log(t["C"].to_numpy()[key == b]).mean())) for b in budgets}
    observed = {}
    for b in budgets:
        g = key == b
        if np.unique(t["N"].to_numpy()[g]).size >= 3:
            m = isoflop_minimum(t["N"].to_numpy()[g], t["D"].to_numpy()[g], t["loss"].to_numpy()[g], estimator)
            if usable_minimum(m["N_opt"], m["D_opt"]):  # a vertex beyond float range observes nothing
                observed[b] = m
    rows: list[dict[str, Any]] = []
    failures: dict[str, list[str]] = {}
    for law in laws:
        prev = None
        for cutoff in budgets[min_budgets - 1 : -1]:
            train = runs[key <= cutoff]
            train.attrs.update(runs.attrs)
            targets = [b for b in budgets if b > cutoff and b in observed]
            if not targets:
                continue
            kw: dict[str, Any] = prev.warm_start() if prev is not None else {}
            if kw and not accepts(law.fit, kw):
                kw = {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    res = law.fit(train, **kw)
                except (FitError, ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
                    failures.setdefault(law.name, []).append(f"cutoff {cutoff:.3g}: {e}")
                    continue
                prev = res
                alloc = in_convention(res, ratio) if law.six_nd else res
                try:
                    pred = alloc.compute_optimal(np.array([C_of[b] for b in targets]))
                except (FitError, ValueError, ArithmeticError) as e:
                    failures.setdefault(law.name, []).append(f"cutoff {cutoff:.3g}: no allocation: {e}")
                    continue
            for i, b in enumerate(targets):
                obs = observed[b]
                Np, Lp = float(np.atleast_1d(pred.N_opt)[i]), float(np.atleast_1d(pred.loss)[i])
                rows.append(
                    dict(
                        law=law.name,
                        label=law.label,
                        cutoff_budget=float(cutoff),
                        C_cutoff=C_of[cutoff],
                        target_budget=float(b),
                        C_target=C_of[b],
                        distance=C_of[b] / C_of[cutoff],
                        N_pred=Np,
                        N_obs=obs["N_opt"],
                        log_err_N=float(np.log(Np / obs["N_opt"])),
                        loss_pred=Lp,
                        loss_obs=obs["loss_opt"],
                        rel_err_loss=Lp / obs["loss_opt"] - 1,
                        obs_at_edge=bool(obs["at_edge"]),
                        n_train_runs=len(train),
                    )
                )
    table = pd.DataFrame(rows, columns=ROLLING_COLUMNS)
    n_pairs = sum(
        int((budgets > c).sum() - sum(1 for b in budgets if b > c and b not in observed))
        for c in budgets[min_budgets - 1 : -1]
    )
    summ = []
    for law in laws:
        g = table[table["law"] == law.name]
        summ.append(
            dict(
                law=law.name,
                label=law.label,
                n_pairs=len(g),
                median_abs_log_err_N=float(g["log_err_N"].abs().median()) if len(g) else np.nan,
                median_abs_rel_err_loss=float(g["rel_err_loss"].abs().median())
                if g["rel_err_loss"].notna().any()
                else np.nan,
                max_distance=float(g["distance"].max()) if len(g) else np.nan,
            )
        )
    summary = pd.DataFrame(
        summ, columns=["law", "label", "n_pairs", "median_abs_log_err_N", "median_abs_rel_err_loss", "max_distance"]
    )
    eligible = eligible_laws(summary, n_pairs)
    best = None
    if len(eligible):
        ranked = eligible.assign(_l=eligible["median_abs_rel_err_loss"].fillna(np.inf))
        best = str(ranked.sort_values(["median_abs_log_err_N", "_l"]).iloc[0]["law"])
    return RollingBacktest(
        table=table,
        summary=summary,
        best=best,
        n_pairs=n_pairs,
        failures=failures,
        estimator=estimator,
        seconds=time.perf_counter() - t0,
    )
