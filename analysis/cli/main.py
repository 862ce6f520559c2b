"""Command line: the whole analysis of a sweep without a notebook.

    python -m analysis report  results/isoflop_cpu                 # figures + report.md + runs.csv
    python -m analysis fit     results/isoflop_cpu                 # fitted parameters with intervals
    python -m analysis predict results/isoflop_cpu --budget 1e21   # N_opt, D_opt, tokens/param, loss
    python -m analysis plot    results/isoflop_cpu --out figs/     # figures only
    python -m analysis backtest results/isoflop_cpu                # rolling backtest of every law
    python -m analysis compare results/a results/b                 # recipes: compute multiplier (analysis/compare/)

Every subcommand goes through ``analysis.pipeline.analyse``, so the numbers agree with the report and the notebook.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from analysis.cli import checks as cli_checks
from analysis.data import load

COMMON_HELP = {
    "flops": "FLOP convention for C (default: %(default)s)",
    "params": "parameter convention for N (default: %(default)s)",
}


def build_parser() -> argparse.ArgumentParser:
    from analysis.pipeline import DEFAULT_LEVEL, DEFAULT_N_BOOT, fit_functions
    from scaling.core.records import FLOP_CONVENTIONS

    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Fit scaling laws to a sweep of finished runs (results/<sweep>/<run_id>/) and report them.",
        epilog="Example: python -m analysis predict results/isoflop_cpu --budget 1e21",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="{report,fit,predict,plot,backtest,compare}")

    def common(sp, n_boot_default=DEFAULT_N_BOOT):
        sp.add_argument(
            "sweep_dir", type=cli_checks.check_sweep_dir, help="a sweep folder results/<sweep>/ (or a folder of sweeps)"
        )
        sp.add_argument("--flops", default=load.DEFAULT_FLOPS, choices=FLOP_CONVENTIONS, help=COMMON_HELP["flops"])
        sp.add_argument(
            "--params", default=load.DEFAULT_PARAMS, choices=load.PARAMS_CONVENTIONS, help=COMMON_HELP["params"]
        )
        sp.add_argument(
            "--metric",
            default="loss",
            choices=load.METRICS,
            help="fit the final validation loss in nats per token (loss) or in bits per UTF-8 byte (bpb: sweeps "
            "with different tokenizers compare; runs whose data has no text are left out) (default: %(default)s)",
        )
        sp.add_argument(
            "--stopped",
            default="predicted",
            choices=load.STOPPED,
            help="early-stopped runs (status 'stopped', train.early_stop_frac): keep each at its predicted final loss "
            "(predicted; the report counts them) or leave them out (out) (default: %(default)s)",
        )
        sp.add_argument(
            "--n-boot",
            type=cli_checks.check_n_boot,
            default=n_boot_default,
            help="bootstrap resamples over runs; 0 skips intervals (default: %(default)s)",
        )
        sp.add_argument("--seed", type=cli_checks.check_seed, default=0, help="bootstrap seed (default: %(default)s)")
        sp.add_argument(
            "--level",
            type=cli_checks.check_level,
            default=DEFAULT_LEVEL,
            help="coverage of the intervals (default: %(default)s)",
        )
        sp.add_argument(
            "--grid",
            default="full",
            choices=("full", "small"),
            help="Approach 3 starting grid: full = 4,500 L-BFGS starts (default: %(default)s)",
        )
        sp.add_argument(
            "--jobs", type=cli_checks.check_jobs, default=None, help="parallel bootstrap workers (default: all cores)"
        )
        sp.add_argument(
            "--budget",
            type=cli_checks.check_budget,
            action="append",
            default=None,
            metavar="FLOPS",
            help="compute budget to predict at; repeat for several (default: 10x and 100x the sweep's largest budget)",
        )
        sp.add_argument(
            "--fixed-E",
            dest="E",
            type=cli_checks.check_loss,
            default=None,
            metavar="LOSS",
            help="also fit Approach 3 with the irreducible loss E fixed at this value (nats/token)",
        )

    sp = sub.add_parser(
        "report",
        help="write every figure, report.md and runs.csv",
        description="Fit every approach, bootstrap, backtest, and write figures (PNG+SVG), report.md and runs.csv.",
    )
    common(sp)
    sp.add_argument(
        "--out", type=cli_checks.check_out_dir, default=None, help="output folder (default: <sweep_dir>/report)"
    )

    sp = sub.add_parser("fit", help="print the fitted parameters of each approach with intervals")
    common(sp)
    sp.add_argument(
        "--approach",
        action="append",
        choices=tuple(fit_functions()) + ("approach3_fixed_E",),
        default=None,
        help="fit only this approach; repeat for several (default: all)",
    )

    sp = sub.add_parser(
        "predict",
        help="compute-optimal N, D, tokens/param and loss at a budget",
        description="Print N_opt, D_opt, tokens per parameter and predicted loss at each budget "
        "under each approach, with bootstrap intervals, beside the published laws.",
    )
    common(sp)

    sp = sub.add_parser("plot", help="write the figures only (PNG and SVG)")
    common(sp)
    sp.add_argument(
        "--out", type=cli_checks.check_out_dir, default=None, help="output folder (default: <sweep_dir>/report)"
    )

    sp = sub.add_parser(
        "backtest",
        help="rolling backtest of every law: errors against extrapolation distance",
        description="For every cutoff budget, fit each law on the budgets up to it and predict "
        "every larger budget's IsoFLOP optimum; print the errors and the best law.",
    )
    common(sp, n_boot_default=0)
    return p


def _analyse(args, **kw):
    from analysis.pipeline import analyse

    return analyse(
        args.sweep_dir,
        flops=args.flops,
        params=args.params,
        n_boot=args.n_boot,
        seed=args.seed,
        budgets=args.budget,
        level=args.level,
        grid=args.grid,
        n_jobs=args.jobs,
        E=args.E,
        metric=args.metric,
        stopped=args.stopped,
        **kw,
    )


def _print_predictions(an, out=None) -> None:
    out = out or sys.stdout
    from analysis.numbers import fmt

    lvl = f"{100 * an.level:.0f}%"
    print(
        f"sweep {an.source}: {len(an.runs)} runs; C in FLOPs under '{an.flops_convention}', "
        f"N = {an.params_convention} parameters; "
        + (
            f"{lvl} bootstrap intervals over {an.n_boot} resamples (seed {an.seed})"
            if an.n_boot
            else "no intervals (--n-boot 0)"
        ),
        file=out,
    )
    for b in an.budgets:
        p = an.predictions(b)
        print(f"\nC = {b:.3g} FLOPs", file=out)
        if p.empty:
            print("  no approach could predict (see notes below)", file=out)
            continue
        rows = [("", "N_opt", "D_opt (tokens)", "tokens/param", "loss")]
        for r in p.itertuples():

            def cell(q, kind, r=r):
                v, lo, hi = getattr(r, q), getattr(r, f"{q}_lo", float("nan")), getattr(r, f"{q}_hi", float("nan"))
                s = fmt(v, kind)
                return s + (f" [{fmt(lo, kind)}, {fmt(hi, kind)}]" if lo == lo and hi == hi else "")

            name = r.source + (" (published)" if r.kind == "published" else "") + (" (headline)" if r.headline else "")
            rows.append(
                (name, cell("N_opt", "sci"), cell("D_opt", "sci"), cell("tokens_per_param", "g"), cell("loss", "loss"))
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for i, r in enumerate(rows):
            print("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)
            if i == 0:
                print("  " + "  ".join("-" * w for w in widths), file=out)
    _print_notes(an, out)


def _print_notes(an, out=None) -> None:
    out = out or sys.stdout
    if an.notes:
        print("\nnotes:", file=out)
        for k, v in an.notes.items():
            print(f"  {k}: {v}", file=out)


def _print_backtest(an, out=None) -> None:
    import pandas as pd

    from analysis.report.markdown import backtest_section

    out = out or sys.stdout
    bt = an.rolling
    print(
        f"sweep {an.source}: {len(an.runs)} runs; FLOPs '{an.flops_convention}', N {an.params_convention}; "
        f"6ND laws converted by the {an.conversion.route} route",
        file=out,
    )
    if bt is not None:
        cols = [
            "label",
            "cutoff_budget",
            "target_budget",
            "distance",
            "N_pred",
            "N_obs",
            "log_err_N",
            "loss_pred",
            "loss_obs",
            "rel_err_loss",
        ]
        with pd.option_context(
            "display.width", 200, "display.max_rows", 10_000, "display.float_format", "{:.4g}".format
        ):
            print("\n" + bt.table[cols].to_string(index=False), file=out)
        print(f"\n{bt.seconds:.1f} s\n", file=out)
    print(backtest_section(an), file=out)
    _print_notes(an, out)


def _print_fits(an, out=None) -> None:
    from analysis.report.markdown import fits_section

    out = out or sys.stdout
    print(
        f"sweep {an.source}: {len(an.runs)} runs; FLOPs '{an.flops_convention}', N {an.params_convention}\n", file=out
    )
    for fit in an.fits.values():
        if fit is not None:
            print(repr(fit), file=out)
            print(file=out)
    print(fits_section(an), file=out)
    _print_notes(an, out)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    leading = next((i for i, a in enumerate(argv[1:]) if a.startswith("-")), len(argv) - 1)
    if argv[:1] == ["compare"] or (argv[:1] == ["report"] and leading > 1):  # recipes: analysis/compare/cli.py
        from analysis.compare.cli import main as compare_main

        return compare_main(argv[1:], report=argv[0] == "report")
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restores the caller's warning settings (main is also called in-process)
        warnings.simplefilter("always", load.RunExcludedWarning)
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args) -> int:
    try:
        if args.command == "report":
            from analysis.report.markdown import write_report
            from analysis.sections import Sections, progress_to_stderr

            path = write_report(
                args.sweep_dir,
                args.out,
                n_boot=args.n_boot,
                seed=args.seed,
                budgets=args.budget,
                flops=args.flops,
                params=args.params,
                level=args.level,
                grid=args.grid,
                n_jobs=args.jobs,
                E=args.E,
                metric=args.metric,
                stopped=args.stopped,
                sections=Sections(progress_to_stderr),  # a line per section on stderr while the report works
            )
            print(f"wrote {path} (and figures, runs.csv) in {path.parent}")
        elif args.command == "fit":
            an = _analyse(
                args, approaches=tuple(args.approach) if args.approach else None, backtests=False, conventions=False
            )
            _print_fits(an)
        elif args.command == "predict":
            an = _analyse(args, conventions=False)
            _warn_far_budgets(an)
            _print_predictions(an)
        elif args.command == "backtest":
            an = _analyse(args, conventions=False)
            _print_backtest(an)
        elif args.command == "plot":
            from analysis.report.figures import write_figures
            from analysis.report.markdown import writable_dir

            if not args.sweep_dir.exists():  # (the default out folder lies inside it: never create it)
                raise FileNotFoundError(f"sweep directory {str(args.sweep_dir)!r} does not exist")
            out = writable_dir(args.out if args.out is not None else args.sweep_dir / "report")
            an = _analyse(args, conventions=False)
            failed: dict = {}
            paths = write_figures(an, out, failed)
            print(f"wrote {len(paths)} files in {out}: " + ", ".join(p.name for p in paths))
            _print_notes(an)
            for name, why in failed.items():
                print(f"  figure {name}: {why}")
    except (ValueError, OSError) as e:  # OSError: FileNotFoundError, NotADirectoryError, PermissionError, ...
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001  (a bug: said in one line with exit 2, never a traceback to a user)
        print(f"error: unexpected {type(e).__name__} in '{args.command}': {e} (please report it)", file=sys.stderr)
        return 2
    return 0


FAR_BELOW, FAR_ABOVE = 10.0, 1e4  # a budget this far outside the runs' compute is flagged as a far extrapolation


def _warn_far_budgets(an) -> None:
    """A warning for each prediction budget far outside the compute the runs span (below the smallest run's C / 10
    or above the largest's x 1e4): the laws are extrapolated there, and a tiny budget gives nonsense sizes."""
    lo, hi = float(an.runs["C"].min()), float(an.runs["C"].max())
    for b in an.budgets:
        if b < lo / FAR_BELOW:
            where = f"{lo / b:.3g}x below the smallest run's C"
        elif b > hi * FAR_ABOVE:
            where = f"{b / hi:.3g}x above the largest run's C"
        else:
            continue
        print(
            f"warning: --budget {b:.3g} FLOPs is {where} (the runs span {lo:.3g} to {hi:.3g} FLOPs): every "
            f"prediction there is a far extrapolation of the fitted laws",
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
