"""The figures of a scaling-law analysis, drawn with matplotlib's object API (no pyplot, no global state).

Every function returns a ``matplotlib.figure.Figure``; ``canvas.save(fig, out_dir, name)`` writes it as PNG and
SVG. Because no pyplot figure manager is involved, the same functions work in a script (Agg, the default for a bare
Figure), in a notebook (a returned Figure displays inline) and in a long report run (nothing accumulates in memory).
The palettes, axis helpers and file output all figures share are in ``canvas.py``; the LR sweep's figure in
``lr_plot.py``; the IsoFLOP figure in ``isoflop_plot.py`` (re-exported here).

    isoflop(runs, a2)                      loss against N per budget, parabolas and their minima (Approach 2)
    optimal_allocation(fits, bands, ...)   N_opt and D_opt against C: each approach's power law, bootstrap bands,
                                           published laws
    loss_vs_compute(curves, a1, a3)        every training curve, the envelope (Approach 1), the Approach 3 frontier
    loss_contours(runs, a3)                L(N, D) contours, the runs, IsoFLOP lines and the efficient frontier
    residuals(runs, fits)                  observed / predicted - 1 for every fit that predicts a loss
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import colors, ticker
from matplotlib.figure import Figure

from analysis.fits import LABELS as APPROACH_LABELS
from analysis.laws.published import published_label
from analysis.numbers import sci
from analysis.report.canvas import (
    APPROACH_COLORS,
    BUDGET_CMAP,
    EXTRA_COLORS,
    PUBLISHED_STYLES,
    SIZE_CMAP,
    budget_groups,
    budget_norm,
    c_label,
    log_colorbar,
    log_grid,
    n_label,
    note,
    plain_log_ticks,
    sparse_log_labels,
    style,
)
from analysis.report.isoflop_plot import isoflop as isoflop  # re-exported: the figures' one module

# ---------------------------------------------------------------------------------------------------------------
# figures


def _band_frame(bands, approach: str, quantity: str):
    if bands is None or approach not in bands or bands[approach] is None:
        return None
    b = bands[approach]
    b = b[b["quantity"] == quantity].sort_values("C")
    return b if len(b) else None


def _along(law, grid: np.ndarray, errors) -> dict[str, np.ndarray] | None:
    """N_opt and D_opt of ``law`` at every compute value of ``grid`` (NaN for a quantity it lacks), or None when its
    ``compute_optimal`` raises one of ``errors``."""
    try:
        a = law.compute_optimal(grid)
    except errors:
        return None
    return {q: np.broadcast_to(np.asarray(getattr(a, q, np.nan), dtype=float), grid.shape) for q in ("N_opt", "D_opt")}


def optimal_allocation(
    fits: dict,
    *,
    bands: dict | None = None,
    published: dict | None = None,
    per_budget: pd.DataFrame | None = None,
    c_range=None,
    targets=(),
    runs=None,
) -> Figure:
    """N_opt and D_opt against compute: each fitted approach's power law with its bootstrap band, Approach 2's
    per-budget minima as points, and the published laws for comparison.

    ``fits`` maps an approach key (see APPROACH_LABELS) to a result with ``compute_optimal(C)``; ``bands`` maps the
    same keys to DataFrames with columns quantity ("N_opt"/"D_opt"), C, lo, hi; ``published`` maps a name to an
    object with ``compute_optimal(C)``; ``targets`` are budgets to mark with a vertical line.
    """
    fig = Figure(figsize=(13, 5.4), layout="constrained")
    axes = fig.subplots(1, 2)
    c_lo, c_hi = c_range if c_range is not None else (1e18, 1e24)
    grid = log_grid(c_lo, c_hi, 120)
    c_axis_label = c_label(runs) if runs is not None else "Training compute C (FLOPs)"
    # each law's allocation along the grid in one call (a law converted to the sweep's FLOP convention, or the
    # data-constrained one, solves the whole grid at once); None: it has no optimum there, its line is left out
    pub = {name: _along(law, grid, Exception) for name, law in (published or {}).items()}
    # a degenerate fit has no optimum: its line is left out (Notes)
    fitted = {key: _along(fit, grid, (ValueError, ArithmeticError)) for key, fit in fits.items() if fit is not None}
    for ax, q, ylabel in (
        (axes[0], "N_opt", "Compute-optimal N_opt (parameters)"),
        (axes[1], "D_opt", "Compute-optimal D_opt (tokens)"),
    ):
        lines_y = []
        for i, (name, along) in enumerate(pub.items()):
            col, dash = PUBLISHED_STYLES[i % len(PUBLISHED_STYLES)]
            if along is None:
                continue
            y = along[q]
            if np.isfinite(y).any():
                ax.plot(grid, y, color=col, ls=dash, lw=1.2, alpha=0.8, label=f"{published_label(name)}, published")
        for key, fit in fits.items():
            line = fitted.get(key)
            if line is None:
                continue
            col = APPROACH_COLORS.get(key, "black")
            y = line[q]
            if not np.isfinite(y).any():
                continue
            band = _band_frame(bands, key, q)
            if band is not None:
                ax.fill_between(band["C"], band["lo"], band["hi"], color=col, alpha=0.15, lw=0)
            ea, eb = _exponent(fit, "N_opt"), _exponent(fit, "D_opt")
            lab = APPROACH_LABELS.get(key, key) + (
                f": a = {ea:.3f}, b = {eb:.3f}" if ea is not None and eb is not None else ""
            )
            ax.plot(grid, y, color=col, lw=2.2, label=lab)
            lines_y.append(y[np.isfinite(y) & (y > 0)])
        if per_budget is not None and len(per_budget):
            lines_y.append(per_budget[q].dropna().to_numpy(float))
            inside = ~per_budget["at_edge"].astype(bool) & per_budget[q].notna()
            ax.plot(
                per_budget.loc[inside, "C"],
                per_budget.loc[inside, q],
                "o",
                color=APPROACH_COLORS["approach2"],
                mec="black",
                ms=7,
                zorder=6,
                label="IsoFLOP minima (this sweep)",
            )
            edge = per_budget["at_edge"].astype(bool)
            if edge.any():
                ax.plot(
                    per_budget.loc[edge, "C"],
                    per_budget.loc[edge, q],
                    "o",
                    mfc="none",
                    mec="black",
                    ms=7,
                    zorder=6,
                    label="IsoFLOP minimum at the edge of sampled N (kept)",
                )
        for t in targets:
            ax.axvline(t, color="black", lw=0.8, ls="--", alpha=0.6)
            ax.text(
                t,
                0.02,
                f" {sci(t)}",
                transform=ax.get_xaxis_transform(),
                fontsize=8,
                rotation=90,
                va="bottom",
                ha="right",
            )
        style(ax, ylog=True)
        ax.set_xlim(c_lo, c_hi)
        ys = np.concatenate(lines_y) if lines_y else np.array([])
        ys = ys[np.isfinite(ys) & (ys > 0)]
        if ys.size:  # the laws and minima set the scale; a band much wider than that is clipped, and says so
            lo, hi = ax.get_ylim()
            want = (ys.min() / 30, ys.max() * 30)
            if lo < want[0] or hi > want[1]:
                ax.set_ylim(max(lo, want[0]), min(hi, want[1]))
                ax.text(
                    0.99,
                    0.99,
                    "intervals clipped: they extend beyond the axis",
                    transform=ax.transAxes,
                    ha="right",
                    va="top",
                    fontsize=8,
                    color="#555555",
                )
        ax.set_xlabel(c_axis_label)
        ax.set_ylabel(ylabel)
        if not ax.lines:
            note(ax, "no approach could be fitted")
    axes[0].set_title("Compute-optimal model size: N_opt ∝ C^a")
    axes[1].set_title("Compute-optimal training tokens: D_opt ∝ C^b")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8.5, frameon=False)
    return fig


def _exponent(fit, q: str):
    """The fitted exponent of N_opt (q="N_opt") or D_opt in C (``FitResult.a``, ``.b``), None where it has none."""
    val = float(fit.a if q == "N_opt" else fit.b)
    return val if math.isfinite(val) else None


def loss_vs_compute(
    curves: pd.DataFrame,
    a1=None,
    a3=None,
    *,
    n_col="N",
    c_col="C",
    loss_col="loss",
    run_col="run_id",
    stopped: Iterable[str] = (),
) -> Figure:
    """Every training curve (validation loss against cumulative FLOPs, coloured by N), each run's final point (hollow
    for the runs ``stopped`` early: their curve ends where they stopped), the lower envelope Approach 1 fits, and
    Approach 3's compute-optimal loss L(N_opt(C), D_opt(C))."""
    fig = Figure(figsize=(8.5, 5.4), layout="constrained")
    ax = fig.add_subplot()
    measured = curves[curves[loss_col].notna()]
    sizes = measured[n_col].unique()
    norm = colors.LogNorm(sizes.min() / 1.01, sizes.max() * 1.01)
    cmap = mpl.colormaps[SIZE_CMAP]
    cmap = colors.ListedColormap(cmap(np.linspace(0, 0.88, 256)))  # drop plasma's faint yellow end
    finals = []
    for _, g in measured.groupby(run_col, sort=False):
        g = g.sort_values(c_col)
        color = cmap(norm(g[n_col].iloc[0]))
        ax.plot(g[c_col], g[loss_col], "-", color=color, lw=1.0, alpha=0.75)
        finals.append(g.iloc[-1])
    finals = pd.DataFrame(finals)
    # a run stopped early ends in a hollow point where it stopped: not a finished run
    done = ~finals[run_col].isin(set(stopped)).to_numpy() if len(finals) else np.ones(0, bool)
    ax.scatter(
        finals[c_col][done],
        finals[loss_col][done],
        c=finals[n_col][done],
        cmap=cmap,
        norm=norm,
        s=22,
        edgecolors="black",
        linewidths=0.5,
        zorder=4,
        label="end of run",
    )
    if (~done).any():
        ax.scatter(
            finals[c_col][~done],
            finals[loss_col][~done],
            s=22,
            facecolors="white",
            edgecolors=cmap(norm(finals[n_col][~done].to_numpy(float))),
            linewidths=1.2,
            zorder=4,
            label="stopped early",
        )
    env = a1.envelope if a1 is not None else None
    if env is not None and len(env):
        e = env.sort_values(c_col if c_col in env else "C")
        ax.plot(
            e[c_col if c_col in e else "C"],
            e[loss_col if loss_col in e else "loss"],
            "-",
            color="black",
            lw=2.4,
            zorder=5,
            label="frontier: min loss at each C (Approach 1)",
        )
    if a3 is not None:
        lo, hi = measured[c_col].min(), measured[c_col].max()
        grid = log_grid(lo, hi * 1.5)
        try:
            y = np.array([a3.compute_optimal(c).loss for c in grid])
        except (ValueError, ArithmeticError):  # a degenerate Approach 3 has no optimum: no line (see Notes)
            y = None
        if y is not None:
            ax.plot(
                grid,
                y,
                "--",
                color=APPROACH_COLORS["approach3"],
                lw=2,
                zorder=5,
                label="compute-optimal loss (Approach 3)",
            )
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    log_colorbar(fig.colorbar(sm, ax=ax, label=n_label(curves), pad=0.01))
    style(ax, ylog=True)
    top = np.nanpercentile(measured[loss_col], 99)
    y_lo, y_hi = finals[loss_col].min() * 0.93, max(top, finals[loss_col].max()) * 1.03
    ax.set_ylim(y_lo, y_hi)
    plain_log_ticks(ax.yaxis, y_lo, y_hi)
    ax.set_xlim(measured[c_col].min() / 1.3, measured[c_col].max() * 1.6)
    ax.set_xlabel(c_label(curves))
    ax.set_ylabel("Validation loss (nats/token)")
    ax.set_title("Training curves and the compute frontier")
    ax.legend(fontsize=9, loc="upper right")
    return fig


def loss_contours(
    runs: pd.DataFrame, a3, *, n_col="N", d_col="D", loss_col="loss", budget_col="budget", c_col="C", targets=()
) -> Figure:
    """Approach 3's L(N, D) as filled contours over the (N, D) plane, the runs coloured by their observed loss on
    the same scale, the sweep's IsoFLOP lines (C = 6ND) and the efficient frontier (N_opt(C), D_opt(C))."""
    fig = Figure(figsize=(8.2, 6.2), layout="constrained")
    ax = fig.add_subplot()
    n_lo, n_hi = runs[n_col].min() / 4, runs[n_col].max() * 4
    d_lo, d_hi = runs[d_col].min() / 4, runs[d_col].max() * 4
    N, D = np.meshgrid(log_grid(n_lo, n_hi, 160), log_grid(d_lo, d_hi, 160))
    Z = np.asarray(a3.predict(N.ravel(), D.ravel()), dtype=float).reshape(N.shape)
    lo = min(np.nanmin(Z), runs[loss_col].min())
    hi = max(runs[loss_col].max(), np.nanpercentile(Z, 60))
    levels = ticker.MaxNLocator(14, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    cf = ax.contourf(N, D, np.clip(Z, levels[0], levels[-1]), levels=levels, cmap="cividis_r", alpha=0.85)
    cs = ax.contour(N, D, Z, levels=levels[1:-1:2], colors="black", linewidths=0.5, alpha=0.45)
    ax.clabel(cs, fmt="%g", fontsize=7.5)
    norm = colors.BoundaryNorm(levels, 256)
    ax.scatter(
        runs[n_col],
        runs[d_col],
        c=runs[loss_col],
        cmap="cividis_r",
        norm=norm,
        s=45,
        edgecolors="black",
        linewidths=0.9,
        zorder=5,
        label="runs (colour: observed loss)",
    )
    n_line = log_grid(n_lo, n_hi, 50)
    groups = budget_groups(runs, budget_col, c_col)
    six_nd = 6 * runs[n_col] * runs[d_col]
    for i, (_, g) in enumerate(six_nd.groupby(groups)):
        # each budget's IsoFLOP line, 6ND = the geometric mean of its runs' 6ND (exact when budgets used 6N FLOPs)
        c6 = float(np.exp(np.log(g).mean()))
        ax.plot(
            n_line,
            c6 / (6 * n_line),
            color="white",
            ls="--",
            lw=1.0,
            alpha=0.95,
            label="IsoFLOP lines (6ND = const)" if i == 0 else None,
        )
    c_grid = log_grid(6 * n_lo * d_lo, 6 * n_hi * d_hi, 200)
    try:
        alloc = [a3.compute_optimal(c) for c in c_grid]
    except (ValueError, ArithmeticError):  # a degenerate Approach 3 has no optimum: contours without the frontier
        alloc = None
    if alloc is not None:
        ax.plot(
            [a.N_opt for a in alloc],
            [a.D_opt for a in alloc],
            color="#d62728",
            lw=2.4,
            zorder=6,
            label=f"efficient frontier: N_opt ∝ C^{a3.a:.3f}, D_opt ∝ C^{a3.b:.3f}",
        )
    ax.set_xlim(n_lo, n_hi)
    ax.set_ylim(d_lo, d_hi)
    style(ax, ylog=True)
    ax.grid(False, which="both")
    fig.colorbar(cf, ax=ax, label="Approach 3 predicted loss L(N, D) (nats/token)", pad=0.01)
    ax.set_xlabel(n_label(runs))
    ax.set_ylabel("D (training tokens)")
    ax.set_title(f"Approach 3: L(N, D) = {a3.E:.3g} + {a3.A:.3g}/N^{a3.alpha:.3f} + {a3.B:.3g}/D^{a3.beta:.3f}")
    leg = ax.legend(fontsize=8.5, loc="lower right", framealpha=0.92)
    leg.set_zorder(10)
    return fig


def residuals(
    runs: pd.DataFrame, fits: dict, *, n_col="N", d_col="D", c_col="C", loss_col="loss", budget_col="budget"
) -> Figure:
    """Observed / predicted - 1 (in %) of each fit that predicts a run's loss, against N, coloured by budget (a
    U or a slope within one budget's points is a misfit in N).

    ``fits`` maps a key to a result: "approach3" and "kaplan" use ``predict(N, D)``; "approach2" uses each budget's
    parabola.
    """
    keys = [k for k in ("approach2", "approach3", "kaplan") if fits.get(k) is not None]
    fig = Figure(figsize=(4.6 * max(1, len(keys)) + 0.8, 4.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(keys)), sharey=True))
    if not keys:
        note(axes[0], "no fit that predicts loss")
        return fig
    groups = budget_groups(runs, budget_col, c_col)
    norm = budget_norm(groups.unique())
    cmap = mpl.colormaps[BUDGET_CMAP]
    for ax, key in zip(axes, keys):
        fit = fits[key]
        if key == "approach2":
            pred = np.full(len(runs), np.nan)
            pb = fit.per_budget
            for i, (b, n) in enumerate(zip(groups, runs[n_col])):
                match = pb[np.isclose(pb["budget"], b, rtol=1e-6) & pb["p2"].notna()]
                if len(match):
                    pred[i] = float(np.asarray(fit.parabola(match["budget"].iloc[0], np.array([n])))[0])
        else:
            pred = np.asarray(fit.predict(runs[n_col].to_numpy(float), runs[d_col].to_numpy(float)), dtype=float)
        res = 100 * (runs[loss_col].to_numpy(float) / pred - 1)
        ok = np.isfinite(res)
        ax.axhline(0, color="black", lw=0.8)
        ax.scatter(
            runs[n_col][ok],
            res[ok],
            c=groups[ok],
            cmap=cmap,
            norm=norm,
            s=30,
            edgecolors="black",
            linewidths=0.5,
            zorder=4,
        )
        rms = float(np.sqrt(np.mean(res[ok] ** 2))) if ok.any() else float("nan")
        name = APPROACH_LABELS[key] if key != "approach2" else "Approach 2 (per-budget parabolas)"
        ax.set_title(f"{name}\nRMS {rms:.2f}% over {ok.sum()} runs", fontsize=10)
        style(ax)
        sparse_log_labels(ax.xaxis)
        ax.set_xlabel(n_label(runs))
    lim = max(1.0, max(abs(v) for v in axes[0].get_ylim()))
    axes[0].set_ylim(-lim, lim)
    axes[0].set_ylabel("observed / predicted loss - 1 (%)")
    sm = mpl.cm.ScalarMappable(norm=norm, cmap=cmap)
    log_colorbar(fig.colorbar(sm, ax=list(axes), label="budget (FLOPs)", pad=0.01))
    fig.suptitle("Residuals of the fits", fontsize=11)
    return fig


def backtest(table: pd.DataFrame, labels: dict | None = None, best: str | None = None) -> Figure:
    """Rolling backtest (analysis.uncertainty.backtests.rolling_backtest): the error of each law's predicted N_opt
    (left, |ln(N_pred / N_obs)|) and loss (right, |loss_pred / loss_obs - 1|) against the extrapolation distance
    C_target / C_cutoff, one point a (cutoff, target) pair and a line through each law's median per distance bin."""
    fig = Figure(figsize=(11.5, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    if table is None or table.empty:
        note(axes[0], "no backtest")
        return fig
    labels = labels or {}
    extra = iter(EXTRA_COLORS)
    for law, g in table.groupby("law", sort=False):
        col = APPROACH_COLORS.get(law) or next(extra, "black")
        lab = labels.get(law, APPROACH_LABELS.get(law, law)) + (" (best)" if law == best else "")
        for ax, y in zip(axes, (g["log_err_N"].abs(), g["rel_err_loss"].abs())):
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():
                continue
            x = g["distance"][ok]
            ax.scatter(x, y[ok], s=18, color=col, alpha=0.45, lw=0)
            bins = np.round(np.log10(x) * 2)  # half-decade bins; each median drawn at its points' geometric mean
            med = y[ok].groupby(bins).median()
            at = np.exp(np.log(x).groupby(bins).mean())
            ax.plot(at.to_numpy(), med.to_numpy(), "-o", color=col, lw=2.4 if law == best else 1.6, ms=4, label=lab)
    lo, hi = table["distance"].min() / 1.3, table["distance"].max() * 1.3
    for ax, what in zip(axes, ("|ln(N_opt predicted / observed)|", "|loss predicted / observed - 1|")):
        style(ax, ylog=True)
        ax.set_xlim(lo, hi)
        plain_log_ticks(ax.xaxis, lo, hi)
        ax.set_xlabel("extrapolation distance C_target / C_cutoff")
        ax.set_ylabel(what)
    axes[0].set_title("Error in N_opt against extrapolation distance")
    axes[1].set_title("Error in the loss at the optimum")
    axes[0].legend(fontsize=8.5, frameon=False)
    return fig
