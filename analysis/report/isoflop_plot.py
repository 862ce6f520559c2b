"""The IsoFLOP figure: loss against model size at each compute budget, with each budget's minimum as its estimator
found it (Approach 2's parabolas or the curve of its minimum's estimator) and the runs stopped early drawn hollow.
``analysis.report.plots`` re-exports ``isoflop`` beside the other figures."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis.fits.minima import lowest_run
from analysis.numbers import sci
from analysis.report.canvas import BUDGET_CMAP, budget_groups, budget_norm, log_grid, n_label, sparse_log_labels, style


def isoflop(runs: pd.DataFrame, a2=None, *, n_col="N", c_col="C", loss_col="loss", budget_col="budget") -> Figure:
    """Loss against N at each compute budget, with Approach 2's parabolas (in log N) and their minima.

    A filled star is a minimum inside the sampled N range; a hollow one lies at or beyond its edge (kept by the fit
    and flagged: an extrapolation of that budget's curve); a square is a budget whose parabola opened downward, so
    its minimum is its lowest run and no curve is drawn through it (its points are joined instead). A hollow circle
    is a run stopped early, at its predicted end (``loss_predicted``): a prediction, not a measured loss.
    """
    fig = Figure(figsize=(8.6, 5.4), layout="constrained")
    ax = fig.add_subplot()
    groups = budget_groups(runs, budget_col, c_col)
    norm = budget_norm(groups.unique())
    cmap = mpl.colormaps[BUDGET_CMAP]
    per_budget = a2.per_budget if a2 is not None else None
    parabola = a2.parabola if a2 is not None else None
    if a2 is None:
        # No Approach 2 fit (it needs two usable budgets): still draw each budget's own parabola where it has one.
        per_budget, parabola = _parabolas(runs, groups, n_col, d_col="D", loss_col=loss_col)
    methods = set()
    any_lowest = False
    has_predicted = "loss_predicted" in runs.columns and bool(runs["loss_predicted"].fillna(False).astype(bool).any())
    for budget, g in runs.groupby(groups):
        color = cmap(norm(budget))
        g = g.sort_values(n_col)
        hollow = g["loss_predicted"].fillna(False).astype(bool).to_numpy() if has_predicted else np.zeros(len(g), bool)
        ax.plot(g[n_col], g[loss_col], "o", color=color, ms=6, mec="white", mew=0.6, label=f"C = {sci(budget, 3)}")
        if hollow.any():  # the predicted ends: drawn over, white inside, so a reader sees which are not measured
            ax.plot(g[n_col][hollow], g[loss_col][hollow], "o", ms=6, mfc="white", mec=color, mew=1.4, zorder=3)
        if per_budget is None:
            ax.plot(g[n_col], g[loss_col], "-", color=color, lw=1, alpha=0.5)
            continue
        row = per_budget[np.isclose(per_budget["budget"], budget, rtol=1e-6) & per_budget["N_opt"].notna()]
        if row.empty:  # too few sizes, or the parabola opens downward: just join the points
            ax.plot(g[n_col], g[loss_col], "-", color=color, lw=1, alpha=0.5)
            continue
        row = row.iloc[0]
        method = str(row.get("estimator", "parabola"))
        lowest = lowest_run(method, float(row.get("curvature", math.nan)))
        curve = _estimator_curve(g, n_col, loss_col, method) if a2 is not None and not lowest else None
        if lowest:  # the curve opened downward: the minimum is the lowest run, and no fitted curve goes through it
            ax.plot(g[n_col], g[loss_col], "-", color=color, lw=1, alpha=0.5)
            any_lowest = True
        elif curve is not None:  # the curve the minimum came from, on the sampled sizes (no extrapolation drawn)
            grid = log_grid(g[n_col].min(), g[n_col].max())
            ax.plot(grid, curve(np.log(grid)), "-", color=color, lw=1.6, alpha=0.9)
        else:
            lo = min(g[n_col].min(), row["N_opt"]) / 1.4
            hi = max(g[n_col].max(), row["N_opt"]) * 1.4
            grid = log_grid(lo, hi)
            assert parabola is not None  # a2's, or _parabolas' when there is no a2
            ax.plot(grid, parabola(row["budget"], grid), "-", color=color, lw=1.6, alpha=0.9)
        methods.add(method)
        inside = not bool(row["at_edge"])
        ax.plot(
            row["N_opt"],
            row["loss_opt"],
            ("s" if lowest else "*") if inside else "D",
            ms=(9 if lowest else 15) if inside else 9,
            mec="black" if inside else "#c00000",
            mew=1.0 if inside else 1.8,
            color=color if inside else "none",
            zorder=5,
        )
        ax.annotate(
            f"N_opt {sci(row['N_opt'])}" + ("" if inside else " (edge)") + (" (lowest run)" if lowest else ""),
            (row["N_opt"], row["loss_opt"]),
            xytext=(0, -14),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=8,
            color="#333333" if inside else "#c00000",
        )
    if per_budget is not None and len(per_budget) > 1:
        pb = per_budget.dropna(subset=["N_opt"]).sort_values("C")
        ax.plot(pb["N_opt"], pb["loss_opt"], ":", color="black", lw=1.2, zorder=4)
    handles, labels = ax.get_legend_handles_labels()
    if has_predicted:
        handles.append(Line2D([], [], ls="none", marker="o", ms=6, mfc="white", mec="#555555", mew=1.4))
        labels.append("stopped early: its\npredicted end")
    if per_budget is not None and len(per_budget):
        handles.append(Line2D([], [], ls="none", marker="*", ms=12, mfc="#999999", mec="black"))
        labels.append("IsoFLOP minimum")
        if any_lowest:
            handles.append(Line2D([], [], ls="none", marker="s", ms=8, mfc="#999999", mec="black"))
            labels.append("lowest run: the budget's\nparabola opens downward")
        if per_budget["at_edge"].astype(bool).any():
            handles.append(Line2D([], [], ls="none", marker="D", ms=8, mfc="none", mec="#c00000", mew=1.8))
            labels.append("minimum at the edge of\nsampled N (kept, flagged)")
    ax.legend(
        handles,
        labels,
        fontsize=8.5,
        title="budget (FLOPs)",
        title_fontsize=9,
        ncols=2 if len(labels) > 14 else 1,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
    )
    style(ax)
    ax.set_xlabel(n_label(runs))
    ax.set_ylabel("Final validation loss (nats/token)")
    curves = " / ".join(sorted(methods)) if methods else "parabola"
    ax.set_title(
        f"IsoFLOP curves: loss against model size at fixed compute\n(curves: the minimum's estimator, "
        f"{curves}, in log N)",
        fontsize=11,
    )
    sparse_log_labels(ax.xaxis)
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo - 0.04 * (hi - lo), hi)  # room for the N_opt labels under the lowest star
    return fig


def _estimator_curve(g, n_col, loss_col, method):
    """The curve ``method`` fitted to one budget's runs (``analysis.fits.minima.estimator_curve``), or None."""
    from analysis.fits.minima import ESTIMATORS, estimator_curve

    if method not in ESTIMATORS:
        return None
    try:
        return estimator_curve(np.log(g[n_col].to_numpy(float)), g[loss_col].to_numpy(float), method)[0]
    except ValueError:
        return None


def _parabolas(runs, groups, n_col, d_col, loss_col):
    """Per-budget minima and parabolas (analysis.fits.approach2.isoflop_minimum) for budgets with at least 3 sizes,
    and a function evaluating the parabolas, in the shape of Approach2Result.per_budget / .parabola."""
    from analysis.fits.approach2 import PER_BUDGET_COLUMNS, isoflop_minimum, parabola_at, usable_minimum

    rows = []
    for budget, g in runs.groupby(groups):
        if g[n_col].nunique() < 3 or d_col not in g:
            continue
        m = isoflop_minimum(g[n_col], g[d_col], g[loss_col])
        if not usable_minimum(m["N_opt"], m["D_opt"]):  # no minimum to mark: its points are joined instead
            m.update(N_opt=np.nan, D_opt=np.nan, loss_opt=np.nan, at_edge=False)
            rows.append(dict(budget=budget, C=budget, **m, used=False, note="vertex beyond float range"))
            continue
        rows.append(dict(budget=budget, C=budget, **m, used=True, note=""))
    per = pd.DataFrame(rows, columns=PER_BUDGET_COLUMNS)

    return (per if len(per) else None), (lambda budget, N: parabola_at(per, budget, N))
