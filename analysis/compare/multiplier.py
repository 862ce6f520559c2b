"""The compute multiplier M(C) = C_A(L_B(C)) / C: how many times C recipe A needs to reach the loss recipe B reaches
with C (M > 1: B is better), from two frontiers on one compute grid, with percentile intervals from the joint
bootstrap (resample r of A paired with resample r of B; the sweeps' runs are independent, so this is a bootstrap over
the runs of both sweeps at once), and the same in wall-clock time from each sweep's measured throughput.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd


def compute_to_reach(grid, loss_a, target_loss):
    """log C at which frontier ``loss_a`` (along ``grid``, FLOPs) reaches ``target_loss``: +inf where the loss lies
    below the frontier's lowest value on the grid (A cannot reach it there), -inf above its highest, NaN for NaN.
    The frontier is made non-increasing first (the best loss reachable with at most C)."""
    la = np.asarray(loss_a, float)
    t = np.asarray(target_loss, float)
    if not np.isfinite(la).all():
        return np.full(t.shape, np.nan)
    mono = np.minimum.accumulate(la)
    lc = np.log(np.asarray(grid, float))
    # np.interp needs increasing x: walk the frontier from its lowest loss (largest C) up
    x, y = mono[::-1], lc[::-1]
    x, keep = np.unique(x, return_index=True)
    y = y[keep]
    out = np.interp(t, x, y)
    out = np.where(t < x[0], np.inf, out)
    out = np.where(t > x[-1], -np.inf, out)
    return np.where(np.isfinite(t), out, np.nan)


def log_multiplier(grid, loss_a, loss_b, at):
    """ln M at grid positions ``at`` from one pair of frontiers."""
    grid = np.asarray(grid, float)
    return compute_to_reach(grid, loss_a, np.asarray(loss_b, float)[at]) - np.log(grid[at])


def multiplier_samples(grid, boot_a, boot_b, at) -> np.ndarray:
    """ln M at ``at`` for each paired resample: (R, len(at)); NaN where either fit failed."""
    R = min(len(boot_a), len(boot_b))
    out = np.full((R, len(at)), np.nan)
    for r in range(R):
        out[r] = log_multiplier(grid, boot_a[r], boot_b[r], at)
    return out


def _quantiles(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of ln M samples; ±inf samples (B's loss beyond A's frontier) count as ±inf, not NaN."""
    q = (1 - level) / 2
    big = 1e6
    s = np.clip(samples, -big, big)  # NaN stays NaN: a failed fit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanquantile(s, q, axis=0), np.nanquantile(s, 1 - q, axis=0)
    fix = lambda v: np.where(v >= big / 2, np.inf, np.where(v <= -big / 2, -np.inf, v))  # noqa: E731
    return fix(lo), fix(hi)


def multiplier_table(fa, fb, at, level: float, throughput_ratio=None) -> pd.DataFrame:
    """One row a compute value grid[at]: M with its interval, and (when ``throughput_ratio`` = (point, samples) of
    FLOP/s of B over FLOP/s of A is given) the wall-clock multiplier M_time = M x that ratio with its interval."""
    grid = fa.grid
    lm = log_multiplier(grid, fa.loss, fb.loss, at)
    rows = pd.DataFrame({"C": grid[at], "loss_B": fb.loss[at], "M": np.exp(lm)})
    if fa.boot_loss is not None and fb.boot_loss is not None:
        s = multiplier_samples(grid, fa.boot_loss, fb.boot_loss, at)
        lo, hi = _quantiles(s, level)
        rows["M_lo"], rows["M_hi"] = np.exp(lo), np.exp(hi)
        rows["n_valid"] = np.isfinite(s).sum(axis=0)
    else:
        s = None
        rows["M_lo"] = rows["M_hi"] = np.nan
        rows["n_valid"] = 0
    if throughput_ratio is not None:
        tr, tr_s = throughput_ratio
        rows["M_time"] = rows["M"] * tr
        if s is not None and tr_s is not None:
            ts = s + np.log(tr_s[: len(s), None])
            lo, hi = _quantiles(ts, level)
            rows["M_time_lo"], rows["M_time_hi"] = np.exp(lo), np.exp(hi)
        else:
            rows["M_time_lo"] = rows["M_time_hi"] = np.nan
    return rows


def flops_per_second(runs: pd.DataFrame) -> np.ndarray:
    """Each run's measured training FLOP/s (C / wall seconds); empty when the runs record no wall time."""
    if "wall_seconds" not in runs.columns:
        return np.array([])
    w = pd.to_numeric(runs["wall_seconds"], errors="coerce").to_numpy(float)
    c = runs["C"].to_numpy(float)
    ok = np.isfinite(w) & (w > 0)
    return c[ok] / w[ok]


def throughput_ratio(runs_a: pd.DataFrame, runs_b: pd.DataFrame, n_boot: int, seed: int):
    """(median FLOP/s of B / median FLOP/s of A, its bootstrap samples or None), or None without wall times.
    Medians over runs, so one slow run (a shared machine) does not set the ratio."""
    ta, tb = flops_per_second(runs_a), flops_per_second(runs_b)
    if len(ta) == 0 or len(tb) == 0:
        return None
    point = float(np.median(tb) / np.median(ta))
    if not n_boot:
        return point, None
    rng = np.random.default_rng(seed + 7919)
    ma = np.median(ta[rng.integers(0, len(ta), (n_boot, len(ta)))], axis=1)
    mb = np.median(tb[rng.integers(0, len(tb), (n_boot, len(tb)))], axis=1)
    return point, mb / ma


def trend(fa, fb, i_lo: int, i_hi: int, level: float) -> dict:
    """How M changes with C across the sweeps' range: d ln M / d ln C between grid points i_lo and i_hi, with
    its interval (0: constant multiplier)."""
    grid = fa.grid
    at = np.array([i_lo, i_hi])
    span = np.log(grid[i_hi] / grid[i_lo])
    lm = log_multiplier(grid, fa.loss, fb.loss, at)
    out = dict(C_lo=float(grid[i_lo]), C_hi=float(grid[i_hi]), slope=float((lm[1] - lm[0]) / span))
    if fa.boot_loss is not None and fb.boot_loss is not None:
        s = multiplier_samples(grid, fa.boot_loss, fb.boot_loss, at)
        d = (s[:, 1] - s[:, 0]) / span
        d = d[np.isfinite(d)]
        q = (1 - level) / 2
        out["lo"], out["hi"] = (float(np.quantile(d, q)), float(np.quantile(d, 1 - q))) if len(d) else (np.nan,) * 2
    return out


def crossings(fa, fb, lo: float, hi: float) -> list[tuple[float, bool]]:
    """Compute values where the two point frontiers cross on the grid: (C, inside [lo, hi] = the runs' range)."""
    d = fa.loss - fb.loss
    out = []
    for i in range(len(d) - 1):
        if np.isfinite(d[i]) and np.isfinite(d[i + 1]) and d[i] * d[i + 1] < 0:
            f = d[i] / (d[i] - d[i + 1])
            c = float(np.exp(np.log(fa.grid[i]) + f * np.log(fa.grid[i + 1] / fa.grid[i])))
            out.append((c, lo <= c <= hi))
    return out
