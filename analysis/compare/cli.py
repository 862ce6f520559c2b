"""``python -m analysis compare <sweep A> <sweep B> [...]``: the comparison printed, and with ``--out`` written
(compare.md, the figure, one CSV a pair). ``python -m analysis report A B ...`` runs the same with ``--out``."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

DEFAULT_N_BOOT = 200


def _int_at_least(name: str, low: int, zero_ok: bool):
    def check(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = -1
        if (zero_ok and v == 0) or v >= low:
            return v
        allowed = f"0 (off) or an integer >= {low}" if zero_ok else f"an integer >= {low}"
        raise argparse.ArgumentTypeError(f"{name}={text!r}; must be {allowed}")

    return check


_check_sims = _int_at_least("--calibrate-sims", 20, True)
_check_resamples = _int_at_least("--calibrate-resamples", 10, False)


def build_parser() -> argparse.ArgumentParser:
    from analysis.cli import checks as cc
    from analysis.compare.calibration import DEFAULT_RESAMPLES, DEFAULT_SIMS
    from analysis.compare.frontier import FRONTIER_LAWS
    from analysis.data import load
    from scaling.core.records import FLOP_CONVENTIONS

    p = argparse.ArgumentParser(
        prog="python -m analysis compare",
        description="Compare recipes: the compute multiplier M(C) of each sweep against the first, with a joint "
        "bootstrap interval, the wall-clock multiplier, and whether the recipes share exponents and floor.",
    )
    p.add_argument(
        "sweeps",
        nargs="+",
        type=Path,
        help="sweep folders, or CSV tables of runs (N, D, loss[, budget, C]: see analysis.data.table); "
        "the first is the baseline A",
    )
    p.add_argument("--names", default=None, help="comma-separated names (default: the folders' names)")
    p.add_argument("--metric", default="loss", help="column compared: loss (default) or bpb across tokenizers")
    p.add_argument("--flops", default=load.DEFAULT_FLOPS, choices=FLOP_CONVENTIONS)
    p.add_argument("--params", default=load.DEFAULT_PARAMS, choices=load.PARAMS_CONVENTIONS)
    p.add_argument(
        "--stopped",
        default="predicted",
        choices=load.STOPPED,
        help="early-stopped runs: at their predicted end (default, as the one-sweep report) or left out",
    )
    p.add_argument(
        "--target",
        "--budget",
        dest="target",
        type=cc.check_budget,
        action="append",
        default=None,
        metavar="FLOPS",
        help="target budget (--budget is the same, as in report); repeat for several (default: 10x the largest budget)",
    )
    p.add_argument(
        "--n-boot",
        type=cc.check_n_boot,
        default=DEFAULT_N_BOOT,
        help="bootstrap resamples a sweep, paired across sweeps (default: %(default)s)",
    )
    p.add_argument("--seed", type=cc.check_seed, default=0)
    p.add_argument("--level", type=cc.check_level, default=0.9)
    p.add_argument("--grid", default="full", choices=("full", "small"), help="Approach 3's starts")
    p.add_argument(
        "--law",
        default="auto",
        choices=("auto",) + FRONTIER_LAWS,
        help="auto: the law every sweep's rolling backtest prefers, else Approach 3",
    )
    p.add_argument(
        "--carry",
        default="separate",
        choices=("separate", "shared", "auto"),
        help="which M is carried: the separate fits' M(C) (default), the shared law's constant M, or auto: the "
        "shared law's when the shared-exponent test does not reject sharing; both are shown",
    )
    p.add_argument(
        "--calibrate-sims",
        type=_check_sims,
        default=DEFAULT_SIMS,
        metavar="N",
        help="simulated pairs calibrating Approach 3's M interval (and Approach 2's when it is the primary law) on "
        "these sweeps' designs; the method they pick is carried in place of --carry (0: off; default: %(default)s; "
        "cached in --out)",
    )
    p.add_argument(
        "--calibrate-resamples",
        type=_check_resamples,
        default=DEFAULT_RESAMPLES,
        metavar="R",
        help="bootstrap resamples of each simulated pair (default: %(default)s)",
    )
    p.add_argument("--jobs", type=cc.check_jobs, default=None)
    p.add_argument("--out", type=Path, default=None, help="write compare.md, the figure and CSVs here")
    return p


def default_out(sweeps) -> Path:
    sweeps = [Path(s) for s in sweeps]
    return sweeps[0].parent / ("compare-" + "-vs-".join(s.name for s in sweeps))


def main(argv=None, *, report: bool = False) -> int:
    args = build_parser().parse_args(argv)
    if report and args.out is None:
        args.out = default_out(args.sweeps)
    from analysis.compare import CompareError, compare

    try:
        if args.out is not None:
            from analysis.report.markdown import writable_dir

            writable_dir(args.out)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cmp = compare(
                *args.sweeps,
                names=args.names.split(",") if args.names else None,
                metric=args.metric,
                flops=args.flops,
                params=args.params,
                targets=args.target,
                n_boot=args.n_boot,
                seed=args.seed,
                level=args.level,
                grid=args.grid,
                law=args.law,
                n_jobs=args.jobs,
                carry=args.carry,
                calibrate_sims=args.calibrate_sims,
                calibrate_resamples=args.calibrate_resamples,
                cache_dir=args.out,
                stopped=args.stopped,
            )
        from analysis.compare.report import markdown, write_comparison

        print(markdown(cmp, figure_name=None))
        if args.out is not None:
            path = write_comparison(cmp, args.out)
            print(f"wrote {path} (and compare.png/.svg, multiplier CSVs) in {path.parent}")
    except (CompareError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
