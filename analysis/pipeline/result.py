"""What ``analyse`` returns: the ``Analysis`` value, and the views of it every caller shares (the prediction table
at a budget, the intervals the report shows for each fit, which interval Approach 2 carries in words)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.sections import Sections

if TYPE_CHECKING:  # types only
    from analysis.laws.conventions import FamilyRatio, InConvention, SixNDRatio
    from analysis.laws.protocol import FitResult
    from analysis.uncertainty.backtests import RollingBacktest
    from analysis.uncertainty.calibration import Calibration
    from analysis.uncertainty.intervals import PowerLawInterval
    from analysis.uncertainty.resampling import BootstrapResult
    from analysis.uncertainty.robustness import ConventionTable
    from analysis.uncertainty.truth import TruthCheck


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
            loss=num(a.loss),
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
                loss=num(a.loss),
            )
        )
    return pd.DataFrame(rows), notes


def num(x) -> float:
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
    """quantity -> (lo, hi) the report shows for fit ``key``: the run bootstrap, except where a calibrated interval
    of a and N_opt is carried (Approach 2's from its line, ``an.a2.interval``; Approach 3's or Kaplan's from
    ``an.law_calibrations``): then D_opt, tokens per parameter and b follow it (``follow_n_opt``), so the
    allocation's intervals describe one estimate."""
    iv = intervals(an.boots.get(key))
    cal = an.law_calibrations.get(key)
    replaced = False
    if cal is not None and iv:
        fit = an.allocators[key]
        est = {"a": float(an.fits[key].a)}  # type: ignore[union-attr]
        est.update({qname("N_opt", b): float(np.asarray(fit.compute_optimal(b).N_opt)) for b in an.budgets})
        iv, replaced = cal.apply(iv, est), getattr(cal, "carried", "runs") != "runs"
    if key == "approach2" and an.a2.interval is not None:
        from analysis.uncertainty.intervals import n_opt_name

        t = an.a2.interval
        iv["a"] = t.interval("a")
        for b in an.budgets:
            iv[qname("N_opt", b)] = t.interval(n_opt_name(b))
        replaced = True
    if replaced:
        follow_n_opt(iv, an.allocators[key], an.budgets, an.fits[key], an.conversion.ratio)
    return iv


def follow_n_opt(iv: dict, allocator, budgets, fit, ratio=None) -> None:
    """D_opt, tokens per parameter and b in ``iv`` made to follow its intervals of N_opt and a (in place). At a
    fixed budget C = 6 N D r(N) (``ratio``: the sweep's C / 6ND, None for 1), so N_opt's interval [lo, hi] is D_opt's
    [d(hi), d(lo)] with d(N) = D* N* r(N*) / (N r(N)) about the fit's own N*, D*, and tokens per parameter's
    [d(hi)/hi, d(lo)/lo]; and b = 1 - a, so b's interval mirrors a's about the estimates (exact for Approach 3 and
    Kaplan, whose a + b = 1; Approach 2 fits b on its own line)."""
    for c in budgets:
        n_iv = iv.get(qname("N_opt", c))
        if n_iv is None or not np.all(np.isfinite(n_iv)):
            continue
        al = allocator.compute_optimal(c)
        n, d = float(np.asarray(al.N_opt)), float(np.asarray(al.D_opt))
        lo, hi = n_iv
        d_lo, d_hi = (float(v) for v in tokens_at(n, d, np.array([hi, lo]), ratio))
        iv[qname("D_opt", c)] = (d_lo, d_hi)
        iv[qname("tokens_per_param", c)] = (d_lo / hi, d_hi / lo)
    a, b = getattr(fit, "a", None), getattr(fit, "b", None)
    if a is not None and b is not None and "a" in iv and "b" in iv:
        lo, hi = iv["a"]
        iv["b"] = (float(b) - (hi - float(a)), float(b) + (float(a) - lo))


def tokens_at(n_star: float, d_star: float, N, ratio=None) -> np.ndarray:
    """D at sizes ``N`` on the budget of the allocation (N*, D*): C = 6 N D r(N) held fixed, r = ``ratio`` (None: 1)."""
    N = np.asarray(N, dtype=float)
    if ratio is None:
        return d_star * n_star / N
    return d_star * n_star * np.asarray(ratio(np.asarray([n_star]))).ravel()[0] / (N * np.asarray(ratio(N)))


def n_stalled(an: Analysis) -> int:
    """How many runs the quality gate left out as stalled (the simulated sweeps of the calibrations reproduce them)."""
    reason = an.scan["reason"].astype(str) if "reason" in an.scan.columns else pd.Series(dtype=str)
    return int(reason.str.startswith("quality gate (stalled)").sum())


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


def bands(boot, grid) -> pd.DataFrame:
    iv = intervals(boot)
    rows = []
    for q in ("N_opt", "D_opt"):
        for c in grid:
            lo, hi = iv.get(qname(q, c), (np.nan, np.nan))
            if np.isfinite(lo) and np.isfinite(hi):
                rows.append(dict(quantity=q, C=c, lo=lo, hi=hi))
    return pd.DataFrame(rows, columns=["quantity", "C", "lo", "hi"])


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
