"""The figure of an LR sweep (``python -m analysis.lr``, ``analysis.fits.lr``): loss against the peak learning rate."""

from __future__ import annotations

import math

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def lr_sweep(runs: pd.DataFrame, opt: pd.DataFrame, law=None, div: pd.DataFrame | None = None) -> Figure:
    """Loss against LR, one panel per token count, one colour per size; parabolas, optima, diverged LRs, the law."""
    ds = sorted(runs["D"].unique())
    fig = Figure(figsize=(5.2 * len(ds), 4.2), layout="constrained")
    axes = fig.subplots(1, len(ds), squeeze=False)[0]
    ns = sorted(runs["N"].unique())
    cmap = mpl.colormaps["viridis"]
    for ax, d in zip(axes, ds):
        top = -math.inf
        for k, n in enumerate(ns):
            color = cmap(k / max(1, len(ns) - 1))
            g = runs[(runs["N"] == n) & (runs["D"] == d)].groupby("lr", as_index=False)["loss"].mean()
            if g.empty:
                continue
            top = max(top, g["loss"].max())
            ax.plot(g["lr"], g["loss"], "o", color=color, label=f"N = {n:,.0f}")
            o = opt[(opt["N"] == n) & (opt["D"] == d)]
            if len(o) and bool(o["interior"].iloc[0]):
                r = o.iloc[0]
                xs = np.linspace(math.log(g["lr"].min()), math.log(g["lr"].max()), 100)
                a = r["curvature"] / 2
                ys = r["loss_opt"] + a * (xs - math.log(r["lr_opt"])) ** 2
                keep = ys <= g["loss"].max() + 0.05
                ax.plot(np.exp(xs[keep]), ys[keep], "-", color=color, lw=1)
                ax.plot([r["lr_opt"]], [r["loss_opt"]], "*", color=color, ms=12, mec="k")
                if law is not None:
                    ax.axvline(law(N=n, D=d, C=r["C"]), color=color, ls=":", lw=1)
            if div is not None and len(div):
                dv = div[(div["N"] == n) & (div["D"] == d)]
                for lr in dv["lr"]:
                    ax.annotate("×", (lr, top), color=color, ha="center", fontsize=14)
        ax.set_xscale("log")
        ax.set_xlabel("peak learning rate")
        ax.set_ylabel("final validation loss (nats/token)")
        ax.set_title(f"D = {d:,.0f} tokens")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if law is not None:
        fig.suptitle(f"★ parabola minimum in ln LR;  ⋯ fitted law {law}", fontsize=9)
    return fig
