"""Chinchilla's Approach 1: the lower envelope of every training curve (minimum loss reached at each FLOP count),
the (N, D) reaching it, and power laws N_opt ∝ C^a, D_opt ∝ C^b through it (Hoffmann et al. 2022 §3.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions, take, unique_index
from analysis.laws.forms import Allocation, AllocationLaw, PowerLaw
from analysis.laws.protocol import Parameter


def frontier(x: np.ndarray, y: np.ndarray, n_bins: int | None) -> np.ndarray:
    """Indices of the lower envelope of y against x: the minimum y in each log-spaced bin of x, kept only where it
    is below every minimum at smaller x (a point reached with less compute at lower loss dominates it)."""
    order = np.argsort(x, kind="stable")
    if n_bins:
        lx = np.log(x[order])
        edges = np.linspace(lx[0], lx[-1], n_bins + 1)
        which = np.clip(np.searchsorted(edges, lx, side="right") - 1, 0, n_bins - 1)
        picks = []
        for k in np.unique(which):
            members = order[which == k]
            picks.append(members[np.argmin(y[members])])
        order = np.array(picks)
    keep, best = [], np.inf
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    return np.array(keep, dtype=int)


def power_law_parameters(law: AllocationLaw) -> list[Parameter]:
    """The parameter table of an allocation fitted as two power laws (Approaches 1 and 2)."""
    assert law.d_opt is not None  # both approaches fit d_opt
    return [
        Parameter("a (N_opt ∝ C^a)", law.n_opt.exponent, "a", "exp"),
        Parameter("b (D_opt ∝ C^b)", law.d_opt.exponent, "b", "exp"),
        Parameter("N_opt coefficient", law.n_opt.coef, None, "g"),
        Parameter("D_opt coefficient", law.d_opt.coef, None, "g"),
    ]


def allocation_quantities(fit, budget: float | None, with_loss: bool) -> dict[str, float]:
    """a, b and, at ``budget``, N_opt, D_opt, tokens per parameter (and the loss when ``with_loss``)."""
    q = {"a": fit.a, "b": fit.b}
    if budget is not None:
        al = fit.compute_optimal(budget)
        q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param)
        if with_loss:
            q["loss"] = al.loss
    return q


@dataclass(frozen=True)
class Approach1Result:
    """Approach 1: ``law`` (N_opt = n_opt(C), D_opt = d_opt(C)) fitted to the envelope of training curves."""

    law: AllocationLaw
    envelope: pd.DataFrame = field(repr=False, compare=False)
    n_runs: int = 0
    n_points: int = 0
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    resample_group: str | None = "run_id"  # curves' rows are steps: the bootstrap resamples whole runs
    default_settings: bool = False  # fitted with fit_approach1's default columns and options (batched refits)

    @property
    def n_opt(self) -> PowerLaw:
        return self.law.n_opt

    @property
    def d_opt(self) -> PowerLaw:
        assert self.law.d_opt is not None  # this approach always fits d_opt
        return self.law.d_opt

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

    def compute_optimal(self, C) -> Allocation:
        """N_opt and D_opt at C (FLOPs as loaded); the loss is NaN: Approach 1 fits no loss law."""
        return self.law.compute_optimal(C)

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        return allocation_quantities(self, budget, with_loss=False)

    def warm_start(self) -> dict[str, Any]:
        return {}

    def refit_resamples(self, runs, resamples, *, n_threads=None) -> list | None:
        """Every resample at once on arrays (``analysis.fits.approach1_resamples``) when this result was fitted with
        ``fit_approach1``'s default settings; None otherwise (the bootstrap then refits one at a time)."""
        if not self.default_settings:
            return None
        from analysis.fits.approach1_resamples import refit

        return refit(self, runs, resamples, Approach1Result)

    def parameters(self) -> list[Parameter]:
        return power_law_parameters(self.law)

    def fit_summary(self) -> dict[str, Any]:
        return {"n_points": self.n_points, "n_runs": self.n_runs}

    def __repr__(self) -> str:
        return (
            f"Approach1Result(a={self.a:.4f}, b={self.b:.4f}, n_opt={self.n_opt!r}, d_opt={self.d_opt!r} | "
            f"envelope of {len(self.envelope)} points from {self.n_points} points of {self.n_runs} runs | "
            f"flops={self.flops_convention}, params={self.params_convention})"
        )


def fit_approach1(
    curves: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    run_col: str = "run_id",
    only_schedule_complete: bool = True,
    complete_col: str = "schedule_complete",
    n_bins: int | None = 40,
    drop_edge_sizes: bool = True,
) -> Approach1Result:
    """Chinchilla Approach 1 (Hoffmann et al. 2022 §3.1): the minimum loss reached at each FLOP count across all
    curves (the envelope), the (N, D) reaching it, and power laws N_opt ∝ C^a, D_opt ∝ C^b fitted to them.

    ``curves`` has one row per logged point (``analysis.load_curves``). Only points where the LR schedule had
    finished are valid (a cosine run mid-way is not the best model for that many tokens), so with
    ``only_schedule_complete`` rows whose ``complete_col`` is False are dropped. The envelope is taken over
    ``n_bins`` log-spaced FLOP bins (None: every point), keeping a bin's minimum only if it beats every bin below.
    With ``drop_edge_sizes``, envelope points reached by the smallest or largest model are kept in ``envelope``
    (column ``used`` False) but not fitted: there the true optimum may lie outside the sampled sizes. The sizes are
    those of every curve given, finished schedule or not: a size whose runs were stopped early (``train.
    early_stop_frac``: predicted well above their budget's best) was sampled, so the size next to it is no edge.
    """
    fn = "fit_approach1"
    curves = unique_index(curves)
    roles: dict[str, Any] = dict(N=n_col, D=d_col, C=c_col, loss=loss_col)
    t = take(curves, fn, "curves", drop_nan=("loss",), positive=("N", "D", "C", "loss"), **roles)
    sampled = t["N"].to_numpy()  # every size trained, before the unfinished schedules are left out
    if only_schedule_complete:
        if complete_col not in curves.columns:
            raise FitError(
                f"{fn}: column {complete_col!r} (complete_col) is not in curves, so the points where the "
                f"LR schedule had finished are unknown; pass only_schedule_complete=False if every row "
                f"is a finished schedule"
            )
        done = curves.loc[t.index, complete_col].fillna(False).astype(bool).to_numpy()
        t = t[done]
        if len(t) == 0:
            raise FitError(f"{fn}: no row of curves has {complete_col}=True and a finite {loss_col!r}")
    runs = curves.loc[t.index, run_col] if run_col in curves.columns else pd.Series(np.arange(len(t)), t.index)
    C, loss = t["C"].to_numpy(), t["loss"].to_numpy()
    idx = frontier(C, loss, n_bins)
    N = t["N"].to_numpy()
    env = pd.DataFrame(
        {"C": C[idx], "N": N[idx], "D": t["D"].to_numpy()[idx], "loss": loss[idx], "run_id": runs.to_numpy()[idx]}
    )
    # Where the smallest or largest model reaches the envelope, the optimum may lie beyond the sampled sizes: that
    # stretch of the envelope flattens against the edge and would bias the exponent toward 0.
    env["used"] = True
    if drop_edge_sizes and np.unique(sampled).size >= 3:
        env["used"] = (env["N"] > sampled.min()) & (env["N"] < sampled.max())
    used = env[env["used"]]
    if used["C"].nunique() < 2:
        raise FitError(
            f"{fn}: the envelope has {used['C'].nunique()} usable FLOP value(s) (of {len(env)} points, "
            f"{int((~env['used']).sum())} reached by the smallest or largest model); at least 2 are "
            f"needed: add runs or sizes, or set drop_edge_sizes=False"
        )
    fc, pc = conventions(curves)
    law = AllocationLaw(
        name="approach1",
        n_opt=PowerLaw.fit(used["C"], used["N"]),
        d_opt=PowerLaw.fit(used["C"], used["D"]),
        source="fitted to this sweep",
        flops_convention=fc,
        params_convention=pc,
    )
    defaults = (n_col, d_col, c_col, loss_col, run_col, complete_col) == (
        "N",
        "D",
        "C",
        "loss",
        "run_id",
        "schedule_complete",
    )
    return Approach1Result(
        law=law,
        envelope=env,
        n_runs=int(runs.nunique()),
        n_points=len(t),
        data=curves,
        resample_group=run_col,
        default_settings=defaults and only_schedule_complete and n_bins == 40 and drop_edge_sizes,
    )
