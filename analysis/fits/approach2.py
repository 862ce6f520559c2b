"""Chinchilla's Approach 2 (IsoFLOP profiles, Hoffmann et al. 2022 §3.2): per budget, the minimum of loss against
ln N (``analysis.fits.minima.estimate_minimum``); then power laws N_opt ∝ C^a, D_opt ∝ C^b across budgets, and an
offset power law L_opt(C) through the minimum losses.

No budget is dropped silently: a minimum at or beyond the sampled sizes is kept and flagged (``at_edge``), and a
budget that cannot give a minimum at all (fewer than 3 distinct sizes, or a parabola so flat that its vertex lies
beyond what floats hold) stays in ``per_budget``, not used, with the reason.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions, take, unique_index
from analysis.fits.approach1 import allocation_quantities, power_law_parameters
from analysis.fits.minima import DEFAULT_ESTIMATOR, ESTIMATORS, LOG_FLOAT_MAX, estimate_minimum
from analysis.laws.forms import Allocation, AllocationLaw, OffsetPowerLaw, PowerLaw, scalar_or_array
from analysis.laws.protocol import Parameter

PER_BUDGET_COLUMNS = [
    "budget",
    "C",
    "N_opt",
    "D_opt",
    "loss_opt",
    "at_edge",
    "curvature",
    "estimator",
    "n_runs",
    "N_min",
    "N_max",
    "p2",
    "p1",
    "p0",
    "used",
    "note",
]


def isoflop_groups(df: pd.DataFrame, budget_col: str = "budget", c_col: str = "C") -> pd.Series:
    """The IsoFLOP budget of each row: ``budget_col`` where finite, else ``c_col`` rounded to 2 significant figures
    (runs sized for one budget land within rounding of it)."""
    key = pd.Series(np.nan, index=df.index, dtype=float)
    if budget_col in df.columns:
        key = pd.to_numeric(df[budget_col], errors="coerce").astype(float)
    missing = key.isna()
    if missing.any():
        if c_col not in df.columns:
            raise FitError(
                f"isoflop_groups: neither column {budget_col!r} (budget_col) nor {c_col!r} (c_col) gives "
                f"the budget of {int(missing.sum())} row(s); columns are {list(df.columns)}"
            )
        c = pd.to_numeric(df.loc[missing, c_col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = 10.0 ** (np.floor(np.log10(c)) - 1)
        key[missing] = np.round(c / mag) * mag
    return key


def usable_minimum(n_opt: float, d_opt: float) -> bool:
    """Whether a budget's minimum can enter the power laws: N_opt and D_opt positive, finite and not subnormal (a
    parabola's vertex more than ~700 e-folds from its sizes gives 0 or inf). Such a budget is not used, as one of
    fewer than 3 sizes is not (``fit_approach2``; the batched refits apply the same rule)."""
    return all(0 < v < math.inf and abs(math.log(v)) < LOG_FLOAT_MAX for v in (n_opt, d_opt))


def isoflop_minimum(N, D, loss, estimator: str = DEFAULT_ESTIMATOR) -> dict:
    """One budget's minimum by ``estimator`` (``estimate_minimum``), in the units of a run: N_opt (and its ln,
    ``log_n_opt``), D_opt (from a straight line of ln D against ln N through the budget's runs, exact for C = 6ND
    and nearly so under conventions that add attention FLOPs), loss_opt, at_edge, curvature, n_runs, N_min, N_max,
    and p2, p1, p0: the parabola through all the budget's points, loss = p2 (ln N)^2 + p1 ln N + p0, which the
    IsoFLOP figure draws. A vertex too far for floats gives N_opt 0 or inf (``usable_minimum`` says so)."""
    x, ld, y = np.log(np.asarray(N, float)), np.log(np.asarray(D, float)), np.asarray(loss, float)
    m = estimate_minimum(x, y, estimator)
    s, c = np.polyfit(x, ld, 1)
    p2, p1, p0 = np.polyfit(x, y, 2)
    with np.errstate(over="ignore", under="ignore"):  # a nearly flat parabola's far vertex: 0 or inf, not a crash
        n_opt, d_opt = float(np.exp(m.log_n)), float(np.exp(c + s * m.log_n))
    return dict(
        N_opt=n_opt,
        D_opt=d_opt,
        log_n_opt=float(m.log_n),
        loss_opt=m.loss,
        at_edge=m.at_edge,
        curvature=m.curvature,
        estimator=m.method,
        n_runs=int(x.size),
        N_min=float(np.exp(x.min())),
        N_max=float(np.exp(x.max())),
        p2=float(p2),
        p1=float(p1),
        p0=float(p0),
    )


def parabola_at(per_budget: pd.DataFrame, budget: float, N):
    """The parabola loss = p2 (ln N)^2 + p1 ln N + p0 of ``budget``'s row of a per-budget table (the columns
    ``isoflop_minimum`` returns) evaluated at model sizes N."""
    rows = per_budget[np.isclose(per_budget["budget"], budget, rtol=1e-9)]
    if rows.empty:
        raise FitError(f"parabola: budget={budget!r} is not one of {per_budget['budget'].tolist()}")
    r = rows.iloc[0]
    x = np.log(np.asarray(N, dtype=float))
    return scalar_or_array(r["p2"] * x * x + r["p1"] * x + r["p0"])


@dataclass(frozen=True)
class Approach2Result:
    """Approach 2: one minimum a budget (``per_budget``), then N_opt ∝ C^a, D_opt ∝ C^b across budgets and
    L_opt(C) = E + (C_c/C)^alpha_C through their minimum losses (``loss_law``; E = 0 with fewer than 4 budgets,
    too few to pin an offset)."""

    law: AllocationLaw
    per_budget: pd.DataFrame = field(repr=False, compare=False)
    n_budgets_used: int = 0
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    estimator: str = DEFAULT_ESTIMATOR
    resample_group: str | None = None
    columns: dict = field(
        default_factory=lambda: dict(N="N", D="D", C="C", loss="loss", budget="budget"), repr=False, compare=False
    )  # the runs' columns the fit read (the batched refit reads the same)

    @property
    def n_opt(self) -> PowerLaw:
        return self.law.n_opt

    @property
    def d_opt(self) -> PowerLaw:
        assert self.law.d_opt is not None  # this approach always fits d_opt
        return self.law.d_opt

    @property
    def loss_law(self) -> OffsetPowerLaw | None:
        return self.law.loss

    @property
    def a(self) -> float:
        return self.law.a

    @property
    def b(self) -> float:
        return self.law.b

    @property
    def flops_convention(self) -> str:
        return self.law.flops_convention

    @property
    def params_convention(self) -> str:
        return self.law.params_convention

    @property
    def n_at_edge(self) -> int:
        return int(self.per_budget["at_edge"].fillna(False).astype(bool).sum())

    def compute_optimal(self, C) -> Allocation:
        """N_opt, D_opt at C (FLOPs as loaded) and the loss from ``loss_law`` (NaN without one)."""
        return self.law.compute_optimal(C)

    def parabola(self, budget: float, N):
        """The parabola through ``budget``'s runs (a value of ``per_budget.budget``) evaluated at model sizes N."""
        return parabola_at(self.per_budget, budget, N)

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        return allocation_quantities(self, budget, with_loss=self.loss_law is not None)

    def warm_start(self) -> dict[str, Any]:
        """Each budget's estimator as the full data resolved it ("auto" -> spline or local parabola by the budget's
        own distinct sizes), so that every bootstrap resample refits the same estimator."""
        used = self.per_budget[self.per_budget["used"].astype(bool)]
        return {"estimator": {float(b): str(e) for b, e in zip(used["budget"], used["estimator"])}}

    def refit_resamples(self, runs, resamples, *, n_threads=None, estimators=None) -> list | None:
        """Every resample refitted at once by weighted sums (``analysis.fits.approach2_resamples``), or None where
        a budget's minimum is not the parabola through all its runs (the bootstrap then refits one at a time).
        With ``estimators`` (each budget's estimator, as ``warm_start()["estimator"]``) budgets of any number of
        sizes are batched too (the local parabola's window and the GCV spline), as ``fit_approach2(runs.iloc[idx],
        estimator=estimators)`` would fit them."""
        from analysis.fits.approach2_resamples import refit

        return refit(self, runs, resamples, self.columns, Approach2Result, isoflop_groups, estimators)

    def parameters(self) -> list[Parameter]:
        rows = power_law_parameters(self.law)
        if self.loss_law is not None:
            rows += [
                Parameter("E of L_opt(C)", self.loss_law.E, None, "loss"),
                Parameter("α_C of L_opt(C)", self.loss_law.alpha, None, "exp"),
            ]
        return rows

    def fit_summary(self) -> dict[str, Any]:
        return {"n_budgets_used": self.n_budgets_used, "estimator": self.estimator}

    def __repr__(self) -> str:
        edge = self.n_at_edge
        return (
            f"Approach2Result(a={self.a:.4f}, b={self.b:.4f}, n_opt={self.n_opt!r}, d_opt={self.d_opt!r} | "
            f"{self.n_budgets_used} of {len(self.per_budget)} budgets used, minima by {self.estimator}"
            f"{f', {edge} at the edge of the sampled N (kept, flagged)' if edge else ''} | "
            f"flops={self.flops_convention}, params={self.params_convention})"
        )


def fit_approach2(
    runs: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    budget_col: str = "budget",
    estimator: str | Mapping[float, str] = DEFAULT_ESTIMATOR,
) -> Approach2Result:
    """Chinchilla Approach 2 (Hoffmann et al. 2022 §3.2): per IsoFLOP budget, the minimum of loss in ln N by
    ``estimator`` (``analysis.fits.minima.estimate_minimum``), then power laws N_opt ∝ C^a and D_opt ∝ C^b across
    budgets, and a power law L_opt(C) through the minimum losses: with an offset E (Kaplan et al. 2020 eq. 1.3 with
    the irreducible term of Hoffmann et al.) from 4 budgets on, a straight line in log-log space below that.

    Budgets come from ``budget_col`` (or C rounded to 2 significant figures where it is missing or NaN); C of a
    budget is the geometric mean of its runs' ``c_col`` (the FLOPs under the loaded convention; ``budget_col``
    itself when there is no ``c_col``). Every budget is kept in ``per_budget``: a minimum at or beyond the sampled
    N is used and flagged ``at_edge`` (with a warning); a budget with fewer than 3 distinct N has no minimum, is
    not used, and says why in ``note`` (with a warning).

    ``estimator`` may also map each budget (a value of ``per_budget.budget``) to its estimator, as
    ``warm_start()`` does so that a bootstrap resample uses the estimator the full data chose for that budget:
    "auto" resolved on a resample's distinct sizes (fewer than the budget's own: draws repeat) would otherwise
    switch a spline budget to the local parabola and bootstrap a different estimator from the one reported.
    Budgets missing from the mapping use ``DEFAULT_ESTIMATOR``.
    """
    fn = "fit_approach2"
    chosen = dict(estimator) if isinstance(estimator, Mapping) else None
    for e in chosen.values() if chosen is not None else (estimator,):
        if e not in ESTIMATORS:
            raise FitError(f"{fn}: estimator={e!r}; allowed: {', '.join(ESTIMATORS)}")
    label = "per budget, as resolved on the full data" if chosen is not None else str(estimator)
    runs = unique_index(runs)
    has_c = isinstance(runs, pd.DataFrame) and c_col in runs.columns
    roles: dict[str, Any] = dict(N=n_col, D=d_col, loss=loss_col) | ({"C": c_col} if has_c else {})
    t = take(runs, fn, positive=tuple(roles), min_rows=3, **roles)
    if not has_c:
        if budget_col not in runs.columns:
            raise FitError(
                f"{fn}: column {c_col!r} (c_col) is not in runs and neither is {budget_col!r} "
                f"(budget_col); one of them must give each run's FLOPs. Columns are {list(runs.columns)}"
            )
        t["C"] = pd.to_numeric(runs.loc[t.index, budget_col], errors="coerce")
    key = isoflop_groups(runs.loc[t.index], budget_col, c_col if has_c else budget_col).to_numpy()
    N, D, L, C = (t[k].to_numpy() for k in ("N", "D", "loss", "C"))
    rows = []
    for budget in np.unique(key):
        g = key == budget
        row = dict(
            budget=float(budget),
            C=float(np.exp(np.log(C[g]).mean())),
            n_runs=int(g.sum()),
            N_min=float(N[g].min()),
            N_max=float(N[g].max()),
            estimator=chosen.get(float(budget), DEFAULT_ESTIMATOR) if chosen is not None else estimator,
        )
        distinct = np.unique(N[g]).size
        if distinct < 3:
            note = f"{distinct} distinct N (< 3): no minimum can be estimated"
            warnings.warn(f"{fn}: budget {budget:.3g}: {note}; not used")
            rows.append(
                row
                | dict(
                    N_opt=np.nan,
                    D_opt=np.nan,
                    loss_opt=np.nan,
                    at_edge=False,
                    curvature=np.nan,
                    p2=np.nan,
                    p1=np.nan,
                    p0=np.nan,
                    used=False,
                    note=note,
                )
            )
            continue
        m = isoflop_minimum(N[g], D[g], L[g], str(row["estimator"]))
        if not usable_minimum(m["N_opt"], m["D_opt"]):
            note = (
                f"minimum at ln N = {m['log_n_opt']:.4g}, beyond what floats hold (the parabola through its runs "
                f"is nearly flat): no minimum"
            )
            warnings.warn(f"{fn}: budget {budget:.3g}: {note}; not used")
            rows.append(
                row | m | dict(N_opt=np.nan, D_opt=np.nan, loss_opt=np.nan, at_edge=False, used=False, note=note)
            )
            continue
        note = ""
        if m["at_edge"]:
            note = (
                f"minimum N={m['N_opt']:.3g} at or beyond the sampled N [{m['N_min']:.3g}, {m['N_max']:.3g}]: "
                f"kept and flagged"
            )
            warnings.warn(f"{fn}: budget {budget:.3g}: {note}")
        rows.append(row | m | dict(used=True, note=note))
    per = pd.DataFrame(rows, columns=PER_BUDGET_COLUMNS)
    per["at_edge"] = per["at_edge"].astype(bool)
    per["used"] = per["used"].astype(bool)
    u = per[per["used"]]
    if len(u) < 2:
        raise FitError(
            f"{fn}: {len(u)} budget(s) have an IsoFLOP minimum (of {len(per)}; a minimum needs >= 3 "
            f"distinct N and a vertex within float range); at least 2 are needed for the power laws"
        )
    loss_law = None
    if len(u) >= 2:
        try:
            loss_law = OffsetPowerLaw.fit(u["C"], u["loss_opt"], offset=len(u) >= 4)
        except FitError as err:
            warnings.warn(f"{fn}: L_opt(C): {err}")
    fc, pc = conventions(runs)
    law = AllocationLaw(
        name="approach2",
        n_opt=PowerLaw.fit(u["C"], u["N_opt"]),
        d_opt=PowerLaw.fit(u["C"], u["D_opt"]),
        loss=loss_law,
        source="fitted to this sweep",
        flops_convention=fc,
        params_convention=pc,
    )
    cols = dict(N=n_col, D=d_col, C=c_col if has_c else budget_col, loss=loss_col, budget=budget_col)
    return Approach2Result(law=law, per_budget=per, n_budgets_used=len(u), data=runs, estimator=label, columns=cols)
