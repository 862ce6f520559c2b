"""The truth figure (``analysis.uncertainty.truth``): a fitted E against a synthetic source's known entropy rate."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def draw_truth(ax, check) -> None:
    """On ``ax`` (losses on the y axis), for a ``analysis.uncertainty.truth.TruthCheck``: the fitted E as a dashed line
    in its interval band, and the true H (and the loss floor, where it
    differs) as solid lines, each labelled for a legend."""
    ax.axhspan(
        check.lo,
        check.hi,
        color="tab:blue",
        alpha=0.18,
        lw=0,
        label=f"fitted E, {check.level:.0%} interval [{check.lo:.3f}, {check.hi:.3f}]",
    )
    ax.axhline(check.E, color="tab:blue", ls="--", lw=1.2, label=f"fitted E = {check.E:.3f} ({check.label})")
    ax.axhline(check.H, color="black", lw=1.4, label=f"true entropy rate H = {check.H:.3f}")
    if not math.isclose(check.floor, check.H, abs_tol=5e-5):
        ax.axhline(check.floor, color="black", ls=":", lw=1.2, label=f"loss floor on these windows = {check.floor:.3f}")


def truth_figure(
    check, runs: pd.DataFrame | None = None, *, c_col: str = "C", loss_col: str = "loss", budget_col: str = "budget"
) -> Figure:
    """A figure: every run's final loss against its training compute (coloured by budget), the fitted E band and
    the true H, so the distance still to go and the fit's extrapolation are seen at a glance."""
    fig = Figure(figsize=(7.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    top = check.hi
    if runs is not None and len(runs):
        groups = runs[budget_col] if budget_col in runs.columns else pd.Series(np.nan, index=runs.index)
        for b, g in runs.groupby(groups.fillna(-1.0), sort=True):
            name = "tokens given" if b == -1.0 else f"budget {b:.2g}"
            ax.scatter(g[c_col], g[loss_col], s=22, zorder=3, label=name)
        ax.set_xscale("log")
        ax.set_xlabel(f"training compute C ({c_col}, FLOPs)")
        top = max(top, float(runs[loss_col].max()))
    else:
        ax.set_xticks([])
    draw_truth(ax, check)
    bottom = min(check.lo, check.floor, check.H)
    pad = 0.05 * (top - bottom) or 0.05
    ax.set_ylim(bottom - pad, top + pad)
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(
        f"Irreducible loss: fitted E vs the source's exact entropy "
        f"({'interval contains it' if check.contains else 'interval misses it'})",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=7.5, loc="upper right")
    return fig
