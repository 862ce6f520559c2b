"""The compute multiplier's interval calibrated on the pair at hand (issue 20 item 1 for M): simulate the two sweeps'
exact designs from their fitted laws and noise, refit every simulated pair with each candidate interval method, and
carry the narrowest method whose coverage of the true M is within ``level`` ± ``TOLERANCE`` at every target budget,
or the interval widened by the factor the simulation says it needs.

1. **Truth.** Each sweep's Approach 3 law as compare fitted it (``cmp.frontiers["approach3"]``). The true M(C) is
   the one those two laws give: L_k*(C) = E_k + G_k (C / (6 r_k))^-γ_k in closed form (γ = αβ/(α+β)), with r_k the
   sweep's median C / 6ND (a constant here: the exact family conversion compare uses moves r a little with N; the
   truth and every simulated estimate use the same r, so the coverage bookkeeping is consistent), and
   ln M = ln C_A(L_B*(C)) - ln C, +inf where L_B*(C) lies at or below A's floor.
2. **Noise** (``analysis.uncertainty.sim_noise.noise_model``, the pieces Approach 2's calibration uses): each
   sweep's seed spread from its residuals, its stalled-run jump rate (Beta(1, 19) prior on the gate's count), every
   simulated budget through the quality gate's stall rule (``parametric_check.simulate_losses``).
3. **Methods** (``METHODS``), each on the same ``n_sims`` simulated pairs:
   - "separate": compare's default, the percentile interval of M from the two separate Approach 3 fits, bootstrapped
     over each sweep's runs (``n_resamples`` a simulated pair; each refit warm-started from that simulated sweep's
     full fit, all of them in one batched L-BFGS: ``parametric_check.fit_simulated``);
   - "shared": the joint fit with E, α, β shared (compare's shared law: Huber at the test's scale, so the same
     estimator as ``shared_exponent``'s least squares), its constant M, and the percentile interval of its run
     bootstrap widened by sqrt(n / (n - p)) as ``shared_bootstrap`` widens it;
   - "separate-widened": the separate fits' interval scaled about its estimate (in ln M, each side) by the factor f
     that makes it cover ``level`` of the simulated pairs at that C (f = the ``level`` quantile, over simulated
     pairs with an estimate, of the error over the half-width on the error's side, the interval taken with its hull
     with the estimate; covers ``level`` by construction on these pairs;
     an infinite end stays infinite; f = 1 where the true M is infinite, as nothing there calibrates it), applied
     to the real pair's interval computed the same way, over its first ``n_resamples`` resamples (the 5%/95%
     quantiles of 40 samples sit inward of those of compare's 1000: ``matched_interval``). Only the
     separate fits' interval is widened: the shared law's M is biased wherever the laws' exponents differ, and
     widening a biased interval until it covers would carry a misplaced centre.
4. **Choice.** The narrowest (median ln(hi/lo), its median over the targets) of "separate" and "shared" whose
   coverage is in [level - TOLERANCE, level + TOLERANCE] at every target with a finite true M (where the true M is
   infinite at every target, at the in-range compute values instead); else "separate-widened".
   The shared law is a candidate only where compare could estimate it (``shared_undetermined`` empty).

This module calibrates Approach 3's M. When compare's primary law is Approach 2, its M is calibrated the same way
(same truth and noise, the two "separate" methods; batched Approach 2 refits) by ``calibration_approach2``; another
primary law's table is left as it is. ``calibrated.calibrate`` applies both to a comparison. With more than two
sweeps, each pair's shared fit is of that pair alone. Cached as ``multiplier-calibration-<key>.json`` in the output
folder, the key a hash of both sweeps' fitted columns and every setting (the law's among them).
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.fits.approach3 import approach3_objective
from analysis.fits.lbfgs import FIRST, REFINE, lbfgs_batch
from analysis.uncertainty.calibration import TOLERANCE
from analysis.uncertainty.parametric_check import fit_simulated, simulate_losses
from analysis.uncertainty.sim_keys import runs_key, simulation_seed
from analysis.uncertainty.sim_noise import noise_model

METHODS = ("separate", "shared", "separate-widened")
DEFAULT_SIMS = 100
DEFAULT_RESAMPLES = 40
COLUMNS = ["method", "C", "target", "M_true", "coverage", "median_width", "n"]
VERSION = 4  # part of the cache key: bump when the simulation changes (3: the widening's hull, failed and ∞ fits;
# 4: the seed without the fitted shared-law scale)
REFINE_ITER = 300  # cap on each refit's refinement iterations (a batch runs as long as its slowest problem)
_BIG = 1e6  # ln M beyond this is infinite (B's loss at or below A's floor)


@dataclass(frozen=True)
class MultiplierCalibration:
    """One pair's calibration: the method carried, the widening factor per compute value (``C``, the pair table's
    rows), and per (method, C) the simulated coverage, median ln(hi/lo) and number of simulated pairs."""

    pair: str  # "B vs A"
    carried: str
    why: str
    C: list
    factors: dict  # method-widened -> per-C factor list
    table: pd.DataFrame = field(repr=False)  # COLUMNS: method, C, target (bool), M_true, coverage, median_width, n
    truth_M: list  # the simulation's true M at each C
    noise: list  # per sweep (seed_sd, jump_rate)
    n_sims: int
    n_resamples: int
    seconds: float
    level: float
    key: str = ""
    from_cache: bool = False
    law: str = "approach3"  # whose M: "approach3" here, "approach2" (``calibration_approach2``)
    bias: list = field(default_factory=list)  # per C: median over simulated pairs of ln(M_est / M_true), separate

    def figures(self, method: str, c: float) -> tuple[float, float, int]:
        t = self.table
        r = t[(t["method"] == method) & np.isclose(t["C"], c, rtol=1e-9)]
        if r.empty:
            return float("nan"), float("nan"), 0
        return float(r["coverage"].iloc[0]), float(r["median_width"].iloc[0]), int(r["n"].iloc[0])

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k != "table"}
        d["table"] = self.table.to_dict(orient="records")
        return json.dumps(d, indent=1, default=float)

    @classmethod
    def from_json(cls, text: str) -> MultiplierCalibration:
        d = json.loads(text)
        d["table"] = pd.DataFrame(d["table"], columns=COLUMNS)
        d["from_cache"] = True
        return cls(**d)


# ----- the frontier and M in closed form ---------------------------------------------------------------------------


def _frontier(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(E, G, γ) of L*(K) = E + G K^-γ, K = N·D, for parameter rows (..., 5) in (ln E, ln A, ln B, α, β)."""
    le, la, lb, al, be = np.moveaxis(np.asarray(theta, float), -1, 0)
    with np.errstate(all="ignore"):
        s = al + be
        # N_opt(K) = (αA/(βB))^(1/s) K^(β/s); at K = 1, L* - E = A n^-α + B n^β
        ln_n = (np.log(al) + la - np.log(be) - lb) / s
        G = np.exp(la - al * ln_n) + np.exp(lb + be * ln_n)
        return np.exp(le), G, al * be / s


def log_m(theta_a, theta_b, ratio_a: float, ratio_b: float, C) -> np.ndarray:
    """ln M at compute values ``C`` (as loaded) from Approach 3 parameter rows of A and B (broadcast over leading
    axes): +inf where B's frontier loss there is at or below A's floor, NaN where a law is not a decreasing one."""
    lc = np.log(np.asarray(C, float))
    Ea, Ga, ga = (v[..., None] for v in _frontier(theta_a))
    Eb, Gb, gb = (v[..., None] for v in _frontier(theta_b))
    with np.errstate(all="ignore"):
        lb = Eb + Gb * np.exp(-gb * (lc - np.log(6 * ratio_b)))  # L_B*(C)
        gap = lb - Ea
        out = np.log(6 * ratio_a) + (np.log(Ga) - np.log(gap)) / ga - lc
        out = np.where(gap <= 0, np.inf, out)
        bad = ~((Ga > 0) & (ga > 0) & (Gb > 0) & (gb > 0) & np.isfinite(lb))
    return np.where(bad, np.nan, out)


def _percentile(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over axis 1 of (S, R, G) ln M samples; ±inf count as ±inf (as compare's intervals)."""
    q = (1 - level) / 2
    s = np.clip(samples, -_BIG, _BIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(s, q, axis=1), np.nanquantile(s, 1 - q, axis=1)
    fix = lambda v: np.where(v >= _BIG / 2, np.inf, np.where(v <= -_BIG / 2, -np.inf, v))  # noqa: E731
    return fix(lo), fix(hi)


def widening(est, lo, hi, truth, level: float) -> np.ndarray:
    """Per column: the factor f such that [est - f (est - lo), est + f (hi - est)] (ln M) covers ``truth`` in a
    ``level`` share of rows: the ``level`` quantile of the error over the half-width on the error's side. An
    infinite truth counts as covered by an interval open on its side (f = 0 suffices), missed otherwise. Rows
    without an estimate or interval (a failed fit) are left out, as ``_score`` leaves them out of the coverage (as
    misses they made f cover more than ``level`` of the rows scored); 1 where no row has one."""
    est, lo, hi = (np.clip(v, -_BIG, _BIG) for v in (est, lo, hi))
    lo, hi = np.minimum(lo, est), np.maximum(hi, est)  # the hull with the estimate, as ``_widen`` scales it
    t = np.clip(truth, -_BIG, _BIG)
    with np.errstate(all="ignore"):
        up = t >= est
        side = np.where(up, hi - est, est - lo)
        err = np.abs(t - est)
        r = np.where(err == 0, 0.0, err / np.maximum(side, 1e-12))
        open_side = ((t >= _BIG / 2) & (hi >= _BIG / 2)) | ((t <= -_BIG / 2) & (lo <= -_BIG / 2))
        r = np.where(open_side, 0.0, r)
        # an infinite estimate has no centre to scale about: ``_widen`` keeps its interval, covered or not at any f
        # (1e12 for never: a factor that large makes every finite end infinite, and quantiles of inf give NaN)
        r = np.where(np.abs(est) >= _BIG / 2, np.where((lo <= t) & (t <= hi), 0.0, 1e12), r)
        r = np.where(np.isnan(est) | np.isnan(lo) | np.isnan(hi), np.nan, r)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        f = np.nanquantile(r, level, axis=0)
    return np.where(np.isnan(f), 1.0, f)


def _widen(est, lo, hi, f):
    """The interval scaled by ``f`` about ``est`` in ln M, from its hull with ``est`` (a full-data estimate can fall
    outside its resamples' percentile interval; scaling the end on its wrong side would move it inward, and the
    factor ``widening`` fits would then not cover); an infinite end stays infinite (an open side: A's fitted law
    never reaches B's loss), ends past ``_BIG`` / 2 are infinite, and the interval of an infinite estimate is kept
    as it is."""
    e, lo_, hi_ = (np.clip(v, -_BIG, _BIG) for v in (est, lo, hi))
    lo_, hi_ = np.minimum(lo_, e), np.maximum(hi_, e)  # an estimate outside its resamples' interval: scaled from it
    fix = lambda v: np.where(v >= _BIG / 2, np.inf, np.where(v <= -_BIG / 2, -np.inf, v))  # noqa: E731
    with np.errstate(all="ignore"):
        new_lo = np.where(np.isneginf(lo), -np.inf, fix(e - f * (e - lo_)))
        new_hi = np.where(np.isposinf(hi), np.inf, fix(e + f * (hi_ - e)))
        inf_e = np.abs(e) >= _BIG / 2  # an infinite estimate: nothing to scale about (f * ~1e6 would move an end)
        new_lo, new_hi = np.where(inf_e, fix(lo_), new_lo), np.where(inf_e, fix(hi_), new_hi)
    return new_lo, new_hi


def _score(lo, hi, truth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coverage, median ln(hi/lo), n) per column over simulated pairs with a finite-or-infinite interval."""
    ok = ~(np.isnan(lo) | np.isnan(hi))
    cov = np.where(ok, (lo <= truth) & (truth <= hi), False).sum(0) / np.maximum(ok.sum(0), 1)
    w = np.where(ok, hi - lo, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return cov, np.nanmedian(w, axis=0), ok.sum(0)


# ----- the shared law, batched -------------------------------------------------------------------------------------


def fit_shared_batch(x0, data_a, data_b, W_a, W_b, scale: float, refine_iter: int | None = None) -> np.ndarray:
    """The shared fit (ln E, α, β, ln A_a, ln A_b, ln B_a, ln B_b) of many (A, B) data sets at once: the sum of the
    two sweeps' Approach 3 objectives at Huber scale ``scale`` (compare's shared least squares), L-BFGS from ``x0``
    (S, 7). ``data_k`` = (logN, logD, logL (S, n_k)); ``W_k`` (S, n_k) weights. NaN rows where a fit failed."""
    (nA, dA, lA), (nB, dB, lB) = data_a, data_b

    def fun_grad(X, rows):
        ia, ib = [0, 3, 5, 1, 2], [0, 4, 6, 1, 2]
        fa, ga = approach3_objective(X[:, ia], nA, dA, lA[rows], scale, W_a[rows])
        fb, gb = approach3_objective(X[:, ib], nB, dB, lB[rows], scale, W_b[rows])
        g = np.zeros_like(X)
        np.add.at(g, (slice(None), ia), ga)
        np.add.at(g, (slice(None), ib), gb)
        return fa + fb, g

    x, f, _, _ = lbfgs_batch(fun_grad, np.asarray(x0, float), **FIRST)
    x2, f2, _, _ = lbfgs_batch(fun_grad, x, **(REFINE if refine_iter is None else dict(REFINE, max_iter=refine_iter)))
    better = np.isfinite(f2) & (f2 <= f)
    x = np.where(better[:, None], x2, x)
    return np.where(np.isfinite(np.where(better, f2, f))[:, None], x, np.nan)


def _shared_log_m(x: np.ndarray) -> np.ndarray:
    """ln M in N·D space of shared-fit vectors (..., 7); M in compute adds ln(r_A / r_B) (see ``shared_exponent``)."""
    with np.errstate(all="ignore"):
        return (x[..., 3] - x[..., 4]) / x[..., 1] + (x[..., 5] - x[..., 6]) / x[..., 2]


# ----- the calibration -----------------------------------------------------------------------------------------


def read_cached(cache_dir, key: str) -> tuple[Path | None, MultiplierCalibration | None]:
    """(the cache file of ``key`` in ``cache_dir`` or None, the calibration read from it or None)."""
    path = Path(cache_dir) / f"multiplier-calibration-{key}.json" if cache_dir is not None else None
    if path is not None and path.exists():
        try:
            return path, MultiplierCalibration.from_json(path.read_text())
        except (ValueError, KeyError, TypeError):
            pass
    return path, None


def write_cached(path: Path | None, cal: MultiplierCalibration) -> None:
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cal.to_json())
        except OSError:
            pass


def _sweep_data(runs: pd.DataFrame):
    N, D = runs["N"].to_numpy(float), runs["D"].to_numpy(float)
    ratio = float(np.median(runs["C"].to_numpy(float) / (6 * N * D)))
    budget = runs["budget"].to_numpy() if "budget" in runs else runs["C"].to_numpy()
    return np.log(N), np.log(D), budget, ratio


def calibrate_multiplier(
    runs_a: pd.DataFrame,
    runs_b: pd.DataFrame,
    fit_a,
    fit_b,
    C,
    targets,
    *,
    shared_x0=None,
    shared_scale: float | None = None,
    n_flagged=(0, 0),
    level: float = 0.9,
    n_sims: int = DEFAULT_SIMS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | None = None,
    pair: str = "B vs A",
    cache_dir=None,
) -> MultiplierCalibration:
    """Calibrate the M interval of one pair (see the module's docstring). ``fit_a``/``fit_b``: the sweeps' Approach
    3 fits (``theta``, ``delta``, ``predict``); ``C``: the compute values of the pair's table (as loaded), of which
    ``targets`` decide the choice; ``shared_x0`` (7,) and ``shared_scale``: compare's shared fit and its Huber
    scale (None: the shared law is not a candidate)."""
    if not (isinstance(n_sims, int) and n_sims >= 20):
        raise ValueError(f"calibrate_multiplier: n_sims={n_sims!r}; must be an integer >= 20")
    if not (isinstance(n_resamples, int) and n_resamples >= 10):
        raise ValueError(f"calibrate_multiplier: n_resamples={n_resamples!r}; must be an integer >= 10")
    C = np.asarray(C, float)
    is_target = np.isin(C, np.asarray(targets, float))
    use_shared = shared_x0 is not None and shared_scale is not None
    settings = dict(
        level=level,
        n_sims=n_sims,
        n_resamples=n_resamples,
        seed=seed,
        C=[float(c) for c in C],
        targets=[float(c) for c in np.asarray(targets, float)],
        shared=use_shared,
        scale=shared_scale,
        flagged=list(n_flagged),
        multiplier_version=VERSION,
    )
    key = hashlib.sha256(
        (runs_key(runs_a) + runs_key(runs_b) + json.dumps(settings, sort_keys=True, default=str)).encode()
    ).hexdigest()[:20]
    path, cached = read_cached(cache_dir, key)
    if cached is not None:
        return cached
    t0 = time.perf_counter()
    S, R = n_sims, n_resamples
    both = pd.concat([runs_a[["N", "D", "loss"]], runs_b[["N", "D", "loss"]]], ignore_index=True)
    # the seed from the runs and settings, not the fitted Huber scale (a fit's last digits differ between machines)
    rng = np.random.default_rng([simulation_seed(both, seed, **{k: v for k, v in settings.items() if k != "scale"}), 1])
    sims, noises = [], []
    for runs, fit, nf in ((runs_a, fit_a, n_flagged[0]), (runs_b, fit_b, n_flagged[1])):
        logN, logD, budget, ratio = _sweep_data(runs)
        noise = noise_model(runs, nf)
        y_true = np.asarray(fit.predict(runs["N"].to_numpy(float), runs["D"].to_numpy(float)), float)
        losses, kept = simulate_losses(y_true, logN, budget, noise, S, rng)
        counts = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), size=(S, R)).astype(float)
        sims.append((logN, logD, ratio, losses, kept, counts, fit))
        noises.append((noise.seed_sd, noise.jump_rate))
    theta = [np.asarray(f.theta, float) for f in (fit_a, fit_b)]
    truth = log_m(theta[0], theta[1], sims[0][2], sims[1][2], C)  # (G,)
    if not np.isfinite(truth).any():
        raise ValueError("calibrate_multiplier: the fitted laws give no finite M at any compute value")
    est, lo, hi = {}, {}, {}
    # separate fits: full data, then R weighted refits a simulated sweep from its own full fit
    full, boot = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logN, logD, _, losses, kept, counts, fit in sims:
            th, ok = fit_simulated(fit, logN, logD, losses, kept, refine_iter=REFINE_ITER)
            th = np.where(ok[:, None], th, np.nan)
            W = (counts * kept[:, None, :]).reshape(S * R, -1)
            x0 = np.repeat(np.where(ok[:, None], th, np.asarray(fit.theta, float)), R, axis=0)
            tb, okb = fit_simulated(fit, logN, logD, np.repeat(losses, R, axis=0), W, x0=x0, refine_iter=REFINE_ITER)
            full.append(th)
            boot.append(np.where(okb[:, None], tb, np.nan).reshape(S, R, 5))
    ra, rb = sims[0][2], sims[1][2]
    est["separate"] = log_m(full[0], full[1], ra, rb, C)  # (S, G)
    lo["separate"], hi["separate"] = _percentile(log_m(boot[0], boot[1], ra, rb, C), level)
    if shared_x0 is not None and shared_scale is not None:
        scale = float(shared_scale)
        (nA, dA, _, lsA, kA, cA, _), (nB, dB, _, lsB, kB, cB, _) = sims
        la, lb = np.log(np.clip(lsA, 1e-12, None)), np.log(np.clip(lsB, 1e-12, None))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            xs = fit_shared_batch(
                np.tile(np.asarray(shared_x0, float), (S, 1)),
                (nA, dA, la),
                (nB, dB, lb),
                kA.astype(float),
                kB.astype(float),
                scale,
                REFINE_ITER,
            )
            x0 = np.repeat(np.where(np.isfinite(xs), xs, np.asarray(shared_x0, float)), R, axis=0)
            xb = fit_shared_batch(
                x0,
                (nA, dA, np.repeat(la, R, axis=0)),
                (nB, dB, np.repeat(lb, R, axis=0)),
                (cA * kA[:, None, :]).reshape(S * R, -1),
                (cB * kB[:, None, :]).reshape(S * R, -1),
                scale,
                REFINE_ITER,
            ).reshape(S, R, 7)
        n, p = len(runs_a) + len(runs_b), 7
        xb = xs[:, None, :] + (xb - xs[:, None, :]) * np.sqrt(n / (n - p))  # as shared_bootstrap widens it
        term = np.log(ra / rb)  # the FLOP conventions' term, as in ``log_m`` (each sweep's median C / 6ND)
        m_full = _shared_log_m(xs) + term
        est["shared"] = np.repeat(m_full[:, None], len(C), axis=1)
        s = np.repeat(_shared_log_m(xb)[:, :, None] + term, len(C), axis=2)
        lo["shared"], hi["shared"] = _percentile(s, level)
    rows, factors = [], {}
    f = np.where(np.isfinite(truth), widening(est["separate"], lo["separate"], hi["separate"], truth, level), 1.0)
    factors["separate-widened"] = [float(v) for v in f]
    lo["separate-widened"], hi["separate-widened"] = _widen(est["separate"], lo["separate"], hi["separate"], f)
    for m in METHODS:
        if m not in lo:
            continue
        cov, wid, cnt = _score(lo[m], hi[m], truth)
        for j, c in enumerate(C):
            rows.append(
                (m, float(c), bool(is_target[j]), float(np.exp(truth[j])), float(cov[j]), float(wid[j]), int(cnt[j]))
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    carried, why = choose(table, level, use_shared)
    cal = MultiplierCalibration(
        pair=pair,
        carried=carried,
        why=why,
        C=[float(c) for c in C],
        factors=factors,
        table=table,
        truth_M=[float(np.exp(v)) for v in truth],
        noise=[list(n) for n in noises],
        n_sims=S,
        n_resamples=R,
        seconds=time.perf_counter() - t0,
        level=level,
        key=key,
    )
    write_cached(path, cal)
    return cal


def choose(table: pd.DataFrame, level: float, use_shared: bool = True) -> tuple[str, str]:
    """(method carried, why): the narrowest of "separate"/"shared" covering level ± TOLERANCE at every target with
    a finite true M (the median of its median widths there), else "separate-widened". Where the true M is
    infinite at every target (B's frontier below A's fitted floor there), the in-range compute values decide instead."""
    t = table[table["target"] & np.isfinite(table["M_true"])]
    where = "target"
    if t.empty:
        t = table[~table["target"] & np.isfinite(table["M_true"])]
        where = "in-range compute value (the true M is infinite at every target)"
    band = f"{level - TOLERANCE:.0%}-{level + TOLERANCE:.0%}"

    def width(m):  # the median over the deciding compute values of the method's median width
        r = t[t["method"] == m]["median_width"].to_numpy(float)
        return float(np.median(np.where(np.isnan(r), np.inf, r))) if len(r) else np.inf

    plain = [m for m in ("separate", "shared") if (m != "shared" or use_shared) and (t["method"] == m).any()]
    ok = [m for m in plain if ((t[t["method"] == m]["coverage"] - level).abs() <= TOLERANCE + 1e-12).all()]
    if ok:
        m = min(ok, key=width)
        return m, f"the narrowest method whose simulated coverage is within {band} at every {where}"
    return "separate-widened", (
        f"no method covers {band} at every {where} on this pair's design, so the separate fits' interval scaled "
        "by the factor the simulation says it needs"
    )


# ----- applied to a comparison -------------------------------------------------------------------------------------


def calibrated_interval(cal: MultiplierCalibration, M, lo, hi) -> tuple[np.ndarray, np.ndarray]:
    """The interval (lo, hi) of M at ``cal.C`` scaled by the carried widened method's factors (unchanged for an
    unwidened method)."""
    M, lo, hi = (np.asarray(v, float) for v in (M, lo, hi))
    if not cal.carried.endswith("-widened"):
        return lo, hi
    f = np.asarray(cal.factors[cal.carried], float)
    with np.errstate(all="ignore"):
        w_lo, w_hi = _widen(np.log(M), np.log(lo), np.log(hi), f)
    return np.exp(w_lo), np.exp(w_hi)


def matched_interval(fa, fb, C, n_resamples: int, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The separate fits' interval of M at compute values ``C`` (grid points of frontiers ``fa``, ``fb``) computed
    as the simulation computes it, so that its widening factor applies: the percentile interval (``_percentile``)
    over the first ``n_resamples`` paired bootstrap resamples, not over all of compare's ``n_boot`` (the 5% and 95%
    quantiles of 40 samples sit inward of those of 1000, so a factor fitted on the first would over-widen the
    second)."""
    from analysis.compare.multiplier import multiplier_samples

    at = np.searchsorted(fa.grid, np.asarray(C, float))
    R = int(n_resamples)
    s = multiplier_samples(fa.grid, fa.boot_loss[:R], fb.boot_loss[:R], at)  # (R, G) ln M
    lo, hi = _percentile(s[None], level)
    return np.exp(lo[0]), np.exp(hi[0])


def carried_interval(cal: MultiplierCalibration, tab: pd.DataFrame, fa, fb, level: float):
    """(M, lo, hi) at ``tab["C"]`` of the method ``cal`` carries, from a pair's table and its Approach 3 frontiers:
    the shared law's or the separate fits' interval as compare computed it, or, for "separate-widened", the
    separate fits' interval over the first ``cal.n_resamples`` resamples (as the factor was fitted) widened, where a
    factor above 1 widens a finite estimate. Elsewhere (factor 1, an infinite estimate, no factor) nothing is scaled,
    so compare's own interval over all its resamples is carried: the one over the first 40 is only a noisier copy of
    it (on the Porian pair at 1e21, whose M is infinite, [32.3, inf] against compare's [4.44, inf] over 200)."""
    base = "shared" if cal.carried == "shared" else ""
    M = tab["M_shared" if base else "M"].to_numpy(float)
    cols = ("M_shared_lo", "M_shared_hi") if base else ("M_lo", "M_hi")
    lo, hi = tab[cols[0]].to_numpy(float), tab[cols[1]].to_numpy(float)
    if cal.carried.endswith("-widened") and fa.boot_loss is not None and fb.boot_loss is not None:
        f = np.broadcast_to(np.asarray(cal.factors[cal.carried], float), M.shape)
        with np.errstate(all="ignore"):
            scaled = (f > 1.0) & (np.abs(np.log(M)) < _BIG / 2)
        m_lo, m_hi = calibrated_interval(cal, M, *matched_interval(fa, fb, tab["C"], cal.n_resamples, level))
        return M, np.where(scaled, m_lo, lo), np.where(scaled, m_hi, hi)
    return M, lo, hi
