"""Per-sweep calibration of Approach 2's intervals (issue 20): simulate this sweep's exact design from its own fit
and noise, and carry the narrowest interval method that covers 90% there, or the Student-t interval widened by the
factor the simulation says it needs.

Whether the t interval of the line through the budgets' minima (``analysis.uncertainty.intervals``, scheme "t")
covers its nominal level depends on the design: sizes a budget, their centring and span, the noise, the rate of
runs that end far above their neighbours, and which minima estimator the report uses. The harness knows the design
exactly, so ``calibrate_approach2`` checks it:

1. **Generator.** Each budget's IsoFLOP curve has the shape of the sweep's own Approach 3 law (in u = ln N - ln N*, L
   = m_b (e^(-αu)/α + e^(βu)/β) + const, the sum of two exponentials that L = E + A/N^α + B/D^β gives at fixed N·D,
   with m_b = αA/N*^α from the law at the budget's N·D), centred on the minimum the sweep's Approach 2 line puts there
   (ln N* = c + a ln C). So the simulated truth is exactly the report's line (a and N_opt at every target are known),
   while the curves carry the parametric law's asymmetry and curvature, which is what biases a minimum estimator off
   centre. Without a usable Approach 3 law (not fitted, or an exponent outside (0.02, 3)), a parabola with the median
   curvature of the sweep's per-budget parabolas.
2. **Noise.** Seed spread: a robust scale of the runs' residuals about a parabola in ln N through each budget (1.4826
   · median |r_i / sqrt(1 - h_i)|, h_i the leverage, so the 3 fitted coefficients a budget do not shrink it; repeats
   of a point enter like any run; a kept run more than 3 sd off is left out once). Heavy tail: with probability p a
   run ends U(jump_lo, jump_hi) nats high (default 0.15-0.25, the real CPU sweeps' jumps); p = (k + 1) / (n + 20) from
   the k of n runs the quality gate flagged as stalled, a Beta(1, 19) prior worth 20 runs at the real sweeps' 1 in 20.
3. **Same pipeline.** Every simulated sweep goes through the quality gate's stall rule
   (``analysis.data.quality.stalled_positions``, the rule ``load_runs`` applies) and the report's minima
   estimator; a budget left with fewer than 3 sizes is not used, as in ``fit_approach2``.
4. **Methods** (``METHODS``): "t"; "budgets" (pairs bootstrap of the line's points); "runs" (the run bootstrap,
   resampling runs within each budget and re-estimating every minimum: the interval the report carried before this
   calibration; simulated on ``runs_sims`` sweeps, as it refits every minimum ``runs_resamples`` times a sweep, and
   carried only from ``MIN_SIMS_TO_CARRY`` of them); and "t-widened": the t interval with
   each quantity's half-width multiplied by the factor f that makes it cover ``level`` (ln N for N_opt).
   *Fast double bootstrap* (``double_level``): the simulation's truth is the sweep's own estimated line, so its
   design sits off that truth by the real offset plus the estimate's error, farther off centre on average than the
   real design sits off the real truth; on a noisy off-centre design (cpu45-rough-outliers) the simulated sweeps
   under-covered by 5-7 points where the real ones did not, and the factor over-widened. So each simulated sweep's
   own line is the truth of ONE more simulated sweep (``SimDesign.recentred``), giving errors T2 beside the first
   level's T1 (both |estimate - truth| / t half-width): f = the lambda quantile of T1, lambda = the share of T2 at
   or below T1's ``level`` quantile (``calibrated_level``, as Approach 3's interval), and the coverage shown for
   "t" and "t-widened" is the one the second level predicts for the real sweep (``corrected_coverage``; for
   "t-widened" that is ``level``, or more where the guard holds it). Guard: f is at least min(1, the first level's
   own factor), so the second level can undo a widening the first asks for but not narrow past it or past t: on a
   real CPU sweep whose residuals are size-to-size structure (read as 0.10 nats of seed noise, the simulated
   intervals 4x the real one) it asked for x0.75 where the first level said x0.95.
5. **Choice.** The narrowest method (median ln(hi/lo) at the largest target) without a fitted factor ("t", "budgets",
   "runs") whose simulated coverage is in [level, level + ``TOLERANCE``] for a and every target; when none is,
   "t-widened", which covers ``level`` by construction (``choose`` says why not 88-90% as well). The factor is fitted
   on the same simulated sweeps; on fresh ones it covered within 1-2 points of 90%
   (tests/unit/analysis/uncertainty/test_calibration.py), and against a known truth the whole procedure is checked by
   ``python -m analysis.studies percalibration`` (analysis/README.md).

Cached: ``cache_dir/calibration-<key>.json``, the key a hash of the columns the fit reads (budget, N, D, C, loss, in
a row order that does not matter) and of every setting, so a report on the same runs reuses it and a changed loss
recomputes it.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.fits.minima import DEFAULT_ESTIMATOR
from analysis.uncertainty.double_level import calibrated_level, corrected_coverage
from analysis.uncertainty.intervals import PowerLawInterval, n_opt_name
from analysis.uncertainty.sim_design import SimDesign, sim_design
from analysis.uncertainty.sim_keys import FIT_COLUMNS, VERSION, runs_key, simulation_seed
from analysis.uncertainty.sim_minima import minima, quadratic_case, runs_bootstrap, t_interval
from analysis.uncertainty.sim_noise import JUMP_PRIOR_RUNS, NoiseModel, noise_model, seed_spread

__all__ = [  # the names other modules import from here; the simulation's pieces live in analysis/uncertainty/sim_*.py
    "FIT_COLUMNS",
    "JUMP_PRIOR_RUNS",
    "METHODS",
    "MIN_SIMS_TO_CARRY",
    "SLOW_SIMS",
    "TOLERANCE",
    "VERSION",
    "Calibration",
    "NoiseModel",
    "SimDesign",
    "calibrate_approach2",
    "choose",
    "noise_model",
    "runs_key",
    "seed_spread",
    "sim_design",
    "simulate_t",
    "simulation_seed",
]

METHODS = ("t", "t-widened", "budgets", "runs")
TOLERANCE = 0.02  # a method is "calibrated" when its simulated coverage is within level ± TOLERANCE (88-92% at 90%)
SLOW_SIMS = 200  # simulated sweeps when a budget's minimum is the spline's (its coverage s.e. ~2 points)
MIN_SIMS_TO_CARRY = 100  # a method simulated on fewer sweeps is shown, not carried (coverage s.e. over 3 points)


@dataclass(frozen=True)
class Calibration:
    """What the per-sweep calibration found: the method carried (one of ``METHODS``), the factor each quantity's
    t half-width is multiplied by (1.0 unless "t-widened" is carried), and per (method, quantity) the simulated
    coverage, median ln(hi/lo) (width of a for "a") and number of simulated sweeps (``table``)."""

    carried: str
    factors: dict
    table: pd.DataFrame = field(repr=False)
    noise: NoiseModel
    generator: str
    n_sims: int
    seconds: float
    level: float
    estimator: str
    key: str = ""
    from_cache: bool = False
    skipped: dict = field(default_factory=dict)  # method -> why it was not simulated
    levels: dict = field(default_factory=dict)  # quantity -> the level-1 quantile the factor is (fast double)

    def figures(self, method: str, quantity: str) -> tuple[float, float, int]:
        """(coverage, median width, n sweeps) of ``method`` for ``quantity`` ("a" or ``n_opt_name(C)``)."""
        r = self.table[(self.table["method"] == method) & (self.table["quantity"] == quantity)]
        if r.empty:
            return float("nan"), float("nan"), 0
        return float(r["coverage"].iloc[0]), float(r["median_width"].iloc[0]), int(r["n"].iloc[0])

    def apply(self, t: PowerLawInterval) -> PowerLawInterval:
        """The t interval ``t`` widened by ``factors`` (unchanged when the factor is 1 or unknown for a quantity)."""
        rows = []
        for r in t.intervals.itertuples():
            f = float(self.factors.get(r.quantity, 1.0)) if self.carried == "t-widened" else 1.0
            if r.quantity == "a":
                mid, half = r.estimate, (r.hi - r.lo) / 2
                rows.append((r.quantity, r.estimate, mid - f * half, mid + f * half))
            else:
                with np.errstate(over="ignore", divide="ignore"):  # an interval wider than floats reach: 0 or inf
                    mid, half = np.log(r.estimate), (np.log(r.hi) - np.log(r.lo)) / 2
                    lo, hi = np.exp(mid - f * half), np.exp(mid + f * half)
                rows.append((r.quantity, r.estimate, float(lo), float(hi)))
        iv = pd.DataFrame(rows, columns=["quantity", "estimate", "lo", "hi"])
        return replace(t, intervals=iv, scheme="t-widened" if self.carried == "t-widened" else t.scheme)

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in ("table", "noise")}
        d.update(noise=asdict(self.noise), table=self.table.to_dict(orient="records"))
        return json.dumps(d, indent=1, default=float)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        d = json.loads(text)
        d["noise"] = NoiseModel(**d["noise"])
        d["table"] = pd.DataFrame(d["table"], columns=["method", "quantity", "coverage", "median_width", "n"])
        return cls(**d)


def simulate_t(
    design: SimDesign,
    targets,
    *,
    estimator: str = DEFAULT_ESTIMATOR,
    level: float = 0.9,
    n_sims: int = 200,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(estimates, t half-widths, truth) over ``n_sims`` simulated sweeps of ``design``: one row a sweep (NaN where
    fewer than 3 budgets kept a minimum), columns a then ln N_opt at each target."""
    rng = np.random.default_rng(seed)
    log_t = np.log(np.atleast_1d(np.asarray(targets, float)))
    est = np.full((n_sims, 1 + log_t.size), np.nan)
    half = np.full_like(est, np.nan)
    for i in range(n_sims):
        lc, ln, _ = minima(design.simulate(rng), estimator)
        if lc.size >= 3 and np.unique(lc).size >= 3:
            est[i], half[i] = t_interval(lc, ln, log_t, level)
    return est, half, design.truth(targets)


# ----- the calibration -----------------------------------------------------------------------------------------------


def calibrate_approach2(
    runs: pd.DataFrame,
    targets,
    *,
    a2=None,
    law=None,
    n_flagged: int = 0,
    estimator: str | None = None,
    level: float = 0.9,
    n_sims: int = 600,
    runs_sims: int = 100,
    runs_resamples: int = 100,
    budgets_resamples: int = 200,
    seed: int | None = None,
    jump: tuple[float, float] = (0.15, 0.25),
    cache_dir=None,
    quantities=None,
) -> Calibration:
    """Calibrate Approach 2's intervals of a and of N_opt at each C in ``targets`` on ``runs``' own design (see the
    module docstring). ``a2``: the sweep's Approach 2 fit (fitted here when None); ``law``: its Approach 3 fit (the
    generator's shape; None gives the parabola generator); ``n_flagged``: runs the quality gate left out (stalled),
    for the jump rate. ``n_sims`` simulated sweeps for "t", "t-widened" and "budgets", ``runs_sims`` (0 skips it)
    for the run bootstrap. ``seed`` None derives it from the runs' content. ``cache_dir``: read and write
    ``calibration-<key>.json`` there. ``quantities``: the names shown in ``table`` and judged by the choice (default
    a and every target; the others, e.g. a figure's band, still get their factors)."""
    from analysis.fits.approach2 import fit_approach2

    t0 = time.perf_counter()
    if not 0 < level < 1:
        raise ValueError(f"calibrate_approach2: level={level!r}; must be in (0, 1)")
    if not (isinstance(n_sims, int) and n_sims >= 20):
        raise ValueError(f"calibrate_approach2: n_sims={n_sims!r}; must be an integer >= 20")
    targets = np.atleast_1d(np.asarray(targets, dtype=float))
    if a2 is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a2 = fit_approach2(runs)
    minima_method: str = estimator or a2.estimator
    law_key = None if law is None else [round(float(v), 10) for v in law.log_params]
    settings = dict(
        targets=[float(f"{t:.6e}") for t in targets],
        level=level,
        n_sims=n_sims,
        runs_sims=runs_sims,
        runs_resamples=runs_resamples,
        budgets_resamples=budgets_resamples,
        seed=seed,
        jump=list(jump),
        n_flagged=int(n_flagged),
        estimator=minima_method,
        quantities=None if quantities is None else sorted(quantities),
    )
    key = runs_key(runs, law=law_key, **settings)
    path = Path(cache_dir) / f"calibration-{key}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            return replace(Calibration.from_json(path.read_text()), from_cache=True)
        except (ValueError, TypeError, KeyError):
            pass  # an unreadable cache is recomputed
    base_seed = simulation_seed(runs, seed, **settings)

    design = sim_design(runs, a2, law, n_flagged, jump)
    noise, generator = design.noise, design.generator
    skipped = {}
    if not all(quadratic_case(minima_method, b.x) for b in design.budgets):
        # spline minima (9+ sizes a budget) cost ~1-3 ms each, not microseconds: fewer sweeps, no run bootstrap
        n_sims = min(n_sims, SLOW_SIMS)
        if runs_sims:
            skipped["runs"] = (
                f"not simulated: with spline minima it would refit {runs_sims * runs_resamples} "
                f"minima a budget (minutes); {SLOW_SIMS} sweeps for the others"
            )
        runs_sims = 0
    log_t = np.log(targets)
    names = ["a"] + [n_opt_name(t) for t in targets]
    truth = design.truth(targets)

    # per simulated sweep: estimate (a, ln N_opt...), t half-widths, budgets-bootstrap [lo, hi]
    est = np.full((n_sims, len(names)), np.nan)
    half = np.full_like(est, np.nan)
    b_lo, b_hi = np.full_like(est, np.nan), np.full_like(est, np.nan)
    r_lo, r_hi = np.full((runs_sims, len(names)), np.nan), np.full((runs_sims, len(names)), np.nan)
    q = [(1 - level) / 2, (1 + level) / 2]
    t2 = np.full_like(est, np.nan)  # the second level's |estimate - its truth| / half-width
    for i in range(n_sims):
        rng = np.random.default_rng([base_seed, i])  # one stream a simulated sweep (simulation_seed)
        sweep = design.simulate(rng)
        lc, ln, kept = minima(sweep, minima_method)
        if lc.size < 3 or np.unique(lc).size < 3:
            continue
        est[i], half[i] = t_interval(lc, ln, log_t, level)
        # level 2: one sweep simulated with this sweep's own line as the truth
        d2 = design.recentred(est[i, 0], est[i, 1] - est[i, 0] * log_t[0])
        lc2, ln2, _ = minima(d2.simulate(rng), minima_method)
        if lc2.size >= 3 and np.unique(lc2).size >= 3:
            e2, h2 = t_interval(lc2, ln2, log_t, level)
            with np.errstate(divide="ignore", invalid="ignore"):
                t2[i] = np.abs(e2 - d2.truth(targets)) / h2
        k = lc.size
        # pairs bootstrap of the line's points (vectorised over resamples)
        pick = rng.integers(0, k, (budgets_resamples, k))
        x, y = lc[pick], ln[pick]
        xm, ym = x.mean(1, keepdims=True), y.mean(1, keepdims=True)
        sxx = ((x - xm) ** 2).sum(1)
        ok = sxx > 1e-12
        sa = ((x - xm) * (y - ym)).sum(1)[ok] / sxx[ok]
        sc = ym[ok, 0] - sa * xm[ok, 0]
        boot = np.column_stack([sa, *(sc + sa * lt for lt in log_t)])
        b_lo[i], b_hi[i] = np.quantile(boot, q, axis=0)
        if i < runs_sims:
            r_lo[i], r_hi[i] = runs_bootstrap(sweep, kept, minima_method, log_t, runs_resamples, q, rng)

    good = np.isfinite(est[:, 0])
    err = np.abs(est[good] - truth) / half[good]
    t2 = t2[good]
    # the fast double bootstrap: the factor is the level-1 error's quantile at the level the second level says
    # covers ``level`` (``double_level.calibrated_level``), and t's coverage is the one it predicts for the real sweep
    doubled = [calibrated_level(err[:, j], t2[:, j], level) for j in range(len(names))]
    # it may undo the first level's widening, never narrow past the first level's own factor or t itself: where the
    # simulation is far noisier than the sweep (size-to-size structure read as seed noise) the second level's truths
    # wander and its correction is an extrapolation too far (a real CPU sweep: t x0.75 where the first level said x0.95)
    single = np.array([d[0] for d in doubled])
    factors = np.maximum([d[2] for d in doubled], np.minimum(1.0, single))
    levels = [d[1] for d in doubled]
    rows = []

    def add(method, lo, hi, factor=None):
        ok = np.isfinite(lo[:, 0]) & np.isfinite(hi[:, 0])
        for j, name in enumerate(names):
            cov = float(np.mean((lo[ok, j] <= truth[j]) & (truth[j] <= hi[ok, j]))) if ok.any() else float("nan")
            if factor is not None:  # t and t-widened: the coverage the second level predicts on the real sweep
                cov = corrected_coverage(err[:, j], t2[:, j], float(factor[j]))
            rows.append(
                dict(
                    method=method,
                    quantity=name,
                    coverage=cov,
                    median_width=float(np.median(hi[ok, j] - lo[ok, j])) if ok.any() else float("nan"),
                    n=int(ok.sum()),
                )
            )

    e, h = est[good], half[good]
    add("t", e - h, e + h, np.ones(len(names)))
    add("t-widened", e - factors * h, e + factors * h, factors)
    add("budgets", b_lo[good], b_hi[good])
    if runs_sims > 0:
        add("runs", r_lo, r_hi)
    else:
        skipped.setdefault("runs", "not simulated (runs_sims=0): it refits every minimum for each resample")
    table = pd.DataFrame(rows, columns=["method", "quantity", "coverage", "median_width", "n"])
    # two targets within 0.5% of each other share a name (n_opt_name keeps 3 digits: a report budget and a point of
    # the band's grid): the first stands for both
    table = table.drop_duplicates(["method", "quantity"]).reset_index(drop=True)
    shown = list(dict.fromkeys(names if quantities is None else [q for q in names if q in set(quantities)]))
    carried = choose(table, level, shown)
    cal = Calibration(
        carried=carried,
        factors=dict(zip(names, map(float, factors))),
        levels=dict(zip(names, map(float, levels))),
        table=table,
        noise=noise,
        generator=generator,
        n_sims=int(good.sum()),
        seconds=time.perf_counter() - t0,
        level=level,
        estimator=minima_method,
        key=key,
        skipped=skipped,
    )
    if quantities is not None:
        cal = replace(cal, table=table[table["quantity"].isin(list(quantities))].reset_index(drop=True))
    if path is not None:
        from scaling.core.records import write_text_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, cal.to_json())
    return cal


def choose(table: pd.DataFrame, level: float, quantities) -> str:
    """The method to carry: the narrowest (median width at the last quantity, the largest target) of the methods
    that need no fitted factor ("t", "budgets", "runs") whose simulated coverage lies in [level, level + TOLERANCE]
    for every quantity, on at least ``MIN_SIMS_TO_CARRY`` simulated sweeps; else "t-widened", the t interval
    widened (or narrowed) to cover ``level`` exactly. A method simulated at 88-90% is widened rather than carried
    as it is: its simulated coverage has a standard error of ~2 points, and keeping every method that lands just
    under nominal would make the carried interval under-cover on average."""
    best, width = "t-widened", float("inf")
    for method, g in table.groupby("method", sort=False):
        if method == "t-widened":
            continue
        g = g.set_index("quantity").reindex(list(quantities))
        cov = g["coverage"].to_numpy(float)
        if g["n"].min() < MIN_SIMS_TO_CARRY or not ((cov >= level - 1e-12) & (cov <= level + TOLERANCE + 1e-12)).all():
            continue
        w = float(g["median_width"].iloc[-1])
        if w < width:
            best, width = method, w
    return best
