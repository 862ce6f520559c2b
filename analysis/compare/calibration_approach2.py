"""Approach 2's compute multiplier calibrated on the pair at hand (issue 20 item 4 for M): the M that compare's
headline carries when the rolling backtests choose Approach 2 (the IsoFLOP minima, the line N_opt(C), and the offset
power law L_opt(C) through the minimum losses), calibrated as ``calibration`` calibrates Approach 3's.

1. **Truth and noise: the same as Approach 3's calibration.** Each sweep's Approach 3 law (``cmp.frontiers
   ["approach3"]``) gives every run's true loss; each sweep's seed spread and stalled-run jump rate, every simulated
   sweep through the quality gate's stall rule (``parametric_check.simulate_losses``). The true M(C) is those two
   laws' M in the frame Approach 2 is fitted in: the runs' FLOPs as loaded, so compare's own M of the Approach 3
   frontiers (``truth``: the exact family conversion of N·D to C, the column M of Approach 3's table). Approach 3's
   calibration uses the closed form with each sweep's median C / 6ND instead (``calibration.log_m``, the default
   here without ``truth``), consistent there as its refits use that same constant; Approach 2's refits read the
   runs' real C, whose C / 6ND moves with N (2.0 to 8.8 on the GPT CPU sweep, median 3.0), and against the closed
   form they would show a bias of the frame, not of the estimator. The simulated pairs
   are drawn afresh (their own random stream), not the ones Approach 3's calibration refits.
2. **Refits, batched.** Every simulated sweep is refitted with Approach 2 on its kept runs and on ``n_resamples``
   resamples of them, drawn within each budget as compare's bootstrap draws them (each budget keeps its run
   count): one ``Approach2Result.refit_resamples`` call a simulated sweep (``analysis.fits.approach2_resamples``:
   the minima, lines and L_opt(C) of all its resamples at once, L_opt(C) by batched Levenberg-Marquardt). Each
   budget's minimum is by the estimator the simulated sweep's kept runs resolve ("auto": the local parabola below
   9 distinct sizes, the spline from 9), held for its resamples as the bootstrap's ``warm_start()`` holds it
   (``sweep_estimators``); budgets of many sizes (the Porian sweeps' 6-16) have their local parabola's window walk
   and GCV spline computed for all resamples at once too (``analysis.fits.minima_batched``, the same minima as
   ``estimate_minimum`` up to rounding). Only the estimators "cubic" and "akima" are not batched: there the
   calibration is refused before any simulation and compare says so.
3. **M of a fit**: from the two L_opt(C) laws, L = E + (x_c / C)^α, in closed form: ln M = ln x_c,A -
   ln(L_B(C) - E_A) / α_A - ln C, +inf where L_B(C) is at or below A's fitted floor E_A (compare reads the same off
   its grid).
4. **Methods**: "separate" (the percentile interval over the paired resamples, as compare's) and
   "separate-widened" (scaled about its estimate by max(1, the factor that makes it cover ``level`` of the
   simulated pairs, ``calibration.widening``), applied to the real pair's interval over its first ``n_resamples``
   resamples, ``calibration.matched_interval``; ``factors["needed"]`` keeps the simulation's factor before the
   max); the choice rule is ``calibration.choose`` without the shared law (a joint fit of Approach 3's form: it has
   no Approach 2 counterpart here).

**Bias.** Approach 2's L_opt(C) is another estimator of the frontier than the Approach 3 law that generates the
truth: a parabola's vertex through a few sizes of an asymmetric IsoFLOP curve is not the curve's minimum, and the
offset power law through the minima is not the law's L*(C), so the estimated M can sit off the truth on average.
The calibration records that bias (``bias``: the median over simulated pairs of ln(M_est / M_true) at every C) and
compare.md shows it. The widened interval is still carried where the plain one misses the band: unlike the shared
law (an optional alternative whose bias comes from an assumption the data reject, so ``calibration`` never widens
it), Approach 2 is the primary law and its interval must be carried by some method; the factor is fitted to the
whole error, bias included, so the widened interval covers at least ``level`` of pairs drawn from this truth, and
the recorded bias says how much of its width is a misplaced centre rather than noise. It widens only (factor >= 1,
so where the plain interval over-covers it over-covers still): where the bias is large the factor the simulation
asks for falls below 1 on the side away from the truth (on GPT vs Llama at 1e12, 0: the interval's lower end moved
up to the estimate, as the Approach 3 truth sits ~100x above it), and that narrowing would rest on the direction of
the bias under the generating law, not on the data.

Cached like Approach 3's (``multiplier-calibration-<key>.json``), the key including ``law="approach2"``.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings

import numpy as np
import pandas as pd

from analysis.compare.calibration import (
    COLUMNS,
    DEFAULT_RESAMPLES,
    DEFAULT_SIMS,
    MultiplierCalibration,
    _percentile,
    _score,
    _sweep_data,
    _widen,
    choose,
    log_m,
    read_cached,
    widening,
    write_cached,
)
from analysis.fits.approach2_resamples import BATCHED
from analysis.fits.minima import DEFAULT_ESTIMATOR, ESTIMATORS, resolve
from analysis.uncertainty.parametric_check import simulate_losses
from analysis.uncertainty.sim_keys import runs_key, simulation_seed
from analysis.uncertainty.sim_noise import noise_model

METHODS = ("separate", "separate-widened")
CHUNK = 25  # simulated sweeps refitted in one batched call
VERSION = 4  # part of the cache key: bump when the simulation changes (2: widen only; 3: seed without the truth;
# 4: budgets of many sizes calibrated, each simulated sweep's minima by the estimators its kept runs resolve)


def loss_laws(results) -> np.ndarray:
    """(len(results), 3) rows (E, ln x_c, α) of each Approach 2 result's L_opt(C); NaN where a refit failed or has
    no loss law."""
    out = np.full((len(results), 3), np.nan)
    for i, r in enumerate(results):
        law = getattr(r, "loss_law", None) if r is not None else None
        if law is not None and law.x_c > 0:
            out[i] = (law.E, np.log(law.x_c), law.alpha)
    return out


def log_m_approach2(pa, pb, C) -> np.ndarray:
    """ln M at compute values ``C`` from L_opt(C) rows (..., 3) = (E, ln x_c, α) of A and B (broadcast over leading
    axes; the result gets a last axis over C): +inf where B's loss is at or below A's floor, NaN where a law is
    missing or not decreasing."""
    lc = np.log(np.asarray(C, float))
    Ea, ka, aa = (np.asarray(pa, float)[..., i, None] for i in range(3))
    Eb, kb, ab = (np.asarray(pb, float)[..., i, None] for i in range(3))
    with np.errstate(all="ignore"):
        lb = Eb + np.exp(ab * (kb - lc))  # L_B(C)
        gap = lb - Ea
        out = ka - np.log(gap) / aa - lc
        out = np.where(gap <= 0, np.inf, out)
        bad = ~((aa > 0) & (ab > 0) & np.isfinite(lb) & np.isfinite(Ea) & np.isfinite(ka))
    return np.where(bad, np.nan, out)


def _stratified(groups: np.ndarray, kept: np.ndarray, R: int, rng) -> list[np.ndarray]:
    """R resamples (row positions) of the kept rows, drawn within each group as compare's bootstrap draws them."""
    members = [np.flatnonzero((groups == g) & kept) for g in np.unique(groups)]
    members = [m for m in members if len(m)]
    return [np.concatenate([m[rng.integers(0, len(m), len(m))] for m in members]) for _ in range(R)]


def sweep_estimators(fit2, groups: np.ndarray, N: np.ndarray, kept: np.ndarray) -> dict[float, str]:
    """Each budget's estimator for a simulated sweep's kept runs, as ``fit_approach2(kept runs)`` with the real fit's
    estimator resolves it ("auto": the spline from ``AUTO_SPLINE_SIZES`` distinct sizes, the local parabola below)
    and as its bootstrap's ``warm_start()`` then holds it for every resample; a real fit made with a mapping keeps
    its mapping."""
    est = getattr(fit2, "estimator", DEFAULT_ESTIMATOR)
    if est not in ESTIMATORS:
        return dict(fit2.warm_start()["estimator"])
    return {float(b): resolve(est, np.unique(N[(groups == b) & kept]).size) for b in np.unique(groups)}


def refit_sweeps(runs: pd.DataFrame, fit2, losses: np.ndarray, kept: np.ndarray, R: int, rng) -> np.ndarray:
    """(S, R + 1, 3) L_opt(C) rows of Approach 2 refitted on each simulated sweep's kept runs (index 0) and on R
    within-budget resamples of them, in batched ``refit_resamples`` calls of ``CHUNK`` sweeps, each budget's
    minimum by the estimator the sweep's kept runs resolve (``sweep_estimators``; the local parabola's window and
    the GCV spline batched too, ``analysis.fits.minima_batched``). Raises ``ValueError`` where the batched path
    does not apply (an estimator other than the parabolas and the spline)."""
    from analysis.fits.approach2 import isoflop_groups

    base = runs.reset_index(drop=True)
    cols = getattr(fit2, "columns", {}) or {}
    groups = isoflop_groups(base, cols.get("budget", "budget"), cols.get("C", "C")).to_numpy(float)
    loss_col = cols.get("loss", "loss")
    N = pd.to_numeric(base[cols.get("N", "N")], errors="coerce").to_numpy(float)
    S, n = len(losses), len(base)
    idx = [[np.flatnonzero(kept[s])] + _stratified(groups, kept[s], R, rng) for s in range(S)]
    how = [sweep_estimators(fit2, groups, N, kept[s]) for s in range(S)]
    out = np.full((S, R + 1, 3), np.nan)
    # sweeps whose budgets resolve the same estimators are refitted together, CHUNK at a time: their copies of the
    # design stacked as one table (each resample draws from its own copy), so the batched minima run once a chunk
    same: dict[tuple, list[int]] = {}
    for s in range(S):
        same.setdefault(tuple(sorted(how[s].items())), []).append(s)
    for members in same.values():
        for at in range(0, len(members), CHUNK):
            part = members[at : at + CHUNK]
            stack = pd.concat([base.assign(**{loss_col: losses[s]}) for s in part], ignore_index=True)
            rows = [i + j * n for j, s in enumerate(part) for i in idx[s]]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit2.refit_resamples(stack, rows, estimators=how[part[0]])
            if res is None:
                raise ValueError(
                    f"Approach 2's refits are not batched for its estimator {getattr(fit2, 'estimator', '?')!r} "
                    "(the parabolas and the spline are), so its M is not calibrated"
                )
            out[part] = loss_laws(res).reshape(len(part), R + 1, 3)
    return out


def calibrate_multiplier_approach2(
    runs_a: pd.DataFrame,
    runs_b: pd.DataFrame,
    fit3_a,
    fit3_b,
    fit2_a,
    fit2_b,
    C,
    targets,
    *,
    n_flagged=(0, 0),
    level: float = 0.9,
    n_sims: int = DEFAULT_SIMS,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int | None = None,
    pair: str = "B vs A",
    cache_dir=None,
    truth=None,
) -> MultiplierCalibration:
    """Calibrate Approach 2's M interval of one pair (see the module's docstring). ``fit3_*``: the sweeps' Approach
    3 fits (the truth: ``theta``, ``predict``); ``fit2_*``: their Approach 2 fits (refitted); ``C``: the compute
    values of the pair's table (as loaded), of which ``targets`` decide the choice; ``truth``: ln M of the two
    Approach 3 laws at ``C`` in the runs' FLOPs (None: the closed form at each sweep's median C / 6ND). Raises
    ``ValueError`` when the batched refits do not apply or the truth has no finite M."""
    if not (isinstance(n_sims, int) and n_sims >= 20):
        raise ValueError(f"calibrate_multiplier_approach2: n_sims={n_sims!r}; must be an integer >= 20")
    if not (isinstance(n_resamples, int) and n_resamples >= 10):
        raise ValueError(f"calibrate_multiplier_approach2: n_resamples={n_resamples!r}; must be an integer >= 10")
    C = np.asarray(C, float)
    is_target = np.isin(C, np.asarray(targets, float))
    settings = dict(
        law="approach2",
        level=level,
        n_sims=n_sims,
        n_resamples=n_resamples,
        seed=seed,
        C=[float(c) for c in C],
        targets=[float(c) for c in np.asarray(targets, float)],
        flagged=list(n_flagged),
        approach2_version=VERSION,
        truth=None if truth is None else [float(v) for v in np.asarray(truth, float)],
    )
    key = hashlib.sha256(
        (runs_key(runs_a) + runs_key(runs_b) + json.dumps(settings, sort_keys=True, default=str)).encode()
    ).hexdigest()[:20]
    path, cached = read_cached(cache_dir, key)
    if cached is not None:
        return cached
    for fit2 in (fit2_a, fit2_b):  # refuse before any compute where refits are not batched
        est = getattr(fit2, "estimator", DEFAULT_ESTIMATOR)
        named = fit2.warm_start()["estimator"].values() if est not in ESTIMATORS else (est,)
        if any(e not in BATCHED for e in named):
            raise ValueError(
                f"Approach 2's refits are not batched for its estimator {est!r} (the parabolas and the spline are), "
                "so its M is not calibrated"
            )
    t0 = time.perf_counter()
    S, R = n_sims, n_resamples
    both = pd.concat([runs_a[["N", "D", "loss"]], runs_b[["N", "D", "loss"]]], ignore_index=True)
    # the seed from the runs and settings, not the fitted truth (a fit's last digits differ between machines)
    rng = np.random.default_rng([simulation_seed(both, seed, **{k: v for k, v in settings.items() if k != "truth"}), 2])
    params, ratios, noises = [], [], []
    for runs, fit3, fit2, nf in ((runs_a, fit3_a, fit2_a, n_flagged[0]), (runs_b, fit3_b, fit2_b, n_flagged[1])):
        logN, _, budget, ratio = _sweep_data(runs)
        noise = noise_model(runs, nf)
        y_true = np.asarray(fit3.predict(runs["N"].to_numpy(float), runs["D"].to_numpy(float)), float)
        losses, kept = simulate_losses(y_true, logN, budget, noise, S, rng)
        params.append(refit_sweeps(runs, fit2, losses, kept, R, rng))
        ratios.append(ratio)
        noises.append((noise.seed_sd, noise.jump_rate))
    if truth is None:
        truth = log_m(np.asarray(fit3_a.theta, float), np.asarray(fit3_b.theta, float), ratios[0], ratios[1], C)
    truth = np.asarray(truth, float)
    if not np.isfinite(truth).any():
        raise ValueError("calibrate_multiplier_approach2: the fitted laws give no finite M at any compute value")
    est = log_m_approach2(params[0][:, 0], params[1][:, 0], C)  # (S, G)
    lo, hi = {}, {}
    lo["separate"], hi["separate"] = _percentile(log_m_approach2(params[0][:, 1:], params[1][:, 1:], C), level)
    need = np.where(np.isfinite(truth), widening(est, lo["separate"], hi["separate"], truth, level), 1.0)
    f = np.maximum(need, 1.0)  # widen only: a narrowing would rest on the bias's direction under Approach 3's truth
    lo["separate-widened"], hi["separate-widened"] = _widen(est, lo["separate"], hi["separate"], f)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        err = np.where(np.isfinite(est) & np.isfinite(truth), est - truth, np.nan)
        bias = np.nanmedian(err, axis=0)
    rows = []
    for m in METHODS:
        cov, wid, cnt = _score(lo[m], hi[m], truth)
        for j, c in enumerate(C):
            rows.append(
                (m, float(c), bool(is_target[j]), float(np.exp(truth[j])), float(cov[j]), float(wid[j]), int(cnt[j]))
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    carried, why = choose(table, level, use_shared=False)
    cal = MultiplierCalibration(
        pair=pair,
        carried=carried,
        why=why,
        C=[float(c) for c in C],
        factors={"separate-widened": [float(v) for v in f], "needed": [float(v) for v in need]},
        table=table,
        truth_M=[float(np.exp(v)) for v in truth],
        noise=[list(n) for n in noises],
        n_sims=S,
        n_resamples=R,
        seconds=time.perf_counter() - t0,
        level=level,
        key=key,
        law="approach2",
        bias=[float(v) for v in bias],
    )
    write_cached(path, cal)
    return cal
