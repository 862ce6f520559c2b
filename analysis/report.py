"""A whole analysis of one sweep, start to finish: load, fit every approach, bootstrap, backtest, compare to the
published laws, draw the figures and write ``report.md`` (plus ``runs.csv``).

``analyse(sweep_dir)`` does the work and returns an ``Analysis`` (tables and fit results, nothing written);
``write_report(sweep_dir)`` calls it and writes the files. The CLI (``python -m analysis``) and the notebook use the
same two functions, so the numbers in a report, a notebook and a ``predict`` call always agree.

A fit that cannot be made on this sweep (one budget, too few runs, no finished schedules) is not an error: the
report says which fit is missing and why, and everything else is still written.
"""
from __future__ import annotations

import datetime as _dt
import functools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import load, plots

APPROACHES = ("approach1", "approach2", "approach3", "kaplan")
DEFAULT_N_BOOT = 1000
DEFAULT_LEVEL = 0.9
BAND_POINTS = 25  # compute values at which bootstrap bands are evaluated


# ---------------------------------------------------------------------------------------------------------------
# FLOP conventions: Approach 3's and Kaplan's closed-form allocations assume C = 6ND


class SixNDRatio:
    """r(N) = C / (6 N D) of a sweep's runs: how its FLOP convention relates to 6ND, as a function of model size.

    Approaches 1 and 2 fit C as loaded (any convention); Approach 3 and Kaplan's joint law allocate under C = 6ND
    (Hoffmann et al. 2022 eq. 4; Kaplan et al. 2020 §6). To put all four on one axis, their allocations are
    re-expressed through this ratio. Within the sweep's sizes r is interpolated in log N; beyond them, when every
    r > 1, the overhead r - 1 (attention, embeddings, logits) is extrapolated as a power law of N fitted to the runs,
    since each overhead term shrinks like a power of the width; otherwise r is held at the nearest run's value.
    """

    def __init__(self, N, D, C):
        N, D, C = (np.asarray(x, dtype=float) for x in (N, D, C))
        r = C / (6.0 * N * D)
        df = pd.DataFrame({"lN": np.log(N), "lr": np.log(r)}).groupby("lN", as_index=False)["lr"].mean()
        self.lN, self.lr = df["lN"].to_numpy(), df["lr"].to_numpy()
        self.identity = bool(np.allclose(self.lr, 0.0, atol=1e-9))
        self.power = None
        if (np.exp(self.lr) > 1 + 1e-9).all() and len(self.lN) >= 2:
            slope, icpt = np.polyfit(self.lN, np.log(np.expm1(self.lr)), 1)
            self.power = (float(icpt), float(slope))  # log(r - 1) = icpt + slope log N

    def __call__(self, N):
        lN = np.log(np.asarray(N, dtype=float))
        out = np.interp(lN, self.lN, self.lr)
        if self.power is not None:
            icpt, slope = self.power
            outside = (lN < self.lN[0]) | (lN > self.lN[-1])
            out = np.where(outside, np.log1p(np.exp(icpt + slope * lN)), out)
        return np.exp(out)

    def describe(self) -> str:
        lo, hi = np.exp(self.lr[0]), np.exp(self.lr[-1])
        how = ("r - 1 extrapolated as a power law of N" if self.power is not None
               else "r held at the nearest run's value")
        return (f"C / 6ND runs from {lo:.3f} (smallest run) to {hi:.3f} (largest run); beyond the sweep's sizes "
                f"{how}")


class InConvention:
    """A fit whose ``compute_optimal`` assumes C = 6ND, answering in the sweep's own FLOP convention instead:
    ``compute_optimal(C)`` returns the allocation whose FLOPs under that convention, 6 N D r(N), equal C. Every
    other attribute is the fit's own."""

    def __init__(self, fit, ratio: SixNDRatio):
        self.fit, self.ratio = fit, ratio

    def compute_optimal(self, C):
        C = np.asarray(C, dtype=float)
        c6 = C / self.ratio(self.fit.compute_optimal(C).N_opt)
        for _ in range(30):  # fixed point of c6 = C / r(N_opt(c6)); r varies slowly with N, so this settles fast
            new = C / self.ratio(self.fit.compute_optimal(c6).N_opt)
            done = np.allclose(new, c6, rtol=1e-10)
            c6 = new
            if done:
                break
        a = self.fit.compute_optimal(c6)
        from analysis.fit import Allocation

        return Allocation.of(C, a.N_opt, a.D_opt, a.loss)

    def __getattr__(self, name):
        if name in ("fit", "ratio") or name.startswith("__"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.fit, name)

    def __repr__(self) -> str:
        return f"InConvention({self.fit!r})"


class _FitInConvention:
    """Picklable ``lambda df: InConvention(fit_fn(df, **kw), ratio)`` for backtests of Approach 3 / Kaplan."""

    def __init__(self, fit_fn, ratio):
        self.fit_fn, self.ratio = fit_fn, ratio

    def __call__(self, df, **kw):
        return InConvention(self.fit_fn(df, **kw), self.ratio)


# ---------------------------------------------------------------------------------------------------------------
# the analysis, in memory


@dataclass
class Analysis:
    """Everything ``write_report`` puts in a report. ``fits[key]`` is None when ``notes[key]`` says why."""

    source: str
    runs: pd.DataFrame
    curves: pd.DataFrame | None
    scan: pd.DataFrame  # every run directory, usable or not, with the reason
    budgets: tuple[float, ...]  # budgets to predict at
    c_range: tuple[float, float]  # compute range the figures span
    n_boot: int
    seed: int
    level: float
    fits: dict = field(default_factory=dict)  # key -> fit result, as fitted
    allocators: dict = field(default_factory=dict)  # key -> object whose compute_optimal(C) takes C as loaded
    ratio: SixNDRatio | None = None  # C / 6ND of the runs; None when C is 6ND
    boots: dict = field(default_factory=dict)  # key -> BootstrapResult
    bands: dict = field(default_factory=dict)  # key -> DataFrame(quantity, C, lo, hi)
    backtests: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)  # key -> why a step is missing or what to watch out for

    @property
    def flops_convention(self) -> str:
        return self.runs.attrs.get("flops_convention", "unknown")

    @property
    def params_convention(self) -> str:
        return self.runs.attrs.get("params_convention", "unknown")

    def predictions(self, budget: float) -> pd.DataFrame:
        """N_opt, D_opt, tokens per parameter and loss at ``budget`` under each fitted approach (with bootstrap
        interval columns ``<q>_lo``/``<q>_hi``, NaN unless ``budget`` is one of ``self.budgets``, the budgets that
        were bootstrapped) and under each published law (no intervals)."""
        rows = []
        for key in APPROACHES:
            fit = self.allocators.get(key)
            if fit is None:
                continue
            try:
                a = fit.compute_optimal(budget)
            except Exception as e:  # an approach that cannot allocate (e.g. a Kaplan form without L(C))
                self.notes.setdefault(f"{key}_predict", f"{type(e).__name__}: {e}")
                continue
            row = dict(source=plots.APPROACH_LABELS[key], kind="this sweep", N_opt=a.N_opt, D_opt=a.D_opt,
                       tokens_per_param=a.D_opt / a.N_opt, loss=_num(getattr(a, "loss", np.nan)))
            iv = _intervals(self.boots.get(key))
            for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
                lo, hi = iv.get(_qname(q, budget), (np.nan, np.nan))
                row[f"{q}_lo"], row[f"{q}_hi"] = lo, hi
            rows.append(row)
        for name, law in _published().items():
            try:
                a = law.compute_optimal(budget)
            except Exception as e:
                self.notes.setdefault(f"published_{name}", f"{type(e).__name__}: {e}")
                continue
            rows.append(dict(source=plots.published_label(name), kind="published", N_opt=a.N_opt, D_opt=a.D_opt,
                             tokens_per_param=a.D_opt / a.N_opt, loss=_num(getattr(a, "loss", np.nan))))
        return pd.DataFrame(rows)


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return float("nan")


def _published() -> dict:
    from analysis.laws import PUBLISHED  # imports analysis.fit (scipy): only when a report is being made

    return PUBLISHED


def _qname(q: str, budget: float) -> str:
    return f"{q}@{budget:.3e}"


def _intervals(boot) -> dict:
    """quantity -> (lo, hi) from a BootstrapResult."""
    if boot is None:
        return {}
    iv = boot.intervals
    return {r.quantity: (float(r.lo), float(r.hi)) for r in iv.itertuples()}


class _AllocationQuantities:
    """What is bootstrapped for every approach: N_opt, D_opt, tokens per parameter and loss at each prediction
    budget and at each point of the band grid, plus the result's own parameters (exponents, E, ...). A class, not a
    lambda, so that bootstrap workers in other processes can unpickle it."""

    def __init__(self, budgets, grid, ratio: SixNDRatio | None = None):
        self.cs = np.concatenate([np.asarray(budgets, float), np.asarray(grid, float)])
        self.ratio = ratio

    def __call__(self, fit) -> dict:
        a = (InConvention(fit, self.ratio) if self.ratio is not None else fit).compute_optimal(self.cs)
        out = {}
        for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            v = np.broadcast_to(np.asarray(getattr(a, q, np.nan), dtype=float), self.cs.shape)
            out.update({_qname(q, c): float(x) for c, x in zip(self.cs, v)})
        if hasattr(fit, "default_quantities"):
            out.update({k: _num(v) for k, v in fit.default_quantities().items()})
        return out


def _bands(boot, grid) -> pd.DataFrame:
    iv = _intervals(boot)
    rows = []
    for q in ("N_opt", "D_opt"):
        for c in grid:
            lo, hi = iv.get(_qname(q, c), (np.nan, np.nan))
            if np.isfinite(lo) and np.isfinite(hi):
                rows.append(dict(quantity=q, C=c, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=["quantity", "C", "lo", "hi"])


def _attempt(an: Analysis, key: str, what: str, fn, *args, **kw):
    """``fn(*args, **kw)``, or None with ``an.notes[key]`` saying why. Warnings the fit raises (a budget skipped,
    a minimum outside the sampled range) are kept in the notes too, not printed."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = fn(*args, **kw)
        except Exception as e:
            an.notes[key] = f"{what}: {type(e).__name__}: {e}"
            out = None
    msgs = list(dict.fromkeys(str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)
                              and not issubclass(w.category, RuntimeWarning)))
    if msgs:
        k = key if key not in an.notes else f"{key}_warnings"
        an.notes[k] = (an.notes.get(k, "") + " " if k in an.notes else "") + "; ".join(msgs)
    return out


def _doubts(key: str, fit) -> str | None:
    """A plain-words warning when a fit converged to something the data cannot support."""
    if key == "approach3":
        bits = []
        if not (0 < fit.alpha < 2 and 0 < fit.beta < 2):
            bits.append(f"α = {fit.alpha:.3g}, β = {fit.beta:.3g} lie outside (0, 2), the range of the starting grid "
                        "and of every published fit")
        if fit.E < 1e-3:
            bits.append(f"E = {fit.E:.3g}: no irreducible loss")
        if not fit.converged:
            bits.append(f"L-BFGS did not converge ({fit.message})")
        if bits:
            return ("the parametric law is poorly constrained by these runs (" + "; ".join(bits) + "): its "
                    "allocation and loss predictions should not be trusted; add sizes and budgets")
    if key in ("approach1", "approach2") and not 0 < fit.a < 1:
        return f"N_opt ∝ C^{fit.a:.3g}: an exponent outside (0, 1) means the sweep does not bracket the optimum"
    return None


def _default_budgets(runs: pd.DataFrame) -> tuple[float, ...]:
    """Predict one and two decades beyond the sweep's largest budget, where an extrapolation is still useful."""
    top = np.nanmax(runs["budget"]) if runs["budget"].notna().any() else runs["C"].max()
    return (float(f"{top * 10:.1e}"), float(f"{top * 100:.1e}"))


def analyse(sweep_dir, *, flops: str = load.DEFAULT_FLOPS, params: str = load.DEFAULT_PARAMS,
            n_boot: int = DEFAULT_N_BOOT, seed: int = 0, budgets=None, level: float = DEFAULT_LEVEL,
            grid="full", n_jobs: int | None = None, approaches=APPROACHES, backtests: bool = True) -> Analysis:
    """Load ``sweep_dir`` and fit, bootstrap and backtest every approach that this sweep supports.

    ``budgets``: compute budgets (FLOPs) to predict at; default one and two decades above the largest budget.
    ``n_boot`` bootstrap resamples (0 skips the bootstrap), ``seed`` makes them reproducible, ``level`` is the
    interval's coverage. ``grid`` is Approach 3's grid of starts ("full", "small" or an array). ``approaches`` picks
    which fits to make; ``backtests=False`` skips the backtests.
    """
    from analysis import fit as F  # the fits import scipy; keep `import analysis.report` light for --help

    if n_boot < 0 or n_boot == 1:
        raise ValueError(f"argument n_boot={n_boot}: must be 0 (no bootstrap) or at least 2 resamples")
    if not 0 < level < 1:
        raise ValueError(f"argument level={level}: must be strictly between 0 and 1")
    unknown = set(approaches) - set(APPROACHES)
    if unknown:
        raise ValueError(f"argument approaches={sorted(unknown)}: each must be one of {APPROACHES}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", load.RunExcludedWarning)
        runs = load.load_runs(sweep_dir, flops=flops, params=params)
        try:
            curves = load.load_curves(sweep_dir, flops=flops, params=params)
        except (ValueError, FileNotFoundError):
            curves = None
    for w in caught:  # pass exclusions on to the caller once, not twice (runs and curves both warn)
        if w.category is not load.RunExcludedWarning:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    seen = set()
    for w in caught:
        if w.category is load.RunExcludedWarning and str(w.message) not in seen:
            seen.add(str(w.message))
            warnings.warn(str(w.message), load.RunExcludedWarning, stacklevel=2)
    scan = load.scan_runs(sweep_dir, flops=flops, params=params)

    budgets = tuple(float(b) for b in (budgets if budgets is not None else _default_budgets(runs)))
    for b in budgets:
        if not (np.isfinite(b) and b > 0):
            raise ValueError(f"argument budgets: {b!r} is not a positive number of FLOPs")
    c_lo = float(runs["C"].min()) / 3
    c_hi = float(max(runs["C"].max(), max(budgets))) * 3
    grid_c = np.geomspace(c_lo, c_hi, BAND_POINTS)
    an = Analysis(source=str(sweep_dir), runs=runs, curves=curves, scan=scan, budgets=budgets,
                  c_range=(c_lo, c_hi), n_boot=n_boot, seed=seed, level=level)

    # fit function, its data, bootstrap keywords. Functions are passed to bootstrap as themselves (not wrapped in a
    # lambda) so it can warm-start Approach 3's resamples from the full-data optimum.
    a3_fn = F.fit_approach3 if isinstance(grid, str) and grid == "full" else functools.partial(F.fit_approach3,
                                                                                                 grid=grid)
    plan = {
        "approach1": (F.fit_approach1, curves, {}),  # resamples whole runs (the result's resample_group)
        "approach2": (F.fit_approach2, runs, {"strata_col": "budget"}),  # every budget keeps its run count
        "approach3": (a3_fn, runs, {}),
        "kaplan": (F.fit_kaplan, runs, {}),
    }
    ratio = SixNDRatio(runs["N"], runs["D"], runs["C"])
    an.ratio = None if ratio.identity else ratio
    for key in approaches:
        fn, data, boot_kw = plan[key]
        convert = an.ratio if key in ("approach3", "kaplan") else None
        if data is None:
            an.fits[key], an.notes[key] = None, "no training curves could be read (metrics.parquet)"
            continue
        an.fits[key] = _attempt(an, key, "not fitted", fn, data)
        if an.fits[key] is None:
            continue
        an.allocators[key] = InConvention(an.fits[key], convert) if convert is not None else an.fits[key]
        doubt = _doubts(key, an.fits[key])
        if doubt:
            an.notes[f"{key}_doubt"] = doubt
        quantities = _AllocationQuantities(budgets, grid_c, convert)
        if n_boot:
            kw = dict(n_resamples=n_boot, seed=seed, quantities=quantities, level=level, n_jobs=n_jobs, **boot_kw)
            an.boots[key] = _attempt(an, f"{key}_bootstrap", "bootstrap failed", F.bootstrap, fn, data, **kw)
            if an.boots[key] is not None:
                an.bands[key] = _bands(an.boots[key], grid_c)
                failed = an.boots[key].n_failed
                if failed == n_boot:
                    an.notes[f"{key}_bootstrap"] = f"all {n_boot} resamples failed to fit: no intervals"
                elif failed:
                    an.notes[f"{key}_bootstrap"] = (f"{failed} of {n_boot} resamples could not be fitted; intervals "
                                                    "use the rest")
            else:
                del an.boots[key]
        if backtests:
            kw = {"curves": curves} if key == "approach1" else {}
            bt_fn = _FitInConvention(fn, convert) if convert is not None else fn
            bt = _attempt(an, f"{key}_backtest", "backtest not possible", F.backtest, bt_fn, runs, **kw)
            if bt is not None:
                an.backtests[key] = bt
    return an


# ---------------------------------------------------------------------------------------------------------------
# figures


FIGURES = ("isoflop", "optimal_allocation", "loss_vs_compute", "loss_contours", "residuals")


def make_figures(an: Analysis) -> dict:
    """name -> Figure for every figure this analysis can draw; a figure that needs a missing fit is skipped (and
    ``an.notes`` says so)."""
    figs = {}
    a1, a2, a3 = (an.fits.get(k) for k in ("approach1", "approach2", "approach3"))
    figs["isoflop"] = plots.isoflop(an.runs, a2)
    figs["optimal_allocation"] = plots.optimal_allocation(
        {k: an.allocators.get(k) for k in ("approach1", "approach2", "approach3")}, bands=an.bands, published=_published(), per_budget=getattr(a2, "per_budget", None),
        c_range=an.c_range, targets=an.budgets, runs=an.runs)
    if an.curves is not None:
        figs["loss_vs_compute"] = plots.loss_vs_compute(an.curves, a1, an.allocators.get("approach3"))
    else:
        an.notes["figure_loss_vs_compute"] = "not drawn: no training curves"
    if a3 is not None:
        figs["loss_contours"] = plots.loss_contours(an.runs, a3, targets=an.budgets)
    else:
        an.notes["figure_loss_contours"] = "not drawn: needs the Approach 3 fit"
    figs["residuals"] = plots.residuals(an.runs, {k: an.fits.get(k) for k in ("approach2", "approach3", "kaplan")})
    return figs


def write_figures(an: Analysis, out_dir) -> list[Path]:
    paths = []
    for name, fig in make_figures(an).items():
        paths += plots.save(fig, out_dir, name)
    return paths


# ---------------------------------------------------------------------------------------------------------------
# markdown


def fmt(x, kind: str = "sci") -> str:
    """Table formatting: "sci" for counts and FLOPs, "loss" for losses, "exp" for exponents, "pct" for errors."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, str):
        return x
    x = float(x)
    if kind == "sci":
        return plots.sci(x, 3)
    if kind == "loss":
        return f"{x:.4f}"
    if kind == "exp":
        return f"{x:.3f}"
    if kind == "pct":
        return f"{100 * x:+.1f}%"
    if kind == "int":
        return f"{x:,.0f}"
    return plots.sci(x, 3) if x != 0 and not 1e-3 <= abs(x) < 1e4 else f"{x:.4g}"


def md_table(rows: list[list], header: list[str]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _with_interval(est, lo, hi, kind="sci") -> str:
    if lo is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return fmt(est, kind)
    return f"{fmt(est, kind)} [{fmt(lo, kind)}, {fmt(hi, kind)}]"


def _runs_section(an: Analysis) -> str:
    r = an.runs
    rows = [[x.run_id, fmt(x.budget), fmt(x.N), fmt(x.D), fmt(x.C), fmt(x.tokens_per_param, "g"),
             fmt(x.loss, "loss"), fmt(getattr(x, "wall_seconds", np.nan), "int")] for x in r.itertuples()]
    out = [f"{len(r)} runs used. N: {an.params_convention.replace('_', '-')} parameters; "
           f"C: training FLOPs under the '{an.flops_convention}' convention.", "",
           md_table(rows, ["run", "budget (FLOPs)", "N", "D (tokens)", "C (FLOPs)", "tokens/param",
                           "final val loss", "wall s"])]
    bad = an.scan[~an.scan["usable"]]
    if len(bad):
        out += ["", f"{len(bad)} run directories left out:", "",
                md_table([[b.run_id, b.status, b.reason] for b in bad.itertuples()], ["run", "status", "reason"])]
    return "\n".join(out)


def _isoflop_section(an: Analysis) -> str:
    a2 = an.fits.get("approach2")
    if a2 is None:
        return f"No IsoFLOP fit: {an.notes.get('approach2', 'not run')}."
    rows = [[fmt(p.budget), fmt(p.C), fmt(p.N_opt), fmt(p.D_opt), fmt(p.D_opt / p.N_opt, "g"),
             fmt(p.loss_opt, "loss"), fmt(bool(p.inside)), fmt(p.curvature, "g")]
            for p in a2.per_budget.sort_values("C").itertuples()]
    text = md_table(rows, ["budget", "C", "N_opt", "D_opt", "tokens/param", "loss at minimum", "minimum inside range",
                           "curvature"])
    if not a2.per_budget["inside"].astype(bool).all():
        text += ("\n\nA minimum outside the sampled N range is an extrapolation of that budget's parabola; add sizes "
                 "on that side before trusting it.")
    return text


# rows of each approach's fit table: (attribute path on the result, name of its bootstrapped quantity in the
# result's default_quantities() or None, label, format)
_POWER_LAW_ROWS = [("n_opt.exponent", "a", "a (N_opt ∝ C^a)", "exp"), ("d_opt.exponent", "b", "b (D_opt ∝ C^b)", "exp"),
                   ("n_opt.coef", None, "N_opt coefficient", "g"), ("d_opt.coef", None, "D_opt coefficient", "g")]
_FIT_PARAMS = {
    "approach1": _POWER_LAW_ROWS,
    "approach2": _POWER_LAW_ROWS,
    "approach3": [("E", "E", "E (irreducible loss)", "loss"), ("A", "A", "A", "g"), ("B", "B", "B", "g"),
                  ("alpha", "alpha", "α", "exp"), ("beta", "beta", "β", "exp"), ("a", "a", "a = β/(α+β)", "exp"),
                  ("b", "b", "b = α/(α+β)", "exp")],
    "kaplan": [("alpha_N", "alpha_N", "α_N (L(N, D), eq. 1.5)", "exp"), ("alpha_D", "alpha_D", "α_D", "exp"),
               ("N_c", "N_c", "N_c", "sci"), ("D_c", "D_c", "D_c", "sci"), ("E", "E", "E (offset)", "loss"),
               ("a", "a", "a = α_D/(α_N+α_D)", "exp"), ("l_c.alpha", "alpha_C", "α_C (L(C) envelope)", "exp")],
}


def _getpath(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _fits_section(an: Analysis, keys=APPROACHES) -> str:
    out = []
    lvl = f"{100 * an.level:.0f}%"
    for key in keys:
        fit = an.fits.get(key)
        out += [f"### {plots.APPROACH_LABELS[key]}", ""]
        if fit is None:
            out += [f"Not available: {an.notes.get(key, 'not run')}", ""]
            continue
        boot = an.boots.get(key)
        rows = []
        iv = _intervals(boot)
        for path, quantity, label, kind in _FIT_PARAMS[key]:
            v = _getpath(fit, path)
            if v is None:
                continue
            rows.append([label, _with_interval(v, *iv.get(quantity, (np.nan, np.nan)), kind)])
        if rows:
            out += [md_table(rows, ["parameter", f"estimate [{lvl} interval]" if boot else "estimate"]), ""]
        if boot is None and an.n_boot:
            out += [f"Bootstrap: {an.notes.get(key + '_bootstrap', 'not run')}", ""]
        conv = _convergence(fit)
        if conv:
            out += [conv, ""]
    return "\n".join(out)


def _convergence(fit) -> str:
    bits = []
    for k in ("converged", "n_starts", "huber_loss", "rmse_log", "n_points", "n_runs", "n_budgets_used"):
        v = getattr(fit, k, None)
        if v is not None and not callable(v):
            bits.append(f"{k} = {fmt(v, 'g') if not isinstance(v, bool) else v}")
    return ("Fit: " + ", ".join(bits) + ".") if bits else ""


def _predictions_section(an: Analysis) -> str:
    out = []
    lvl = f"{100 * an.level:.0f}%"
    for b in an.budgets:
        p = an.predictions(b)
        out += [f"### C = {plots.sci(b, 3)} FLOPs", ""]
        if p.empty:
            out += ["No approach could predict.", ""]
            continue
        rows = []
        for r in p.itertuples():
            iv = lambda q, kind: _with_interval(getattr(r, q), getattr(r, f"{q}_lo", np.nan),
                                                getattr(r, f"{q}_hi", np.nan), kind)
            rows.append([r.source, iv("N_opt", "sci"), iv("D_opt", "sci"), iv("tokens_per_param", "g"),
                         iv("loss", "loss")])
        out += [md_table(rows, ["", "N_opt", "D_opt (tokens)", "tokens/param", "loss"]), ""]
    out += [f"Intervals: {lvl} bootstrap percentile intervals over {an.n_boot} resamples of runs (seed {an.seed}). "
            "Published laws are quoted from their papers, under their own FLOP and parameter conventions (mostly "
            "C ≈ 6ND, non-embedding or total parameters as each paper used), so compare slopes more than offsets."]
    return "\n".join(out)


def _backtest_section(an: Analysis) -> str:
    if not an.backtests:
        why = "; ".join(f"{k.replace('_backtest', '')}: {v}" for k, v in an.notes.items() if k.endswith("_backtest"))
        return f"No backtest: {why or 'not run'}."
    rows = []
    for key, bt in an.backtests.items():
        rows.append([plots.APPROACH_LABELS[key], fmt(bt.holdout_budget), f"{bt.n_train_runs} / {bt.n_holdout_runs}",
                     fmt(bt.predicted.N_opt), fmt(bt.observed.N_opt), fmt(bt.rel_err_N, "pct"),
                     fmt(bt.predicted.D_opt), fmt(bt.observed.D_opt), fmt(bt.rel_err_D, "pct"),
                     fmt(bt.predicted.loss, "loss"), fmt(bt.observed.loss, "loss"), fmt(bt.rel_err_loss, "pct")])
    text = ("Each approach refitted without the largest budget, then asked for that budget's optimum. 'Observed' is "
            "the held-out budget's own IsoFLOP minimum; errors are predicted / observed - 1.\n\n"
            + md_table(rows, ["", "held-out budget", "runs fit / held out", "N_opt predicted", "N_opt observed",
                              "N_opt error", "D_opt predicted", "D_opt observed", "D_opt error", "loss predicted",
                              "loss observed", "loss error"]))
    if any(not bt.observed_inside for bt in an.backtests.values()):
        text += ("\n\nThe held-out budget's observed minimum lies outside its sampled N: the 'observed' optimum is "
                 "itself an extrapolation.")
    return text


def _local_exponents(law, C: float) -> tuple[float, float]:
    """d log N_opt / d log C and d log D_opt / d log C of any allocation law at C (a central difference)."""
    lo, hi = law.compute_optimal(C / 1.1), law.compute_optimal(C * 1.1)
    step = 2 * math.log(1.1)
    return (math.log(hi.N_opt / lo.N_opt) / step, math.log(hi.D_opt / lo.D_opt) / step)


def _exponent_pair(fit) -> tuple[float, float]:
    a, b = getattr(fit, "a", np.nan), getattr(fit, "b", None)
    if b is None:  # Kaplan's joint law: D_opt = C / (6 N_opt), so b = 1 - a
        b = 1 - a
    return float(a), float(b)


def _published_section(an: Analysis) -> str:
    """Exponents and tokens per parameter of each fit beside each published law, with conventions and sources."""
    b0 = an.budgets[0]
    lvl = f"{100 * an.level:.0f}%"
    rows = []
    for key in APPROACHES:
        fit, alloc = an.fits.get(key), an.allocators.get(key)
        if fit is None:
            continue
        iv = _intervals(an.boots.get(key))
        a, b = _exponent_pair(fit)
        tpp = alloc.compute_optimal(b0).tokens_per_param
        rows.append([plots.APPROACH_LABELS[key] + ", this sweep",
                     _with_interval(a, *iv.get("a", (None, None)), "exp"),
                     _with_interval(b, *iv.get("b", (None, None)), "exp"),
                     _with_interval(tpp, *iv.get(_qname("tokens_per_param", b0), (None, None)), "g"),
                     f"{an.flops_convention} / {an.params_convention}"])
    for name, law in _published().items():
        try:
            a, b = _local_exponents(law, b0)
            tpp = law.compute_optimal(b0).tokens_per_param
        except Exception as e:
            rows.append([plots.published_label(name), f"not evaluable: {e}", "", "", ""])
            continue
        rows.append([plots.published_label(name), fmt(a, "exp"), fmt(b, "exp"), fmt(tpp, "g"),
                     f"{getattr(law, 'flops_convention', '?')} / {getattr(law, 'params_convention', '?')}"])
    out = [f"a and b: exponents of N_opt ∝ C^a and D_opt ∝ C^b ({lvl} bootstrap intervals for this sweep's fits; "
           f"for published laws the local slope at C = {plots.sci(b0, 3)}). Tokens per parameter at "
           f"C = {plots.sci(b0, 3)} FLOPs. Published laws count FLOPs and parameters their own way (last column), so "
           "compare exponents more than levels.", "",
           md_table(rows, ["", "a", "b", "tokens/param", "FLOPs / params convention"])]
    srcs = [[plots.published_label(name), getattr(law, "source", "")] for name, law in _published().items()]
    if srcs:
        out += ["", "Sources:", "", md_table(srcs, ["law", "source"])]
    return "\n".join(out)


def _summary_section(an: Analysis) -> str:
    lines = []
    b = an.budgets[0]
    p = an.predictions(b)
    mine = p[p["kind"] == "this sweep"] if len(p) else p
    if len(mine):
        lines.append(f"At C = {plots.sci(b, 3)} FLOPs:")
        lines.append("")
        for r in mine.itertuples():
            lines.append(f"- **{r.source}**: N_opt = {_with_interval(r.N_opt, r.N_opt_lo, r.N_opt_hi)}, "
                         f"D_opt = {_with_interval(r.D_opt, r.D_opt_lo, r.D_opt_hi)} tokens "
                         f"({fmt(r.tokens_per_param, 'g')} tokens/param)"
                         + (f", loss {fmt(r.loss, 'loss')}" if np.isfinite(r.loss) else ""))
    else:
        lines.append("No approach could be fitted on this sweep; see Notes.")
    exps = []
    for key in ("approach1", "approach2", "approach3"):
        fit = an.fits.get(key)
        e = plots._exponent(fit, "N_opt") if fit is not None else None
        if e is not None:
            exps.append(f"{plots.APPROACH_LABELS[key]} a = {e:.3f}")
    if exps:
        lines += ["", "Exponent of N_opt ∝ C^a: " + "; ".join(exps)
                  + " (Hoffmann et al. 2022: 0.50, 0.49, 0.46 for Approaches 1, 2, 3; Kaplan et al. 2020: 0.73)."]
    return "\n".join(lines)


def _notes_section(an: Analysis) -> str:
    if not an.notes:
        return "None: every fit, bootstrap, backtest and figure was made."
    return "\n".join(f"- **{k}**: {v}" for k, v in an.notes.items())


_FIGURE_CAPTIONS = {
    "isoflop": "IsoFLOP curves: final loss against N at each budget, with Approach 2's parabolas (in log N) and "
               "their minima.",
    "optimal_allocation": "Compute-optimal N and D against C: each approach's power law with its bootstrap band, "
                          "the IsoFLOP minima, and the published laws (dashed). Vertical lines: prediction budgets.",
    "loss_vs_compute": "Every training curve (validation loss against cumulative FLOPs, coloured by N), the "
                       "frontier Approach 1 fits, and the compute-optimal loss of Approach 3.",
    "loss_contours": "Approach 3's L(N, D) with the runs on the same colour scale, the IsoFLOP lines and the "
                     "efficient frontier.",
    "residuals": "Observed / predicted - 1 for each fit that predicts a run's loss.",
}


def render_markdown(an: Analysis, figure_names=()) -> str:
    name = Path(an.source).name
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    head = [f"# Scaling-law report: {name}", "",
            f"Source `{an.source}`, written {now}. FLOPs convention `{an.flops_convention}`, parameter convention "
            f"`{an.params_convention}`; bootstrap {an.n_boot} resamples, seed {an.seed}, "
            f"{100 * an.level:.0f}% intervals. Losses in nats/token.", ""]
    if an.ratio is not None:
        head += [f"Approach 3 and Kaplan allocate under C = 6ND; their predictions here are converted to the "
                 f"'{an.flops_convention}' FLOPs of this sweep through the runs' own ratio ({an.ratio.describe()}).",
                 ""]
    sections = [
        ("Summary", _summary_section(an)),
        ("Runs", _runs_section(an)),
        ("IsoFLOP minima (Approach 2)", _isoflop_section(an)),
        ("Fits", _fits_section(an)),
        ("Predictions", _predictions_section(an)),
        ("Backtest", _backtest_section(an)),
        ("Comparison to published laws", _published_section(an)),
    ]
    if figure_names:
        figs = []
        for f in figure_names:
            figs += [f"### {f.replace('_', ' ')}", "", _FIGURE_CAPTIONS.get(f, ""), "",
                     f"![{f}]({f}.png)", f"([SVG]({f}.svg))", ""]
        sections.append(("Figures", "\n".join(figs)))
    sections.append(("Notes", _notes_section(an)))
    body = []
    for title, text in sections:
        body += [f"## {title}", "", text.rstrip(), ""]
    return "\n".join(head + body)


def write_report(sweep_dir, out_dir=None, *, n_boot: int = DEFAULT_N_BOOT, seed: int = 0, budgets=None,
                 flops: str = load.DEFAULT_FLOPS, params: str = load.DEFAULT_PARAMS, level: float = DEFAULT_LEVEL,
                 grid="full", n_jobs: int | None = None) -> Path:
    """Analyse ``sweep_dir`` and write ``report.md``, ``runs.csv`` and every figure (PNG and SVG) into ``out_dir``
    (default ``<sweep_dir>/report``). Returns the path of report.md."""
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    an = analyse(sweep_dir, flops=flops, params=params, n_boot=n_boot, seed=seed, budgets=budgets, level=level,
                 grid=grid, n_jobs=n_jobs)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for name, fig in make_figures(an).items():
        plots.save(fig, out_dir, name)
        names.append(name)
    an.runs.to_csv(out_dir / "runs.csv", index=False)
    from scaling.records import write_text_atomic

    path = out_dir / "report.md"
    write_text_atomic(path, render_markdown(an, names))
    return path
