"""One sweep, every fit: runs -> each approach fitted, bootstrapped, backtested, converted to the sweep's FLOP
convention and checked for convention robustness -> an ``Analysis`` value holding every table the report renders.

``analyse`` computes; nothing here writes a file or prints. ``analysis.report.markdown`` renders an Analysis
as markdown, ``analysis.report.figures`` draws it, and the CLI prints it, so a report, a notebook and a
``predict`` call agree.
A fit that cannot be made on this sweep (one budget, too few runs, no finished schedules) is not an error: it is
None and ``notes`` says why.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import pandas as pd

from analysis.data import load
from analysis.sections import Sections, SideJobs
from analysis.sections import attempt as _attempt

if TYPE_CHECKING:  # types only: the modules themselves are imported where they are used, keeping this one light
    from analysis.laws.conventions import FamilyRatio, InConvention, SixNDRatio
    from analysis.laws.protocol import FitResult
    from analysis.uncertainty.backtests import RollingBacktest
    from analysis.uncertainty.calibration import Calibration
    from analysis.uncertainty.intervals import PowerLawInterval
    from analysis.uncertainty.resampling import BootstrapResult
    from analysis.uncertainty.robustness import ConventionTable
    from analysis.uncertainty.truth import TruthCheck

APPROACHES = ("approach1", "approach2", "approach3", "kaplan")
DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.9
DEFAULT_CONVENTION_N_BOOT = 200
BAND_POINTS = 25  # compute values at which bootstrap bands are evaluated
# which fit is the headline when no backtest could choose, in order of preference
FALLBACK_HEADLINE = ("approach3", "approach2", "kaplan", "approach1")


@dataclass
class FlopConversion:
    """How allocations of laws fitted under C = 6ND are put in the sweep's own FLOP convention."""

    ratio: FamilyRatio | SixNDRatio | None = None  # C / 6ND of the runs; None when C is 6ND
    route: str = ""  # conventions.ROUTE_EXACT or ROUTE_STATISTICAL
    why: str = ""  # why the exact route does not apply ("" when it does)


@dataclass
class Approach2Intervals:
    """Approach 2's intervals beyond the run bootstrap."""

    interval: PowerLawInterval | None = None  # Student-t intervals of a and N_opt, when they are the ones carried
    t_check: PowerLawInterval | None = None  # the same t interval where it is not carried (local-parabola minima)
    minima: pd.DataFrame | None = None  # (budget, N_lo, N_hi, n_failed): each budget's within-budget bootstrap
    calibration: Calibration | None = (
        None  # which interval this sweep's design supports (analysis/uncertainty/calibration.py)
    )


@dataclass
class RepeatedData:
    """Runs that repeat their data (``datacon.check_epochs``) and what the data-constrained correction changes."""

    runs: list[str] = field(default_factory=list)  # runs over datacon.EPOCH_WARN_LIMIT epochs
    warning: str = ""  # check_epochs' warning, "" when no run exceeds the limit
    shift: pd.DataFrame | None = None  # loss at each prediction budget's N_opt with / without the correction
    law_name: str = ""  # which data-constrained law ``shift`` used


@dataclass
class Analysis:
    """Everything a report shows. ``fits[key]`` is None when ``notes[key]`` says why; ``allocators[key]`` answers
    ``compute_optimal(C)`` with C in the sweep's own FLOP convention (converted from 6ND where the law needs it)."""

    source: str
    runs: pd.DataFrame
    curves: pd.DataFrame | None
    scan: pd.DataFrame  # every run directory, usable or not, with the reason
    budgets: tuple[float, ...]  # budgets to predict at
    c_range: tuple[float, float]  # compute range the figures span
    n_boot: int
    seed: int
    level: float
    labels: dict[str, str] = field(default_factory=dict)  # key -> readable name
    fits: dict[str, FitResult | None] = field(default_factory=dict)  # key -> fit result, as fitted
    allocators: dict[str, FitResult | InConvention] = field(default_factory=dict)  # compute_optimal with C as loaded
    conversion: FlopConversion = field(default_factory=FlopConversion)
    boots: dict[str, BootstrapResult] = field(default_factory=dict)
    bands: dict[str, pd.DataFrame] = field(default_factory=dict)  # key -> DataFrame(quantity, C, lo, hi)
    rolling: RollingBacktest | None = None
    headline: str | None = None  # key of the law the report leads with
    headline_why: str = ""
    conventions: ConventionTable | None = None
    fixed_E: float | None = None
    tables: dict[float, pd.DataFrame] = field(default_factory=dict)  # budget -> predictions
    a2: Approach2Intervals = field(default_factory=Approach2Intervals)
    # law key -> its bootstrap's calibration on this sweep's design (analysis/uncertainty/law_calibration.py)
    law_calibrations: dict[str, Any] = field(default_factory=dict)
    repeated: RepeatedData = field(default_factory=RepeatedData)
    truth: TruthCheck | None = None  # a synthetic source's known loss floor beside the fitted E
    sweep_plan: dict | None = (
        None  # <sweep>/plan.json (scaling/sweep/plan.py, scaling/sweep/sequential.py) when present
    )
    notes: dict[str, str] = field(default_factory=dict)  # key -> why a step is missing or what to watch out for
    # figures drawn in the second process (analyse's ``figures_beside``): name -> {format: bytes}, name -> why not
    rendered: dict[str, dict[str, bytes]] = field(default_factory=dict, repr=False)
    rendered_failed: dict[str, str] = field(default_factory=dict)
    sections: Sections = field(default_factory=Sections)  # wall time of each section (a report adds its own)

    @property
    def flops_convention(self) -> str:
        return self.runs.attrs.get("flops_convention", "unknown")

    @property
    def params_convention(self) -> str:
        return self.runs.attrs.get("params_convention", "unknown")

    @property
    def keys(self) -> tuple[str, ...]:
        """Fit keys in report order, the headline first."""
        ks = list(self.fits)
        if self.headline in ks:
            ks.remove(self.headline)
            ks.insert(0, self.headline)
        return tuple(ks)

    def predictions(self, budget: float) -> pd.DataFrame:
        """N_opt, D_opt, tokens per parameter and loss at ``budget`` under each fitted approach (headline first,
        with bootstrap interval columns ``<q>_lo``/``<q>_hi``, NaN unless ``budget`` is one of ``self.budgets``)
        and under each published law (no intervals). Computed on each call; nothing is recorded."""
        if budget in self.tables:
            return self.tables[budget]
        return prediction_table(self, budget)[0]


def prediction_table(an: Analysis, budget: float) -> tuple[pd.DataFrame, dict]:
    """(the predictions at ``budget``, notes on the approaches and laws that could not allocate there)."""
    from analysis.laws.published import PUBLISHED, published_label

    rows, notes = [], {}
    for key in an.keys:
        fit = an.allocators.get(key)
        if fit is None:
            continue
        try:
            a = fit.compute_optimal(budget)
        except Exception as e:  # an approach that cannot allocate (e.g. a Kaplan form without L(C))
            notes[f"{key}_predict"] = f"{type(e).__name__}: {e}"
            continue
        row = dict(
            key=key,
            source=an.labels.get(key, key),
            kind="this sweep",
            headline=key == an.headline,
            N_opt=a.N_opt,
            D_opt=a.D_opt,
            tokens_per_param=a.D_opt / a.N_opt,
            loss=_num(a.loss),
        )
        iv = fit_intervals(an, key)
        for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            lo, hi = iv.get(qname(q, budget), (np.nan, np.nan))
            row[f"{q}_lo"], row[f"{q}_hi"] = lo, hi
        rows.append(row)
    for name, law in PUBLISHED.items():
        try:
            a = law.compute_optimal(budget)
        except Exception as e:
            notes[f"published_{name}"] = f"{type(e).__name__}: {e}"
            continue
        rows.append(
            dict(
                key=name,
                source=published_label(name),
                kind="published",
                headline=False,
                N_opt=a.N_opt,
                D_opt=a.D_opt,
                tokens_per_param=a.D_opt / a.N_opt,
                loss=_num(a.loss),
            )
        )
    return pd.DataFrame(rows), notes


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def qname(q: str, budget: float) -> str:
    """Name of a bootstrapped quantity at a budget, e.g. ``N_opt@1.000e+21``."""
    return f"{q}@{budget:.3e}"


def intervals(boot) -> dict[str, tuple[float, float]]:
    """quantity -> (lo, hi) from a BootstrapResult (empty for None)."""
    if boot is None:
        return {}
    return {r.quantity: (float(r.lo), float(r.hi)) for r in boot.intervals.itertuples()}


def fit_intervals(an: Analysis, key: str) -> dict[str, tuple[float, float]]:
    """quantity -> (lo, hi) the report shows for fit ``key``: the run bootstrap, except Approach 2's a and N_opt,
    which come from the calibrated Student-t interval of its line (``an.a2.interval``) when there is one."""
    iv = intervals(an.boots.get(key))
    cal = an.law_calibrations.get(key)
    if cal is not None and iv:
        fit = an.allocators[key]
        est = {"a": float(an.fits[key].a)}  # type: ignore[union-attr]
        est.update({qname("N_opt", b): float(np.asarray(fit.compute_optimal(b).N_opt)) for b in an.budgets})
        iv = cal.apply(iv, est)
    if key == "approach2" and an.a2.interval is not None:
        from analysis.uncertainty.intervals import n_opt_name

        t = an.a2.interval
        iv["a"] = t.interval("a")
        for b in an.budgets:
            iv[qname("N_opt", b)] = t.interval(n_opt_name(b))
    return iv


def a2_interval_source(an: Analysis) -> str:
    """Which interval Approach 2's a and N_opt carry, in words."""
    cal = an.a2.calibration
    if cal is not None:
        return calibration_source(cal, an.a2.interval is not None)
    if an.a2.interval is None:
        return (
            "run bootstrap (it over-covers: 100%/99% of a nominal 90% at 10x/100x in the calibration study; the "
            "Student-t interval of the line is carried instead when every budget's minimum is the spline's, which "
            "needs 9+ sizes a budget, and there are at least 3 budgets: with local-parabola minima it covered "
            "79%/80% on wide off-centre designs, 86.5-90.5% on narrow centred ones like the CPU sweep's)"
        )
    from analysis.fits.approach2 import Approach2Result

    a2 = an.fits["approach2"]
    assert isinstance(a2, Approach2Result)  # an.a2.interval is only set from an Approach 2 fit
    return (
        f"Student-t interval of the line through the {a2.n_budgets_used} budgets' minima "
        f"(analysis/uncertainty/intervals.py, scheme 't', calibrated to 90.0%/90.5% coverage at 10x/100x); the run "
        f"bootstrap stays as a cross-check"
    )


class AllocationQuantities:
    """What is bootstrapped for every approach: N_opt, D_opt, tokens per parameter and loss at each prediction
    budget and at each point of the band grid (in the sweep's FLOP convention), plus the result's own parameters
    (exponents, E, ...). A class, not a lambda, so that bootstrap workers in other processes can unpickle it."""

    def __init__(self, budgets, grid, ratio=None):
        self.cs = np.concatenate([np.asarray(budgets, float), np.asarray(grid, float)])
        self.ratio = ratio

    def __call__(self, fit) -> dict:
        from analysis.laws.conventions import in_convention

        a = in_convention(fit, self.ratio).compute_optimal(self.cs)
        out = {}
        for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            v = np.broadcast_to(np.asarray(getattr(a, q, np.nan), dtype=float), self.cs.shape)
            out.update({qname(q, c): float(x) for c, x in zip(self.cs, v)})
        out.update({k: _num(v) for k, v in fit.default_quantities().items()})
        return out


def _bands(boot, grid) -> pd.DataFrame:
    iv = intervals(boot)
    rows = []
    for q in ("N_opt", "D_opt"):
        for c in grid:
            lo, hi = iv.get(qname(q, c), (np.nan, np.nan))
            if np.isfinite(lo) and np.isfinite(hi):
                rows.append(dict(quantity=q, C=c, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=["quantity", "C", "lo", "hi"])


def doubts(key: str, fit) -> str | None:
    """A plain-words warning when a fit converged to something the data cannot support."""
    if key.startswith("approach3"):
        bits = []
        if not (0 < fit.alpha < 2 and 0 < fit.beta < 2):
            bits.append(
                f"α = {fit.alpha:.3g}, β = {fit.beta:.3g} lie outside (0, 2), the range of the starting grid "
                "and of every published fit"
            )
        if fit.E < 1e-3:
            bits.append(f"E = {fit.E:.3g}: no irreducible loss")
        if not fit.converged:
            bits.append(f"L-BFGS did not converge ({fit.message})")
        if bits:
            return (
                "the parametric law is poorly constrained by these runs (" + "; ".join(bits) + "): its "
                "allocation and loss predictions should not be trusted; add sizes and budgets"
            )
    if key in ("approach1", "approach2") and not 0 < fit.a < 1:
        return f"N_opt ∝ C^{fit.a:.3g}: an exponent outside (0, 1) means the sweep does not bracket the optimum"
    return None


def _default_budgets(runs: pd.DataFrame) -> tuple[float, ...]:
    """Predict one and two decades beyond the sweep's largest budget, where an extrapolation is still useful."""
    top = np.nanmax(runs["budget"]) if runs["budget"].notna().any() else runs["C"].max()
    return (float(f"{top * 10:.1e}"), float(f"{top * 100:.1e}"))


def load_sweep(sweep_dir, flops: str, params: str, metric: str = "loss"):
    """(runs, curves or None, scan): the sweep loaded once, each excluded run warned about once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", load.RunExcludedWarning)
        runs = load.load_runs(sweep_dir, flops=flops, params=params, metric=metric)
        try:
            curves = load.load_curves(sweep_dir, flops=flops, params=params, metric=metric)
        except (ValueError, FileNotFoundError):
            curves = None
    seen = set()
    for w in caught:  # pass exclusions on to the caller once, not twice (runs and curves both warn)
        if w.category is not load.RunExcludedWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        elif str(w.message) not in seen:
            seen.add(str(w.message))
            warnings.warn(str(w.message), load.RunExcludedWarning, stacklevel=3)
    return runs, curves, load.scan_runs(sweep_dir, flops=flops, params=params, metric=metric)


def fit_functions(grid="full", E: float | None = None) -> dict:
    """key -> (fit function, data role, bootstrap keywords, allocates under 6ND, label) for every approach."""
    from analysis.fits import LABELS
    from analysis.fits.approach1 import fit_approach1
    from analysis.uncertainty.candidates import LAWS, fixed_e_candidate

    out: dict[str, tuple[Callable[..., Any], str, dict[str, str] | None, bool, str]] = {
        "approach1": (fit_approach1, "curves", {}, False, LABELS["approach1"])
    }  # resamples whole runs (the result's resample_group)
    cands = dict(LAWS)
    if E is not None:
        cands["approach3_fixed_E"] = fixed_e_candidate(E)
    for key, c in cands.items():
        fn = c.fit
        if key.startswith("approach3") and not (isinstance(grid, str) and grid == "full"):
            fn = functools.partial(fn, grid=grid)
        # every budget keeps its run count
        boot_kw: dict[str, str] | None = {"strata_col": "budget"} if key == "approach2" else {}
        if not c.bootstrap:
            boot_kw = None  # the law is not bootstrapped (analysis.uncertainty.candidates.Candidate.bootstrap)
        out[key] = (fn, "runs", boot_kw, c.six_nd, c.label)
    return out


def read_plan(sweep_dir) -> dict | None:
    """The sweep's plan.json (which budgets the planner chose and why, predicted and measured wall time, and a
    sequential sweep's stages), or None when the sweep has none or it is unreadable."""
    import json

    path = Path(sweep_dir) / "plan.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


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
        runs, curves, scan = load_sweep(sweep_dir, flops, params, metric)

    budgets = tuple(float(b) for b in (budgets if budgets is not None else _default_budgets(runs)))
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
    # the second process's bootstraps and figures are queued first (behind its conventions and backtest), so that
    # they run while this process bootstraps the rest
    beside = [k for k in approaches if k in SIDE_BOOTSTRAPS and side.pool is not None]
    for key in beside + [k for k in approaches if k not in beside]:
        fn, role, boot_kw, six_nd, _ = plan[key]
        data = curves if role == "curves" else runs
        if key not in beside and figures_beside is not None and side.pool is not None and not side.has("figures"):
            _submit_figures(an, side, figures_beside)
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
                an.notes, "approach2_intervals", "Approach 2's intervals not computed", _approach2_intervals, an, grid_c
            )
        if calibrate:
            with sec("approach2 calibration"):
                _approach2_calibration(an, grid_c, calibration_cache)
    for key in SIDE_BOOTSTRAPS:
        if side.has(f"{key}_bootstrap"):
            with sec(f"bootstrap {key} ({n_boot} resamples, second process)"):
                _keep_bootstrap(an, key, side.result(f"{key}_bootstrap", an.notes), grid_c)
    with sec("approach 3 and Kaplan calibration" + ("" if calibrate_laws else " (cached or single loop)")):
        _law_calibrations(an, calibrate_laws, calibration_cache)
    if backtests and side.has("backtest"):
        with sec("rolling backtest"):
            an.rolling = side.result("backtest", an.notes)
        if an.rolling is not None:
            for name, fails in an.rolling.failures.items():
                an.notes[f"backtest_{name}"] = "; ".join(fails)
    _choose_headline(an)
    with sec("repeated-data and truth checks"):
        _attempt(an.notes, "repeated_data", "repeated-data check not computed", _repeated_data, an)
        _attempt(an.notes, "truth", "truth check not computed", _truth, an)
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


# Bootstraps run in the second process once its own sections (conventions, backtest) are done, so that the two
# processes of a report on 2 cores finish together (RESULTS.md, "Report time and calibrated intervals").
SIDE_BOOTSTRAPS = ("kaplan",)


def _keep_bootstrap(an: Analysis, key: str, boot, grid_c) -> None:
    """``boot`` (None when it failed: ``an.notes`` says why) as fit ``key``'s intervals and bands."""
    if boot is None:
        return
    n_boot = an.n_boot
    an.boots[key] = boot
    an.bands[key] = _bands(boot, grid_c)
    if boot.n_failed == n_boot:
        an.notes[f"{key}_bootstrap"] = f"all {n_boot} resamples failed to fit: no intervals"
    elif boot.n_failed:
        an.notes[f"{key}_bootstrap"] = (
            f"{boot.n_failed} of {n_boot} resamples could not be fitted; intervals use the rest"
        )


def _submit_figures(an: Analysis, side: SideJobs, draw) -> None:
    """``draw`` (e.g. ``analysis.report.figures.render_early``) on a copy of ``an`` as it is now, in the second
    process. Pickled here, not by the pool's feeder thread, so the main fits that follow cannot change the copy."""
    import dataclasses
    import pickle

    now = dataclasses.replace(an, sections=Sections(), fits=dict(an.fits), allocators=dict(an.allocators))
    side.submit("figures", "figures not drawn", _unpickle_and_call, draw, pickle.dumps(now))


def _unpickle_and_call(fn, data: bytes):
    import pickle

    return fn(pickle.loads(data))


def _approach2_intervals(an: Analysis, grid_c) -> None:
    """Approach 2's calibrated Student-t intervals (a, N_opt at the budgets and along the band grid, which then
    replaces the run bootstrap's N_opt band) and each budget's within-budget bootstrap interval of its minimum."""
    from analysis.fits.approach2 import Approach2Result, isoflop_groups
    from analysis.fits.minima import bootstrap_minimum
    from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

    a2 = an.fits["approach2"]
    assert isinstance(a2, Approach2Result)  # only called when Approach 2 was fitted
    used = a2.per_budget[a2.per_budget["used"]]
    runs = an.runs.assign(budget=isoflop_groups(an.runs))
    runs = runs[np.isin(runs["budget"], used["budget"])]
    # the t interval is calibrated for spline minima; with local-parabola minima (budgets of under 9 sizes, 'auto') it
    # under-covered (their small bias is not in the line's scatter), so there the run bootstrap (which over-covers)
    # stays the interval and the t interval is shown beside it (coverages: analysis/README.md, "Measured")
    if len(used) >= 3:
        targets = np.concatenate([np.asarray(an.budgets, float), np.asarray(grid_c, float)])
        t = _attempt(
            an.notes,
            "approach2_t_interval",
            "Student-t interval not computed",
            isoflop_power_law_interval,
            runs,
            targets,
            method=a2.estimator,
            scheme="t",
            level=an.level,
        )
        if t is not None and not (used["estimator"] == "spline").all():
            an.a2.t_check, t = t, None
        if t is not None:
            an.a2.interval = t
            band = [dict(quantity="N_opt", C=c, lo=lo, hi=hi) for c in grid_c for lo, hi in [t.interval(n_opt_name(c))]]
            old = an.bands.get("approach2")
            keep = old[old["quantity"] != "N_opt"] if old is not None and len(old) else None
            an.bands["approach2"] = pd.concat(
                [b for b in (pd.DataFrame(band), keep) if b is not None], ignore_index=True
            )
    rows = []
    method = dict(zip(used["budget"], used["estimator"]))  # the estimator each budget's minimum actually used
    for b, g in runs.groupby("budget"):
        try:
            m = bootstrap_minimum(
                np.log(g["N"].to_numpy(float)),
                g["loss"].to_numpy(float),
                method.get(b, a2.estimator),
                n_resamples=200,
                level=an.level,
                seed=an.seed,
            )
            rows.append(dict(budget=float(b), N_lo=float(np.exp(m.lo)), N_hi=float(np.exp(m.hi)), n_failed=m.n_failed))
        except ValueError as e:
            an.notes[f"approach2_minimum_{b:.3g}"] = f"no within-budget interval: {e}"
    an.a2.minima = pd.DataFrame(rows, columns=["budget", "N_lo", "N_hi", "n_failed"])


def _truth(an: Analysis) -> None:
    """Where the runs' data has a known entropy rate (a synthetic source), Approach 3's E and its interval beside it."""
    from analysis.fits.approach3 import Approach3Result
    from analysis.uncertainty.truth import TruthError, check_irreducible, known_truth

    try:
        truth = known_truth(an.runs)
    except TruthError as e:
        an.notes["truth"] = f"no truth check: {e}"
        return
    a3, boot = an.fits.get("approach3"), an.boots.get("approach3")
    if truth is None or a3 is None:
        return
    assert isinstance(a3, Approach3Result)
    if boot is None:
        an.notes["truth"] = "no truth check: Approach 3 has no bootstrap interval of E (bootstrap off)"
        return
    lo, hi = boot.interval("E")
    an.truth = check_irreducible(truth, a3.E, lo, hi, level=an.level)


def _repeated_data(an: Analysis) -> None:
    """Runs beyond ~4 epochs (``datacon.check_epochs``, its warning kept), and when any run repeats its data, how
    much the data-constrained correction moves the loss predicted at each budget's N_opt (``prediction_shift``)."""
    from analysis.fits import datacon

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", datacon.RepeatedDataWarning)
        an.repeated.runs = datacon.check_epochs(an.runs)
    an.repeated.warning = "; ".join(str(w.message) for w in caught if w.category is datacon.RepeatedDataWarning)
    ep = pd.to_numeric(an.runs.get("epochs", pd.Series(dtype=float)), errors="coerce")
    if not (ep > 1).any() or "unique_train_tokens" not in an.runs.columns:
        return
    fit = an.fits.get("datacon")
    assert fit is None or isinstance(fit, datacon.DataConstrainedFit)
    law = fit.law if fit is not None else datacon.MUENNIGHOFF_2023
    an.repeated.law_name = (
        "the data-constrained law fitted to this sweep"
        if fit is not None
        else "Muennighoff et al. 2023's published constants (no fit to this sweep)"
    )
    U = float(pd.to_numeric(an.runs["unique_train_tokens"], errors="coerce").max())
    key = next((k for k in (an.headline, "approach3", "approach2") if k and an.allocators.get(k) is not None), None)
    if key is None or not np.isfinite(U) or U <= 0:
        return
    al = an.allocators[key].compute_optimal(np.asarray(an.budgets, float))
    shift = datacon.prediction_shift(law, np.atleast_1d(al.N_opt), np.atleast_1d(al.D_opt), U)
    shift.insert(0, "C", np.asarray(an.budgets, float))
    shift.insert(1, "allocation", an.labels.get(key, key))
    an.repeated.shift = shift


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


# ----- issue 20: Approach 2's interval chosen by simulating this sweep's own design --------------------------------


def calibration_source(cal, carried: bool) -> str:
    """``a2_interval_source``'s words when the per-sweep calibration chose the interval."""
    what = {
        "t": "the Student-t interval of the line through the budgets' minima",
        "t-widened": "the Student-t interval of the line through the budgets' minima, widened by the factor "
        "the simulation says it needs",
        "budgets": "the pairs bootstrap of the line's points (whole budgets)",
        "runs": "the run bootstrap",
    }[cal.carried]
    return (
        f"{what}, chosen by simulating this sweep's own design {cal.n_sims} times "
        f"(analysis/uncertainty/calibration.py; see 'Calibration of Approach 2's interval')"
        + ("" if carried or cal.carried == "runs" else ": not computed on the runs, so the run bootstrap stays")
    )


def _approach2_calibration(an: Analysis, grid_c, cache_dir) -> None:
    """Simulate this sweep's design (``calibrate_approach2``) and carry the interval it chooses: the t interval,
    widened by the simulated factor where it needs it, or a bootstrap; the run bootstrap stays beside it."""
    from analysis.fits.approach2 import Approach2Result, isoflop_groups
    from analysis.uncertainty.calibration import calibrate_approach2
    from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

    a2 = an.fits["approach2"]
    assert isinstance(a2, Approach2Result)  # only called when Approach 2 was fitted
    used = a2.per_budget[a2.per_budget["used"]]
    if len(used) < 3:
        return
    runs = an.runs.assign(budget=isoflop_groups(an.runs))
    runs = runs[np.isin(runs["budget"], used["budget"])]
    reason = an.scan["reason"].astype(str) if "reason" in an.scan.columns else pd.Series(dtype=str)
    n_flagged = int(reason.str.startswith("quality gate (stalled)").sum())
    targets = np.concatenate([np.asarray(an.budgets, float), np.asarray(grid_c, float)])
    shown = ["a"] + [n_opt_name(b) for b in an.budgets]
    cal = _attempt(
        an.notes,
        "approach2_calibration",
        "calibration not computed",
        calibrate_approach2,
        runs,
        targets,
        a2=a2,
        law=an.fits.get("approach3"),
        n_flagged=n_flagged,
        level=an.level,
        estimator=a2.estimator,
        cache_dir=cache_dir,
        quantities=shown,
    )
    if cal is None:
        return
    an.a2.calibration = cal
    t = an.a2.interval or an.a2.t_check
    if cal.carried in ("t", "t-widened") and t is not None:
        carried = cal.apply(t)
    elif cal.carried == "budgets":
        carried = _attempt(
            an.notes,
            "approach2_calibration_budgets",
            "pairs bootstrap not computed",
            isoflop_power_law_interval,
            runs,
            targets,
            method=a2.estimator,
            scheme="budgets",
            n_resamples=max(an.n_boot, 200),
            level=an.level,
            seed=an.seed,
        )
    else:
        carried = None  # the run bootstrap
    an.a2.t_check = None if cal.carried == "t" else t
    an.a2.interval = carried
    if carried is not None:
        band = [
            dict(quantity="N_opt", C=c, lo=lo, hi=hi) for c in grid_c for lo, hi in [carried.interval(n_opt_name(c))]
        ]
        old = an.bands.get("approach2")
        keep = old[old["quantity"] != "N_opt"] if old is not None and len(old) else None
        an.bands["approach2"] = pd.concat([b for b in (pd.DataFrame(band), keep) if b is not None], ignore_index=True)
    elif an.boots.get("approach2") is not None:
        an.bands["approach2"] = _bands(an.boots["approach2"], grid_c)


# ----- issue 20 item 4: Approach 3's and Kaplan's bootstraps calibrated on this sweep's design ----------------------

LAW_CALIBRATION_SIMS = 100
# laws whose interval the report calibrates itself by one loop of simulated sweeps when the double loop's cache is
# absent (analysis/uncertainty/parametric_check.py): Approach 3, all simulated sweeps in one batched L-BFGS
SINGLE_LOOP = ("approach3",)
SINGLE_LOOP_SIMS = 200
LAW_CALIBRATION_RESAMPLES = 100


class CalibratedQuantities:
    """What the law calibration judges: a and N_opt (under C = 6ND, the law's own) at each report budget. Another
    quantity (the compute multiplier of ``analysis compare``) is calibrated by passing its own such function to
    ``law_calibration.calibrate_law``."""

    def __init__(self, budgets):
        self.budgets = tuple(float(b) for b in budgets)

    def __call__(self, fit) -> dict[str, float]:
        out = {"a": float(fit.a)}
        for b in self.budgets:
            out[qname("N_opt", b)] = float(np.asarray(fit.compute_optimal(b).N_opt))
        return out


def _law_calibrations(an: Analysis, compute: bool, cache_dir) -> None:
    """Approach 3's and Kaplan's run bootstraps calibrated on this sweep's design: computed when ``compute``, else
    read from ``cache_dir`` where a earlier ``python -m analysis.studies lawcalibration`` wrote it."""
    from analysis.uncertainty import law_calibration as lc

    reason = an.scan["reason"].astype(str) if "reason" in an.scan.columns else pd.Series(dtype=str)
    n_flagged = int(reason.str.startswith("quality gate (stalled)").sum())
    q = CalibratedQuantities(an.budgets)
    settings = dict(
        level=an.level,
        n_sims=LAW_CALIBRATION_SIMS,
        n_resamples=LAW_CALIBRATION_RESAMPLES,
        seed=None,
        jump=[0.15, 0.25],
        n_flagged=n_flagged,
    )
    plan = fit_functions()
    for key in ("approach3", "kaplan"):
        fit = an.fits.get(key)
        if fit is None:
            continue
        if compute:
            cal = _attempt(
                an.notes,
                f"{key}_calibration",
                "calibration not computed",
                lc.calibrate_law,
                key,
                fit,
                an.runs,
                q,
                fit_fn=plan[key][0],
                n_flagged=n_flagged,
                level=an.level,
                n_sims=LAW_CALIBRATION_SIMS,
                n_resamples=LAW_CALIBRATION_RESAMPLES,
                cache_dir=cache_dir,
            )
        else:
            cal = lc.cached(cache_dir, an.runs, key, fit, list(q(fit)), **settings)
        if cal is None and key in SINGLE_LOOP and an.boots.get(key) is not None:
            # no double-loop calibration in the cache: the single loop, ~1 s (RESULTS.md: its coverage by setting)
            cal = _attempt(
                an.notes,
                f"{key}_calibration",
                "single-loop calibration not computed",
                lc.single_loop,
                key,
                fit,
                an.runs,
                q,
                n_flagged=n_flagged,
                level=an.level,
                n_sims=SINGLE_LOOP_SIMS,
                seed=an.seed,
            )
        if cal is not None:
            an.law_calibrations[key] = cal
