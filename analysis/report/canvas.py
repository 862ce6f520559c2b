"""What every figure of the fitting side shares: the palettes (one colour per approach, the same everywhere), axis
labels and tick helpers, and writing a figure as PNG and SVG (``save``) or as their bytes (``render``, to draw in
another process). Figures are matplotlib ``Figure`` objects (object API, no pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colors, ticker
from matplotlib.figure import Figure

from analysis.numbers import sci

# One colour per approach, the same in every figure; published laws in muted tones with their own dash patterns.
APPROACH_COLORS = {
    "approach1": "#1f77b4",
    "approach2": "#d62728",
    "approach3": "#2ca02c",
    "kaplan": "#9467bd",
    "approach3_fixed_E": "#17a589",
    "datacon": "#ff7f0e",
}
EXTRA_COLORS = ("#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f")  # laws registered later (analysis.uncertainty.candidates)
PUBLISHED_STYLES = [
    ("#7f7f7f", (0, (5, 2))),
    ("#8c564b", (0, (1, 1.5))),
    ("#e377c2", (0, (6, 2, 1, 2))),
    ("#bcbd22", (0, (3, 1, 1, 1, 1, 1))),
    ("#17becf", (0, (8, 3))),
    ("#444444", (0, (2, 2))),
]
BUDGET_CMAP = "viridis"
SIZE_CMAP = "plasma"

FORMATS = ("png", "svg")


def save(fig: Figure, out_dir, name: str, formats=FORMATS, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as ``out_dir/name.<fmt>`` for each format; returns the paths."""
    return save_rendered(render(fig, formats, dpi), out_dir, name)


def render(fig: Figure, formats=FORMATS, dpi: int = 150) -> dict[str, bytes]:
    """``fig`` as the bytes of each format's file (what ``save`` writes), e.g. to draw in another process."""
    import io

    out = {}
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None)
        out[fmt] = buf.getvalue()
    return out


def save_rendered(files: dict[str, bytes], out_dir, name: str) -> list[Path]:
    """Write ``render``'s bytes as ``out_dir/name.<fmt>``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt, data in files.items():
        p = out_dir / f"{name}.{fmt}"
        p.write_bytes(data)
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------------------------
# labels and small helpers


def plain_log_ticks(axis, lo: float, hi: float) -> None:
    """Readable tick labels (3, 3.5, 4 rather than 3x10^0) on a log axis that spans less than a decade or two."""
    if hi / lo > 30:
        return
    ticks = [t for t in ticker.MaxNLocator(6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi) if lo <= t <= hi]
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())


def sparse_log_labels(axis) -> None:
    """On a log axis spanning under two decades, label 1, 2 and 5 times each power of ten (as 2e4, not 2x10^4):
    otherwise it would carry one label or none."""
    lo, hi = sorted(axis.get_view_interval())
    if lo <= 0 or hi / lo >= 100:
        return
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: sci(v)))
    axis.set_minor_formatter(ticker.NullFormatter())


def log_colorbar(cb) -> None:
    """Colorbar of a LogNorm: label powers of ten and, over a short range, 2x and 5x them, as 2e4."""
    lo, hi = cb.norm.vmin, cb.norm.vmax
    subs = (1.0, 2.0, 5.0) if hi / lo < 1000 else (1.0,)
    cb.ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    cb.ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: sci(v)))
    cb.ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def n_label(df) -> str:
    conv = getattr(df, "attrs", {}).get("params_convention", "unknown")
    kind = {"non_embedding": "non-embedding parameters", "total": "parameters incl. embeddings"}.get(conv, "parameters")
    return f"N ({kind})"


def c_label(df) -> str:
    conv = getattr(df, "attrs", {}).get("flops_convention", "unknown")
    return f"Training compute C (FLOPs, '{conv}' convention)"


def budget_groups(runs: pd.DataFrame, budget_col: str, c_col: str) -> pd.Series:
    """The IsoFLOP group of each run: its budget, or C rounded to 2 significant figures when no budget is recorded
    (the same grouping Approach 2 uses)."""
    b = runs[budget_col] if budget_col in runs else pd.Series(np.nan, index=runs.index)
    rounded = runs[c_col].map(lambda c: float(f"{c:.1e}"))
    return b.where(b.notna(), rounded)


def budget_norm(budgets) -> colors.Normalize:
    b = np.asarray(list(budgets), dtype=float)
    lo, hi = np.nanmin(b), np.nanmax(b)
    if lo == hi:
        lo, hi = lo / 2, hi * 2
    return colors.LogNorm(lo, hi * 1.6)  # stop short of viridis' pale yellow end, which vanishes on white


def log_grid(lo: float, hi: float, n: int = 200) -> np.ndarray:
    return np.geomspace(lo, hi, n)


def style(ax, xlog=True, ylog=False) -> None:
    if xlog:
        ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    if xlog:
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())  # 2x10^13, 3x10^13 ... labels collide
    ax.grid(True, which="major", alpha=0.35)
    ax.grid(True, which="minor", alpha=0.12)


def note(ax, text: str) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=11,
        color="#555555",
        wrap=True,
        bbox=dict(boxstyle="round", fc="#f5f5f5", ec="#cccccc"),
    )
