"""``python -m analysis.studies estimators|calibration|percalibration|lawcalibration``: the studies' command line."""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from analysis.data.load import STOPPED
from analysis.studies import accuracy, calibrated, parametric


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m analysis.studies", description=accuracy.__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="study", required=True)
    e = sub.add_parser("estimators", help="bias and spread of a for each IsoFLOP minimum estimator")
    e.add_argument("--replicates", type=int, default=200, help="synthetic sweeps a setting")
    e.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("calibration", help="coverage of 90%% intervals of N_opt at 10x and 100x the largest budget")
    c.add_argument("--sweeps", type=int, default=200, help="synthetic sweeps")
    c.add_argument("--resamples", type=int, default=100, help="bootstrap resamples a sweep and method")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--csv", default=None, help="also write every sweep's intervals to this CSV file")
    c.add_argument(
        "--setting",
        choices=sorted(accuracy.CALIBRATION_SETTINGS),
        default="default",
        help="default: Chinchilla's law, mild drift; harsh: the asymmetric law sampled far off centre",
    )
    c.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(accuracy.INTERVAL_METHODS),
        default=list(accuracy.CALIBRATION_METHODS),
        help="interval methods: " + "; ".join(f"{k}: {v}" for k, v in accuracy.INTERVAL_METHODS.items()),
    )
    calibrated.add_parser(sub)
    lc = sub.add_parser(
        "lawcalibration",
        help="calibrate Approach 3's and Kaplan's intervals on a sweep's own design (cached for its report)",
    )
    lc.add_argument("sweep_dir", type=Path)
    lc.add_argument(
        "--out", type=Path, default=None, help="the report folder the cache goes in (default <sweep>/report)"
    )
    lc.add_argument(
        "--metric",
        choices=("loss", "bpb"),
        default="loss",
        help="as the report's --metric: a bpb report reads only a cache computed with --metric bpb",
    )
    lc.add_argument(
        "--stopped",
        default="predicted",
        choices=STOPPED,
        help="as the report's --stopped: early-stopped runs kept at their predicted end (predicted) or left out (out); "
        "a report reads only a cache computed on the same runs (default: %(default)s)",
    )
    parametric.add_parser(sub)
    args = p.parse_args(argv)
    if args.study == "a3calibration":
        parametric.run(args)
    if args.study == "lawcalibration":
        _law_calibration(args)
    if args.study == "percalibration":
        calibrated.run(args)
    if args.study == "calibration":
        t0 = time.perf_counter()
        s = accuracy.CALIBRATION_SETTINGS[args.setting]
        detail = accuracy.calibration_study(
            s,
            n_sweeps=args.sweeps,
            n_resamples=args.resamples,
            seed=args.seed,
            methods=tuple(args.methods),
            csv=args.csv,
        )
        print(
            f"Coverage of 90% intervals of N_opt over {args.sweeps} synthetic sweeps "
            f"({s.law}, {s.n_budgets} budgets {s.c_lo:.0e}..{s.c_hi:.0e}, {s.n_per_budget} sizes a budget, "
            f"noise {s.noise:.1%}, offset {s.offset} drift {s.drift} jitter {s.jitter}; {args.resamples} resamples; "
            f"{time.perf_counter() - t0:.0f} s)\n"
        )
        accuracy._print_coverage(accuracy.coverage_table(detail))
    if args.study == "estimators":
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = accuracy.estimator_study(replicates=args.replicates, seed=args.seed)
        print(
            f"IsoFLOP minimum estimators: bias and spread of a (N_opt ∝ C^a) over {args.replicates} synthetic "
            f"sweeps a setting ({time.perf_counter() - t0:.0f} s)\n"
        )
        accuracy._print_estimators(table)


def _law_calibration(args) -> None:
    """Simulate the sweep's design for Approach 3's and Kaplan's bootstraps (``analysis.uncertainty.law_calibration``)
    and write the cache the next ``python -m analysis report`` on the same runs reads; print what it found."""
    from analysis.pipeline import analyse
    from analysis.sections import Sections, progress_to_stderr

    out = args.out or args.sweep_dir / "report"
    an = analyse(
        args.sweep_dir,
        n_boot=0,
        backtests=False,
        conventions=False,
        calibrate=False,
        calibrate_laws=True,
        calibration_cache=out,
        sections=Sections(progress_to_stderr),
        metric=args.metric,
        stopped=args.stopped,
    )
    if "stopped" in an.notes:
        print(an.notes["stopped"], file=sys.stderr)
    for key, cal in an.law_calibrations.items():
        print(
            f"{key}: carried {cal.carried} ({cal.n_sims} simulated sweeps x {cal.n_resamples} resamples, "
            f"{cal.seconds:.0f} s{', from the cache' if cal.from_cache else ''})"
        )
        for r in cal.table.itertuples():
            print(
                f"  {r.method:>12} {r.quantity:>18}: coverage {r.coverage:6.1%}  median width {r.median_width:.3f}"
                + (f"  factor {cal.factors[r.quantity]:.2f}" if r.method == "runs-scaled" else "")
            )
    for k, v in an.notes.items():
        if k.endswith("_calibration"):
            print(f"{k}: {v}", file=sys.stderr)
    print(f"cache written in {out}")
