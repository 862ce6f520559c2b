"""``analyse``: one sweep, every fit, in sections; the sections that need only the runs run beside the fits in a second
process. A fit that cannot be made on this sweep (one budget, too few runs, no finished schedules) is not an error: it
is None and ``notes`` says why."""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from analysis.data import load
from analysis.pipeline.approach2 import approach2_calibration, approach2_intervals
from analysis.pipeline.checks import doubts, repeated_data, truth
from analysis.pipeline.inputs import default_budgets, fit_functions, load_sweep, read_plan
from analysis.pipeline.laws import law_calibrations
from analysis.pipeline.quantities import AllocationQuantities
from analysis.pipeline.result import Analysis, FlopConversion, bands, prediction_table
from analysis.sections import Sections, SideJobs
from analysis.sections import attempt as _attempt

APPROACHES = ("approach1", "approach2", "approach3", "kaplan")
DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.9
DEFAULT_CONVENTION_N_BOOT = 200
BAND_POINTS = 25  # compute values at which bootstrap bands are evaluated
# which fit is the headline when no backtest could choose, in order of preference
FALLBACK_HEADLINE = ("approach3", "approach2", "kaplan", "approach1")


def analyse(
    sweep_dir,
    *,
    flops: str = load.DEFAULT_FLOPS,
    params: str = load.DEFAULT_PARAMS,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    budgets=None,
    level: float = DEFAULT_LEVEL,
    grid="full",
    n_jobs: int | None = None,
    approaches=None,
    backtests: bool = True,
    E: float | None = None,
    conventions: bool = True,
    convention_n_boot: int = DEFAULT_CONVENTION_N_BOOT,
    calibrate: bool = True,
    calibration_cache=None,
    metric: str = "loss",
    stopped: str = "predicted",
    sections: Sections | None = None,
    calibrate_laws: bool = False,
    figures_beside: Callable[[Analysis], tuple[dict, dict]] | None = None,
) -> Analysis:
    """Load ``sweep_dir`` and fit, bootstrap and backtest every approach that this sweep supports.

    ``budgets``: compute budgets (FLOPs) to predict at; default one and two decades above the largest budget.
    ``n_boot`` bootstrap resamples (0 skips the bootstrap), ``seed`` makes them reproducible, ``level`` is the
    interval's coverage. ``grid`` is Approach 3's grid of starts ("full", "small" or an array). ``approaches`` picks
    which fits to make (default: Approach 1 and every law registered in ``analysis.uncertainty.candidates``); ``E`` adds
    Approach 3 with the irreducible loss fixed at E. ``backtests=False`` skips the rolling backtest;
    ``conventions=False`` skips the refits under every FLOP and parameter convention (``convention_n_boot``
    resamples each, at most ``n_boot``). ``calibrate`` (default) chooses Approach 2's interval by simulating this
    sweep's design (``analysis.uncertainty.calibration``), cached in ``calibration_cache`` (a folder) when given.
    ``metric="bpb"`` fits bits per UTF-8 byte instead of nats per token (``analysis.data.load.load_runs``).
    ``stopped``: an early-stopped run (status ``stopped``) is kept at its predicted end (``"predicted"``, the
    default: a sweep has such runs only where early stop was on, and left out they take a budget's edge sizes from
    every fit) or left out (``"out"``); ``notes["stopped"]`` counts the predicted ends.
    ``calibrate_laws`` simulates this sweep's design for Approach 3's and Kaplan's bootstraps too
    (``analysis.uncertainty.law_calibration``: minutes, so off by default; without it a calibration already in
    ``calibration_cache`` is used). ``sections`` times each section (and tells its callback as each ends, e.g.
    ``progress_to_stderr``). ``figures_beside(an)``, when given (``write_report``: the figures that need only the
    fits), runs in the second process once the fits are made; its (rendered, failed) land in ``an.rendered`` and
    ``an.rendered_failed``.
    """
    from analysis.laws.conventions import in_convention, ratio_for
    from analysis.uncertainty.backtests import rolling_backtest
    from analysis.uncertainty.resampling import bootstrap

    plan = fit_functions(grid, E)
    if approaches is None:
        approaches = tuple(plan)
    if n_boot < 0 or n_boot == 1:
        raise ValueError(f"argument n_boot={n_boot}: must be 0 (no bootstrap) or at least 2 resamples")
    if not 0 < level < 1:
        raise ValueError(f"argument level={level}: must be strictly between 0 and 1")
    unknown = set(approaches) - set(plan)
    if unknown:
        raise ValueError(f"argument approaches={sorted(unknown)}: each must be one of {tuple(plan)}")
    sec = sections if sections is not None else Sections()
    with sec("load runs"):
        runs, curves, scan = load_sweep(sweep_dir, flops, params, metric, stopped)

    budgets = tuple(float(b) for b in (budgets if budgets is not None else default_budgets(runs)))
    for b in budgets:
        if not (np.isfinite(b) and b > 0):
            raise ValueError(f"argument budgets: {b!r} is not a positive number of FLOPs")
    c_lo = float(runs["C"].min()) / 3
    c_hi = float(max(runs["C"].max(), max(budgets))) * 3
    grid_c = np.geomspace(c_lo, c_hi, BAND_POINTS)
    an = Analysis(
        source=str(sweep_dir),
        runs=runs,
        curves=curves,
        scan=scan,
        budgets=budgets,
        c_range=(c_lo, c_hi),
        n_boot=n_boot,
        seed=seed,
        level=level,
        fixed_E=E,
        sections=sec,
    )
    an.sweep_plan = read_plan(sweep_dir)
    if metric == "bpb":
        no_bpb = int((scan["reason"] == load.NO_BPB).sum())
        an.notes["metric"] = (
            "losses are validation bits per UTF-8 byte (final_val_bpb), not nats per token, so that tokenizers "
            "compare; E is in bits per byte"
            + (f"; {no_bpb} run(s) have no bits per byte (their data has no text) and are left out" if no_bpb else "")
        )

    _note_stopped(an, stopped)
    side = SideJobs(n_jobs)  # the sections that need nothing else run beside the fits, on the second core
    if conventions and params in ("non_embedding", "total"):
        from analysis.uncertainty.robustness import convention_table

        side.submit(
            "conventions",
            "convention robustness not computed",
            convention_table,
            sweep_dir,
            n_boot=min(convention_n_boot, n_boot),
            seed=seed,
            level=level,
            grid=grid,
            loaded=(flops, params),
            n_jobs=1,
            metric=metric,
            stopped=stopped,
        )
    ratio, why = ratio_for(runs)
    an.conversion = FlopConversion(ratio=None if ratio.identity else ratio, route=ratio.route, why=why)
    for key in approaches:
        fn, role, boot_kw, six_nd, an.labels[key] = plan[key]
        data = curves if role == "curves" else runs
        if data is None:
            an.fits[key], an.notes[key] = None, "no training curves could be read (metrics.parquet)"
            continue
        with sec(f"fit {key}"):
            an.fits[key] = _attempt(an.notes, key, "not fitted", fn, data)
        if an.fits[key] is None:
            continue
        convert = an.conversion.ratio if six_nd else None
        an.allocators[key] = in_convention(an.fits[key], convert)
        doubt = doubts(key, an.fits[key])
        if doubt:
            an.notes[f"{key}_doubt"] = doubt
    if backtests:
        from analysis.uncertainty.candidates import Candidate

        laws = [
            Candidate(k, an.labels[k], plan[k][0], six_nd=plan[k][3])
            for k in approaches
            if k != "approach1" and an.fits.get(k) is not None
        ]
        if laws:
            side.submit(
                "backtest", "rolling backtest not possible", rolling_backtest, runs, laws, ratio=an.conversion.ratio
            )
    # the second process's figures and bootstraps are queued first (behind its conventions and backtest), so that
    # they run while this process bootstraps the rest; the figures before the bootstraps, since this process needs
    # the bootstraps only after its own and the figures not before the end
    if figures_beside is not None and side.pool is not None:
        _submit_figures(an, side, figures_beside)
    beside = [k for k in approaches if k in SIDE_BOOTSTRAPS and side.pool is not None]
    for key in beside + [k for k in approaches if k not in beside]:
        fn, role, boot_kw, six_nd, _ = plan[key]
        data = curves if role == "curves" else runs
        if an.fits.get(key) is None:
            continue
        convert = an.conversion.ratio if six_nd else None
        if n_boot and boot_kw is None:
            an.notes[f"{key}_bootstrap"] = "not bootstrapped (too slow to refit every resample): no intervals"
        elif n_boot:
            kw = dict(
                n_resamples=n_boot,
                seed=seed,
                quantities=AllocationQuantities(budgets, grid_c, convert),
                level=level,
                n_jobs=n_jobs,
                result=an.fits[key],
                **boot_kw,
            )
            if key in beside:  # the same resamples (the seed) whatever n_jobs, so the same intervals
                side.submit(f"{key}_bootstrap", "bootstrap failed", bootstrap, fn, data, **(kw | dict(n_jobs=1)))
                continue
            with sec(f"bootstrap {key} ({n_boot} resamples)"):
                boot = _attempt(an.notes, f"{key}_bootstrap", "bootstrap failed", bootstrap, fn, data, **kw)
            _keep_bootstrap(an, key, boot, grid_c)
    if an.fits.get("approach2") is not None:
        with sec("approach2 intervals"):
            _attempt(
                an.notes, "approach2_intervals", "Approach 2's intervals not computed", approach2_intervals, an, grid_c
            )
        if calibrate:
            with sec("approach2 calibration"):
                approach2_calibration(an, grid_c, calibration_cache)
    for key in SIDE_BOOTSTRAPS:
        if side.has(f"{key}_bootstrap"):
            with sec(f"bootstrap {key} ({n_boot} resamples, second process)"):
                _keep_bootstrap(an, key, side.result(f"{key}_bootstrap", an.notes), grid_c)
    with sec("approach 3 and Kaplan calibration" + ("" if calibrate_laws else " (cached or single loop)")):
        law_calibrations(an, calibrate_laws, calibration_cache)
    if backtests and side.has("backtest"):
        with sec("rolling backtest"):
            an.rolling = side.result("backtest", an.notes)
        if an.rolling is not None:
            for name, fails in an.rolling.failures.items():
                an.notes[f"backtest_{name}"] = "; ".join(fails)
    _choose_headline(an)
    with sec("repeated-data and truth checks"):
        _attempt(an.notes, "repeated_data", "repeated-data check not computed", repeated_data, an)
        _attempt(an.notes, "truth", "truth check not computed", truth, an)
    if side.has("conventions"):
        with sec("convention robustness"):
            an.conventions = side.result("conventions", an.notes)
        if an.conventions is not None:
            for i, w in enumerate(an.conventions.warnings):
                an.notes[f"conventions_{i + 1}"] = w
    if side.has("figures"):
        with sec("figures of the fits (second process)"):
            drawn = side.result("figures", an.notes)
        if drawn is not None:
            an.rendered, an.rendered_failed = drawn
    side.close()
    with sec("prediction tables"):
        for b in budgets:
            an.tables[b], notes = prediction_table(an, b)
            for k, v in notes.items():
                an.notes.setdefault(k, v)
    return an


# Bootstraps run in the second process after its own sections (conventions, backtest, the fits' figures), so that the
# two processes of a report on 2 cores finish together. None since the backtest gained the curve and data-constrained
# laws: that process is the longer one, and Kaplan's bootstrap here ends the report sooner (RESULTS.md, "Report time,
# third round").
SIDE_BOOTSTRAPS: tuple[str, ...] = ()


def _note_stopped(an: Analysis, stopped: str) -> None:
    """``an.notes["stopped"]``: how many runs' losses are early-stopped runs' predicted ends, or how many stopped runs
    were left out; nothing for a sweep without early stops."""
    n_pred = int(an.runs["loss_predicted"].sum()) if "loss_predicted" in an.runs.columns else 0
    n_stopped = int((an.scan["status"] == "stopped").sum())
    if n_pred:
        offsets = an.runs.loc[an.runs["loss_predicted"], "loss_offset"]
        an.notes["stopped"] = (
            f"{n_pred} of {len(an.runs)} runs were stopped early (train.early_stop_frac) and enter every fit at their "
            f"predicted final loss (the early stop's end at the stop, by the sweep prior or the Tissue law, plus the "
            f"median subset -> "
            f"final offset of their sweep's complete runs, {float(offsets.median()):+.4f} nats), not a measured one"
        )
    elif n_stopped:
        an.notes["stopped"] = f"{n_stopped} early-stopped run(s) are left out of the fits" + (
            " (stopped='out')" if stopped == "out" else " (see the runs left out for why)"
        )


def _keep_bootstrap(an: Analysis, key: str, boot, grid_c) -> None:
    """``boot`` (None when it failed: ``an.notes`` says why) as fit ``key``'s intervals and bands."""
    if boot is None:
        return
    n_boot = an.n_boot
    an.boots[key] = boot
    an.bands[key] = bands(boot, grid_c)
    if boot.n_failed == n_boot:
        an.notes[f"{key}_bootstrap"] = f"all {n_boot} resamples failed to fit: no intervals"
    elif boot.n_failed:
        an.notes[f"{key}_bootstrap"] = (
            f"{boot.n_failed} of {n_boot} resamples could not be fitted; intervals use the rest"
        )


def _submit_figures(an: Analysis, side: SideJobs, draw) -> None:
    """``draw`` (e.g. ``analysis.report.figures.render_early``) on a copy of ``an`` as it is now, in the second
    process. Pickled here, not by the pool's feeder thread, so the main fits that follow cannot change the copy."""
    import pickle

    now = dataclasses.replace(an, sections=Sections(), fits=dict(an.fits), allocators=dict(an.allocators))
    side.submit("figures", "figures not drawn", _unpickle_and_call, draw, pickle.dumps(now))


def _unpickle_and_call(fn, data: bytes):
    import pickle

    return fn(pickle.loads(data))


def _allocates(an: Analysis, key: str) -> bool:
    """Whether fit ``key`` gives an allocation at the first prediction budget (a degenerate fit may not)."""
    try:
        an.allocators[key].compute_optimal(an.budgets[0])
    except (ValueError, ArithmeticError):
        return False
    return True


def _choose_headline(an: Analysis) -> None:
    bt = an.rolling
    if bt is not None and bt.best is not None and an.fits.get(bt.best) is not None:
        row = bt.summary.set_index("law").loc[bt.best]
        an.headline = bt.best
        an.headline_why = (
            f"it extrapolated best in the rolling backtest on this sweep: median |ln(N_pred / N_obs)| "
            f"{row['median_abs_log_err_N']:.3f} over {int(row['n_pairs'])} (cutoff, larger budget) "
            f"pairs (rule: {bt.RULE})"
        )
        return
    for key in FALLBACK_HEADLINE:
        if an.fits.get(key) is not None and _allocates(an, key):
            an.headline = key
            an.headline_why = (
                "no rolling backtest could choose a law on this sweep, so the first available of "
                + ", ".join(FALLBACK_HEADLINE)
                + " leads"
            )
            return
