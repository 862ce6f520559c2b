"""Learning rate per size from an LR sweep, written as a rule file the trainer reads.

``python -m analysis.lr <sweep>``: the sweep's optima and law (computed by ``analysis.fits.lr``) written as
lr_rule.json and optima.csv, and the figure lr_vs_loss.png/.svg (drawn by ``analysis.report.lr_plot.lr_sweep``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from analysis.fits.lr import LRSweep, analyse_lr_sweep
from scaling.core import records


def write_lr_sweep(
    sweep_dir,
    out_dir=None,
    variables: tuple[str, ...] | None = None,
    flops: str = "chinchilla",
    half_width: int = 1,
    method: str = "joint",
) -> tuple[LRSweep, Path]:
    """``analyse_lr_sweep``, then lr_rule.json (when a law was fitted), optima.csv and lr_vs_loss.png/.svg in
    ``out_dir`` (default <sweep>/lr); returns (the analysis, out_dir)."""
    from analysis.report.lr_plot import lr_sweep

    sweep_dir = Path(sweep_dir)
    out = Path(out_dir) if out_dir else sweep_dir / "lr"
    res = analyse_lr_sweep(sweep_dir, variables, flops, half_width, method)
    if res.law is None:
        print(f"[lr] no law: {res.note}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    res.optima.to_csv(out / "optima.csv", index=False)
    if res.law is not None:
        records.write_json_atomic(out / "lr_rule.json", res.law.rule(f"fitted by analysis.fits.lr to {sweep_dir}"))
    fig = lr_sweep(res.runs, res.optima, res.law, res.diverged)
    for ext in ("png", "svg"):
        fig.savefig(out / f"lr_vs_loss.{ext}", dpi=150)
    return res, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.lr", description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir", help="an LR sweep's results folder (e.g. results/lr_cpu)")
    ap.add_argument("--out", help="where to write lr_rule.json, optima.csv, lr_vs_loss.png (default <sweep>/lr)")
    ap.add_argument(
        "--vars",
        default=None,
        help="variables of the law: N, N,D or C (default: N, and D where the "
        "sweep has optima at two or more token counts)",
    )
    ap.add_argument("--flops", default="chinchilla", choices=records.FLOP_CONVENTIONS, help="FLOP convention of C")
    ap.add_argument(
        "--half-width",
        type=int,
        default=1,
        help="neighbours of the best LR on each side that the parabola fits (default 1: three points)",
    )
    ap.add_argument(
        "--method",
        default="joint",
        choices=("joint", "argmin"),
        help="joint (default): one fit over every run with a shared curvature; argmin: regression of "
        "each group's parabola optimum",
    )
    a = ap.parse_args(argv)
    variables = tuple(a.vars.split(",")) if a.vars else None
    try:
        res, out = write_lr_sweep(a.sweep_dir, a.out, variables, a.flops, a.half_width, a.method)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    opt, law = res.optima, res.law
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(opt.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if law is not None:
        print(law)
        print(f"rule: {out / 'lr_rule.json'}  (use it: train.lr_rule={out / 'lr_rule.json'})")
    print(f"plot: {out / 'lr_vs_loss.png'}")
    return 0 if law is not None else 1


if __name__ == "__main__":
    sys.exit(main())
