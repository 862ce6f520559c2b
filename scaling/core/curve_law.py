"""A torch-free loss-curve law for one run, shared by the trainer's early stop and the analysis (issue 18).

Tissue et al. 2024 ("Scaling Law with Learning Rate Annealing", arXiv:2408.11029, eq. 1):

    L(s) = L0 + A·S1(s)^-alpha - C·S2(s)

- Forward area S1(s) = sum_{i=1}^{s} eta_i, warmup included (Luo et al. 2025, arXiv:2503.12811, eq. 3's S1 + S_W).
- Annealing area (Tissue et al. eq. 1-2): m_i = lambda·m_{i-1} + (eta_{i-1} - eta_i), S2(s) = sum_{i=1}^{s} m_i, lambda
  the decay factor (0.999 in their fits, 0.99-0.999 reported to work). Decreases are counted after the schedule's
  peak only: warmup's increases are not annealing (Tissue et al. fit from the end of warmup).

``eta[i]`` is the rate of optimizer update ``i + 1``; ``steps`` are 1-based (the loss at step s follows updates
eta[:s]). For fixed alpha and lambda the law is linear in (L0, A, C), all non-negative, so the fit is variable
projection: non-negative least squares for those three at each alpha on a grid, then a bounded 1-D refinement of
alpha, for each lambda of a small grid. Residuals are relative (loss - prediction) / loss, as the authors' error
measure. Deterministic, milliseconds for a harness curve.

``bootstrap_end`` gives any per-run law's end point an interval (a moving-block bootstrap of its relative residuals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.optimize import minimize_scalar, nnls

Curve = tuple[np.ndarray, np.ndarray, np.ndarray]  # (eta, steps, loss): a run's rates and its logged losses
DECAYS = (0.99, 0.995, 0.999)  # lambda grid: Tissue et al. report 0.99-0.999 and fit with 0.999
ALPHA_RANGE = (0.02, 3.0)


def check_rates(eta: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``eta`` and ``steps`` as arrays; ValueError naming the field where they are not a schedule and its steps."""
    eta = np.asarray(eta, dtype=float)
    steps = np.asarray(steps, dtype=np.int64)
    if eta.ndim != 1 or len(eta) == 0 or not np.isfinite(eta).all() or (eta < 0).any():
        raise ValueError("eta: must be a non-empty 1-D array of finite non-negative learning rates")
    if len(steps) and (steps.min() < 1 or steps.max() > len(eta)):
        raise ValueError(
            f"steps: must lie in [1, {len(eta)}] (the schedule's updates), got {steps.min()}..{steps.max()}"
        )
    return eta, steps


def clean_curves(curves: list[Curve], min_points: int, law: str) -> list[Curve]:
    """The curves as arrays with their non-finite losses dropped; ValueError (naming the field) where steps and
    losses differ in length, fewer than ``min_points`` finite losses remain in all, or a loss is not positive."""
    out = []
    for eta, steps, loss in curves:
        steps = np.asarray(steps, dtype=np.int64)
        loss = np.asarray(loss, dtype=float)
        if len(steps) != len(loss):
            raise ValueError(f"steps ({len(steps)}) and loss ({len(loss)}): must have the same length")
        ok = np.isfinite(loss)
        out.append((np.asarray(eta, dtype=float), steps[ok], loss[ok]))
    n = sum(len(c[2]) for c in out)
    if n < min_points:
        raise ValueError(f"loss: {n} finite points; the {law} needs at least {min_points}")
    if any((c[2] <= 0).any() for c in out):
        raise ValueError("loss: must be positive")
    return out


def decreases(eta: np.ndarray) -> np.ndarray:
    """eta_{i-1} - eta_i for every update i (0 for the first), counted only after the schedule's first peak."""
    eta = np.asarray(eta, dtype=float)
    d = np.zeros_like(eta)
    d[1:] = eta[:-1] - eta[1:]
    d[: int(np.argmax(eta)) + 1] = 0.0
    return d


def forward_area(eta: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """S1 at each step."""
    eta, steps = check_rates(eta, steps)
    return np.cumsum(eta)[steps - 1]


def annealing_area(eta: np.ndarray, steps: np.ndarray, decay: float = 0.999) -> np.ndarray:
    """Tissue et al.'s S2 at each step, with momentum decay factor ``decay`` (lambda)."""
    eta, steps = check_rates(eta, steps)
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"decay={decay}: must be in [0, 1)")
    d = decreases(eta)
    # m_i = lambda m_{i-1} + d_i, a first-order linear filter; closed form via the scaled cumulative sum (stable for
    # the run lengths here: lambda^-n would overflow past ~7e5 steps at 0.999, so filter in blocks)
    m = np.empty_like(d)
    acc = 0.0
    block = 4096
    for a in range(0, len(d), block):
        seg = d[a : a + block]
        p = decay ** np.arange(1, len(seg) + 1)
        m[a : a + block] = p * (acc + np.cumsum(seg / p))
        acc = m[a + len(seg) - 1]
    return np.cumsum(m)[steps - 1]


def annealing_shares(eta: np.ndarray, decays: tuple[float, ...] = DECAYS) -> np.ndarray:
    """For every step s (index s - 1): S2(s) over S2 at the run's last update, the lowest over ``decays`` (whichever
    lambda a fit picks): the share of the run's annealing the curve up to s has seen. The law's annealing term is only
    identified from points that saw some of it (a WSD run before its cooldown has S2 = 0 everywhere, so C = 0 and the
    extrapolated end misses the cooldown's drop). 1 everywhere for a schedule that never decays."""
    eta, _ = check_rates(eta, np.array([], dtype=np.int64))
    out = np.ones(len(eta))
    every = np.arange(1, len(eta) + 1)
    for decay in decays:
        s2 = annealing_area(eta, every, decay)
        if s2[-1] > 0:
            out = np.minimum(out, s2 / s2[-1])
    return out


MIN_ANNEAL_SHARE = 0.5  # of the end's annealing area a curve must have seen before an early-stop decision


def decision_ready(shares: np.ndarray, step: int, n_steps: int, frac: float) -> bool:
    """Whether the evaluation at ``step`` (1-based) of a run of ``n_steps`` updates may decide an early stop: at or
    past ``frac`` of the steps, before the end, and with at least ``MIN_ANNEAL_SHARE`` of the run's annealing area
    seen (``shares``: ``annealing_shares`` of its rates). The trainer's rule and its replay on a finished sweep."""
    return frac * n_steps <= step < n_steps and float(shares[step - 1]) >= MIN_ANNEAL_SHARE


@dataclass(frozen=True)
class TissueFit:
    L0: float
    A: float
    alpha: float
    C: float
    decay: float
    rmse_rel: float  # root mean square relative residual on the fitted points
    n_points: int

    name = "tissue"

    @property
    def params(self) -> dict[str, float]:
        return {"L0": self.L0, "A": self.A, "alpha": self.alpha, "C": self.C, "lambda": self.decay}

    def predict(self, eta: np.ndarray, steps: np.ndarray) -> np.ndarray:
        """The law's loss at ``steps`` of a run trained with rates ``eta`` (any schedule, any length)."""
        s1 = forward_area(eta, steps)
        s2 = annealing_area(eta, steps, self.decay)
        return self.L0 + self.A * s1 ** (-self.alpha) - self.C * s2


def _solve(s1: np.ndarray, s2: np.ndarray, loss: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    X = np.column_stack([np.ones_like(s1), s1 ** (-alpha), -s2]) / loss[:, None]
    coef, rnorm = nnls(X, np.ones_like(loss))
    return coef, float(rnorm)


def fit_tissue(eta: np.ndarray, steps: np.ndarray, loss: np.ndarray, decays: tuple[float, ...] = DECAYS) -> TissueFit:
    """Fit the law to the losses ``loss`` logged at ``steps`` of a run trained with rates ``eta``."""
    return fit_tissue_curves([(eta, steps, loss)], decays)


def fit_tissue_curves(curves: list[Curve], decays: tuple[float, ...] = DECAYS) -> TissueFit:
    """Fit one set of parameters to several curves of one model, each ``(eta, steps, loss)`` under its schedule."""
    clean = clean_curves(curves, 5, "Tissue law")
    loss = np.concatenate([c[2] for c in clean])
    s1 = np.concatenate([forward_area(e, st) for e, st, _ in clean])
    if (s1 <= 0).any():
        raise ValueError("steps: every fitted step must follow at least one update with a positive rate")
    best: tuple[float, float, float, np.ndarray] | None = None
    grid = np.geomspace(*ALPHA_RANGE, 40)
    for decay in decays:
        s2 = np.concatenate([annealing_area(e, st, decay) for e, st, _ in clean])
        errs = [_solve(s1, s2, loss, a)[1] for a in grid]
        i = int(np.argmin(errs))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(lambda a, s2=s2: _solve(s1, s2, loss, a)[1], bounds=(lo, hi), method="bounded")
        alpha = float(res.x) if res.fun <= errs[i] else float(grid[i])
        coef, rnorm = _solve(s1, s2, loss, alpha)
        if best is None or rnorm < best[1]:
            best = (decay, rnorm, alpha, coef)
    assert best is not None
    decay, rnorm, alpha, coef = best
    return TissueFit(
        float(coef[0]), float(coef[1]), alpha, float(coef[2]), decay, rnorm / np.sqrt(len(loss)), int(len(loss))
    )


def after_warmup(eta: np.ndarray, steps: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points logged after the schedule's first peak (neither law describes warmup)."""
    peak = int(np.argmax(eta)) + 1
    keep = (np.asarray(steps) > peak) & np.isfinite(loss)
    return np.asarray(steps)[keep], np.asarray(loss, dtype=float)[keep]


def bootstrap_end(
    fit: Callable[[np.ndarray, np.ndarray, np.ndarray], Any],
    eta: np.ndarray,
    steps: np.ndarray,
    loss: np.ndarray,
    n_boot: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> tuple[float, float, float]:
    """A law's loss at the run's last update from the points ``(steps, loss)`` and a ``level`` interval: a
    moving-block bootstrap of the fit's relative residuals (blocks of ~sqrt(n) points keep their serial
    correlation), refitted ``n_boot`` times. ``fit(eta, steps, loss)`` returns an object with ``predict(eta, steps)``
    (e.g. ``fit_tissue``). With ``n_boot=0`` the interval is NaN."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level}: must be in (0, 1)")
    if n_boot < 0:
        raise ValueError(f"n_boot={n_boot}: must be >= 0")
    eta = np.asarray(eta, dtype=float)
    s, y = np.asarray(steps, dtype=np.int64), np.asarray(loss, dtype=float)
    end = np.array([len(eta)])
    f = fit(eta, s, y)
    pred = f.predict(eta, s)
    point = float(f.predict(eta, end)[0])
    if n_boot == 0:
        return point, float("nan"), float("nan")
    r = y / pred - 1.0
    n = len(r)
    b = max(1, int(round(np.sqrt(n))))
    rng = np.random.default_rng(seed)
    ends = []
    for _ in range(n_boot):
        idx = np.concatenate([np.arange(i, i + b) for i in rng.integers(0, n - b + 1, size=n // b + 1)])[:n]
        ends.append(float(fit(eta, s, pred * (1.0 + r[idx])).predict(eta, end)[0]))
    lo, hi = np.quantile(ends, [(1 - level) / 2, (1 + level) / 2])
    return point, float(lo), float(hi)


def tissue_end(
    eta: np.ndarray, steps: np.ndarray, loss: np.ndarray, upto: int | None = None, n_boot: int = 50, seed: int = 0
) -> tuple[float, float, float]:
    """The Tissue law's end point with a 90% interval from the points after warmup (and at or before ``upto``): what
    the trainer's early stop extrapolates from the part of a run trained so far."""
    s, y = after_warmup(eta, steps, loss)
    if upto is not None:
        s, y = s[s <= upto], y[s <= upto]
    return bootstrap_end(fit_tissue, eta, s, y, n_boot=n_boot, seed=seed)
