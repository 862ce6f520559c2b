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
   each quantity's half-width multiplied by the factor f that makes it cover ``level`` of the simulated sweeps (f =
   the ``level`` quantile of |estimate - truth| / half-width, ln N for N_opt).
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

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from analysis.data.quality import stalled_positions
from analysis.fits.minima import (
    _MIN_DISTINCT,
    DEFAULT_ESTIMATOR,
    LOCAL_POINTS,
    estimate_minimum,
    resolve,
)
from analysis.uncertainty.intervals import PowerLawInterval, n_opt_name

METHODS = ("t", "t-widened", "budgets", "runs")
TOLERANCE = 0.02  # a method is "calibrated" when its simulated coverage is within level ± TOLERANCE (88-92% at 90%)
SLOW_SIMS = 200  # simulated sweeps when a budget's minimum is the spline's (its coverage s.e. ~2 points)
MIN_SIMS_TO_CARRY = 100  # a method simulated on fewer sweeps is shown, not carried (coverage s.e. over 3 points)
JUMP_PRIOR_RUNS = 20  # the Beta(1, 19) prior on the jump rate: worth 20 runs at 1 in 20
VERSION = 2  # part of the cache key: bump when the simulation changes
FIT_COLUMNS = ("budget", "N", "D", "C", "loss")


@dataclass(frozen=True)
class NoiseModel:
    """Loss noise of one run, in nats: normal with sd ``seed_sd``, plus with probability ``jump_rate`` an upward jump
    uniform on [jump_lo, jump_hi]. ``n_flagged`` of ``n_runs`` were flagged stalled by the gate."""

    seed_sd: float
    jump_rate: float
    jump_lo: float = 0.15
    jump_hi: float = 0.25
    n_flagged: int = 0
    n_runs: int = 0


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


# ----- the sweep's design, generator and noise -------------------------------------------------------------------


@dataclass(frozen=True)
class _Budget:
    log_c: float  # ln of the geometric mean of the budget's C (as loaded)
    x: np.ndarray  # ln N of every run in the design (sorted)
    x_star: float  # the generator's minimum: the Approach 2 line at log_c
    m: float  # the generator's scale at the minimum (m_b; the parabola's p2 in the fallback)
    level: float  # loss at the minimum (only for realism: the estimators and the gate are level-free)


def runs_key(runs: pd.DataFrame, **settings) -> str:
    """A hash of the columns the fit reads (``FIT_COLUMNS`` present in ``runs``), independent of row order, and
    of ``settings``: the calibration cache's key."""
    cols = [c for c in FIT_COLUMNS if c in runs.columns]
    t = runs[cols].astype(float).sort_values(cols).to_numpy()
    h = hashlib.sha256(np.ascontiguousarray(t).tobytes())
    h.update(json.dumps(dict(cols=cols, version=VERSION, **settings), sort_keys=True, default=str).encode())
    return h.hexdigest()[:20]


def simulation_seed(runs: pd.DataFrame, fixed: int | None, **settings) -> int:
    """``fixed``, or (None) one from the runs and the settings only, never from a fitted law: a fit's last digits
    differ between machines (AVX2 against AVX-512 arithmetic), and a seed hashed from them drew another sample of
    simulated sweeps there, enough to flip the method carried (a run bootstrap at 92% on one machine, 98% on the
    other, for the same runs). Each simulated sweep i then draws from ``default_rng([the seed, i])``, so one sweep's
    data-dependent draws do not shift the next."""
    return int(runs_key(runs, **settings)[:12], 16) if fixed is None else fixed


def _budget_residuals(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Leverage-standardised residuals r_i / sqrt(1 - h_i) about the least-squares parabola in ln N."""
    X = np.vander(x - x.mean(), 3)
    H = X @ np.linalg.pinv(X)
    return (y - H @ y) / np.sqrt(1 - np.clip(np.diag(H), 0.0, 0.999))


def seed_spread(runs: pd.DataFrame) -> tuple[float, int]:
    """(robust sd of the runs' residuals about a parabola in ln N through each budget, degrees of freedom):
    1.4826 · median |r_i / sqrt(1 - h_i)| over every budget with at least 4 runs and 3 distinct sizes. A run the
    gate kept that still sits more than 3 sd off its budget's parabola (a smaller jump) spreads its residual over
    the budget's few other runs, so it is left out and the scale recomputed once (where the budget keeps 4 sizes)."""
    budgets = []
    for _, g in runs.groupby("budget"):
        x, y = np.log(g["N"].to_numpy(float)), g["loss"].to_numpy(float)
        if x.size >= 4 and np.unique(x).size >= 3:
            budgets.append((x, y))
    if not budgets:
        return float("nan"), 0
    z = [np.abs(_budget_residuals(x, y)) for x, y in budgets]
    sd = float(1.4826 * np.median(np.concatenate(z)))
    z2, dof = [], 0
    for (x, y), zb in zip(budgets, z):
        i = int(np.argmax(zb))
        if zb[i] > 3 * sd and x.size >= 5 and np.unique(np.delete(x, i)).size >= 4:
            x, y = np.delete(x, i), np.delete(y, i)
            zb = np.abs(_budget_residuals(x, y))
        z2.append(zb)
        dof += x.size - 3
    return float(1.4826 * np.median(np.concatenate(z2))), dof


def _generator(runs, a2, law) -> tuple[list[_Budget], str]:
    """The simulated sweep's budgets: design, true minimum on the Approach 2 line, and the curve's scale."""
    used = a2.per_budget[a2.per_budget["used"]]
    slope, icpt = np.polyfit(np.log(used["C"].to_numpy(float)), np.log(used["N_opt"].to_numpy(float)), 1)
    shape = "approach3"
    if law is None or not (0.02 < law.alpha < 3 and 0.02 < law.beta < 3):
        shape = "parabola"
    p2 = used["p2"].to_numpy(float)
    p2_med = float(np.median(p2[p2 > 0])) if (p2 > 0).any() else 0.05
    out = []
    for b, g in runs.groupby("budget"):
        if not np.isclose(used["budget"], b, rtol=1e-9).any():
            continue
        log_c = float(np.log(g["C"].to_numpy(float)).mean())
        x = np.sort(np.log(g["N"].to_numpy(float)))
        x_star = icpt + slope * log_c
        if shape == "approach3":
            lA, lB, al, be = law.log_params[1], law.log_params[2], law.alpha, law.beta
            log_k = float(np.log(g["N"].to_numpy(float) * g["D"].to_numpy(float)).mean())  # N·D at this budget
            x3 = (math.log(al) + lA - math.log(be) - lB + be * log_k) / (al + be)  # the law's own minimum
            m = math.exp(math.log(al) + lA - al * x3)
        else:
            m = p2_med
        out.append(_Budget(log_c, x, x_star, m, float(g["loss"].min())))
    desc = (
        f"Approach 3's IsoFLOP shape (alpha {law.alpha:.3g}, beta {law.beta:.3g}) centred on the Approach 2 line"
        if shape == "approach3"
        else f"parabolas of curvature {p2_med:.3g} (median of the budgets') centred on the Approach 2 line"
    )
    return out, desc


def _curve(bud: _Budget, x: np.ndarray, shape_law) -> np.ndarray:
    u = x - bud.x_star
    if shape_law is None:
        return bud.level + bud.m * u * u
    al, be = shape_law
    return bud.level + bud.m * (np.expm1(-al * u) / al + np.expm1(be * u) / be)


def noise_model(runs: pd.DataFrame, n_flagged: int = 0, jump_lo: float = 0.15, jump_hi: float = 0.25) -> NoiseModel:
    """The sweep's noise: seed spread (``seed_spread``) and the jump rate (k + 1) / (n + 20) from the ``n_flagged``
    runs the quality gate left out of ``len(runs) + n_flagged``."""
    sd, _ = seed_spread(runs)
    if not np.isfinite(sd) or sd <= 0:
        sd = 0.02  # too few runs a budget to measure: the real CPU sweeps' order (seeds 0.02-0.05 nats apart)
    n = len(runs) + n_flagged
    return NoiseModel(
        seed_sd=sd,
        jump_rate=(n_flagged + 1) / (n + JUMP_PRIOR_RUNS),
        jump_lo=jump_lo,
        jump_hi=jump_hi,
        n_flagged=int(n_flagged),
        n_runs=int(n),
    )


# ----- one simulated sweep -----------------------------------------------------------------------------------------


def _simulate(budgets, shape_law, noise: NoiseModel, rng) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """One simulated sweep after the quality gate's stall rule (``quality.stalled_positions``, the rule
    ``load_runs`` applies; the other checks, diverged and short, cannot fire on a simulated loss): (log C, ln N,
    loss) of every budget."""
    out = []
    for b in budgets:
        y = _curve(b, b.x, shape_law) + noise.seed_sd * rng.standard_normal(b.x.size)
        j = rng.random(b.x.size) < noise.jump_rate
        if j.any():
            y = y + j * rng.uniform(noise.jump_lo, noise.jump_hi, b.x.size)
        flagged = [p for p, *_ in stalled_positions(b.x, y)]
        if flagged:
            keep = np.setdiff1d(np.arange(b.x.size), flagged)
            out.append((b.log_c, b.x[keep], y[keep]))
        else:
            out.append((b.log_c, b.x, y))
    return out


def _line(lc: np.ndarray, ln: np.ndarray):
    """Least squares ln N = c + a ln C: (a, c, residual s^2, mean ln C, S_CC)."""
    m = lc.mean()
    scc = float(((lc - m) ** 2).sum())
    a = float(((lc - m) * (ln - ln.mean())).sum() / scc)
    c = float(ln.mean() - a * m)
    r = ln - (c + a * lc)
    s2 = float(r @ r) / max(lc.size - 2, 1)
    return a, c, s2, m, scc


def _quadratic_case(estimator: str, x: np.ndarray) -> bool:
    """Whether ``estimate_minimum(x, ., estimator)`` is the vertex of the least-squares parabola through all points:
    the parabola, and the local parabola when the budget has no more distinct sizes than its window."""
    n = np.unique(x).size
    m = resolve(estimator, n)
    return m == "parabola" or (m == "local_parabola" and n <= LOCAL_POINTS)


def _vertices(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``estimate_minimum``'s ln N for each row of Y (losses at sizes x; rows are resamples or simulations) where
    ``_quadratic_case`` holds, computed for all rows at once: the vertex of the least-squares parabola, or the
    size with the lowest mean loss where the parabola opens downward (as ``minima._quadratic`` falls back)."""
    xm = x.mean()
    V = np.vander(x - xm, 3)
    q2, q1, _ = np.linalg.lstsq(V, Y.T, rcond=None)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xm - q1 / (2 * q2)
    down = ~(q2 > 0)
    if down.any():
        xu, inv = np.unique(x, return_inverse=True)
        for r in np.flatnonzero(down):
            means = np.bincount(inv, weights=Y[r]) / np.bincount(inv)
            out[r] = xu[int(np.argmin(means))]
    return out


def _batch_vertices(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``_vertices`` for rows that each have their own sizes (a run bootstrap's resamples): every row's least-squares
    parabola at once through its normal equations, centred on the row's mean; the lowest mean loss where it opens
    downward."""
    xm = X.mean(1, keepdims=True)
    u = X - xm
    S = np.stack([(u**k).sum(1) for k in range(5)], axis=1)  # sums of u^0..u^4
    T = np.stack([(Y * u**k).sum(1) for k in range(3)], axis=1)
    M = np.stack([S[:, [4, 3, 2]], S[:, [3, 2, 1]], S[:, [2, 1, 0]]], axis=1)
    q = np.linalg.solve(M, T[:, [2, 1, 0], None])[:, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = xm[:, 0] - q[:, 1] / (2 * q[:, 0])
    for r in np.flatnonzero(~(q[:, 0] > 0)):
        out[r] = _lowest(X[r], Y[r])
    return out


def _lowest(x: np.ndarray, y: np.ndarray) -> float:
    xu, inv = np.unique(x, return_inverse=True)
    return float(xu[int(np.argmin(np.bincount(inv, weights=y) / np.bincount(inv)))])


def _minimum(x: np.ndarray, y: np.ndarray, estimator: str) -> float:
    if _quadratic_case(estimator, x):
        return float(_vertices(x, y[None, :])[0])
    return estimate_minimum(x, y, estimator).log_n


def _minima(sweep, estimator) -> tuple[np.ndarray, np.ndarray, list]:
    lc, ln, kept = [], [], []
    for k, (log_c, x, y) in enumerate(sweep):
        if np.unique(x).size < 3:
            continue
        lc.append(log_c)
        ln.append(_minimum(x, y, estimator))
        kept.append(k)
    return np.array(lc), np.array(ln), kept


@dataclass(frozen=True)
class SimDesign:
    """A sweep's exact design with the generator and noise the calibration simulates it from."""

    budgets: list
    shape_law: tuple | None  # (alpha, beta) of the Approach 3 shape, None for the parabola generator
    noise: NoiseModel
    generator: str

    def truth(self, targets) -> np.ndarray:
        """The simulation's truth: a, then ln N_opt at each target, on the line through the budgets' true minima."""
        lc, xs = [b.log_c for b in self.budgets], [b.x_star for b in self.budgets]
        a, c = np.polyfit(lc, xs, 1)
        return np.array([a, *(c + a * np.log(np.atleast_1d(np.asarray(targets, float))))])

    def simulate(self, rng) -> list:
        return _simulate(self.budgets, self.shape_law, self.noise, rng)


def sim_design(runs: pd.DataFrame, a2, law=None, n_flagged: int = 0, jump=(0.15, 0.25)) -> SimDesign:
    """The design the calibration simulates: ``runs``' budgets and sizes, the generator of ``_generator`` (from the
    Approach 2 fit ``a2`` and the Approach 3 fit ``law``) and the noise of ``noise_model``."""
    budgets, generator = _generator(runs, a2, law)
    if len(budgets) < 3:
        raise ValueError(f"calibrate_approach2: {len(budgets)} budget(s) with a minimum; the t interval needs >= 3")
    shape_law = (law.alpha, law.beta) if generator.startswith("Approach 3") else None
    return SimDesign(budgets, shape_law, noise_model(runs, n_flagged, *jump), generator)


def _t(lc, ln, log_t, level):
    """The t interval (``intervals._t_interval``'s formulas) of one sweep's minima: estimates (a, ln N_opt at each
    target) and half-widths."""
    a, c, s2, m, scc = _line(lc, ln)
    k = lc.size
    tq = float(stats.t.ppf((1 + level) / 2, k - 2))
    return (
        np.array([a, *(c + a * log_t)]),
        np.array([tq * math.sqrt(s2 / scc), *(tq * np.sqrt(s2 * (1 / k + (log_t - m) ** 2 / scc)))]),
    )


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
        lc, ln, _ = _minima(design.simulate(rng), estimator)
        if lc.size >= 3 and np.unique(lc).size >= 3:
            est[i], half[i] = _t(lc, ln, log_t, level)
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
    if not all(_quadratic_case(minima_method, b.x) for b in design.budgets):
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
    for i in range(n_sims):
        rng = np.random.default_rng([base_seed, i])  # one stream a simulated sweep (simulation_seed)
        sweep = design.simulate(rng)
        lc, ln, kept = _minima(sweep, minima_method)
        if lc.size < 3 or np.unique(lc).size < 3:
            continue
        est[i], half[i] = _t(lc, ln, log_t, level)
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
            r_lo[i], r_hi[i] = _runs_bootstrap(sweep, kept, minima_method, log_t, runs_resamples, q, rng)

    good = np.isfinite(est[:, 0])
    err = np.abs(est[good] - truth) / half[good]
    factors = np.quantile(err, level, axis=0)
    rows = []

    def add(method, lo, hi):
        ok = np.isfinite(lo[:, 0]) & np.isfinite(hi[:, 0])
        for j, name in enumerate(names):
            cov = float(np.mean((lo[ok, j] <= truth[j]) & (truth[j] <= hi[ok, j]))) if ok.any() else float("nan")
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
    add("t", e - h, e + h)
    add("t-widened", e - factors * h, e + factors * h)
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


def _runs_bootstrap(sweep, kept, estimator, log_t, n_resamples, q, rng):
    """The run bootstrap of one simulated sweep (runs within each used budget; its estimator resolved once a
    budget, as ``isoflop_power_law_interval``'s scheme "runs" does): percentile [lo, hi] of a and ln N_opt."""
    groups = [sweep[k] for k in kept]
    log_c = np.array([g[0] for g in groups])
    ln = np.full((n_resamples, len(groups)), np.nan)
    for j, (_, x, y) in enumerate(groups):
        meth = resolve(estimator, np.unique(x).size)
        idx = rng.integers(0, x.size, (n_resamples, x.size))
        xr, yr = x[idx], y[idx]
        srt = np.sort(xr, axis=1)
        distinct = 1 + (np.diff(srt, axis=1) > 0).sum(1)
        usable = distinct >= _MIN_DISTINCT[meth]
        quad = usable & ((meth == "parabola") | ((meth == "local_parabola") & (distinct <= LOCAL_POINTS)))
        if quad.any():
            ln[quad, j] = _batch_vertices(xr[quad], yr[quad])
        for r in np.flatnonzero(usable & ~quad):  # the spline, or a local parabola that moves its window
            ln[r, j] = estimate_minimum(xr[r], yr[r], meth).log_n
    out = np.full((n_resamples, 1 + log_t.size), np.nan)
    for r in range(n_resamples):
        ok = np.isfinite(ln[r])
        if ok.sum() >= 2 and np.ptp(log_c[ok]) > 0:
            a, c, *_ = _line(log_c[ok], ln[r, ok])
            out[r] = [a, *(c + a * log_t)]
    if np.isfinite(out[:, 0]).sum() < 2:
        return np.nan, np.nan
    return np.nanquantile(out, q, axis=0)


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
