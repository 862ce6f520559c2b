"""Per-run curve fits under a Huber loss on log residuals, as Luo et al. 2025 fit the multi-power law (their released
code minimises sum huber_delta(log L_pred - log L), delta = 1e-3; arXiv:2503.12811 §4), instead of least squares on
relative residuals: residuals beyond delta count linearly, so a few noisy evaluations pull the fit less. An option of
the per-run fits (``predict.fit_curve(..., huber=delta)``), measured in RESULTS.md ("Loss-curve laws").

Tissue: variable projection as ``scaling.core.curve_law.fit_tissue_curves`` (L0, A, C >= 0 linear at fixed alpha
and lambda), each linear solve by iteratively reweighted non-negative least squares (Huber weights min(1, delta/|r|)
on the log residuals r), alpha chosen on the Huber objective. Multi-power: ``fit_multipower(..., huber=delta)``.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar, nnls

from scaling.core.curve_law import (
    ALPHA_RANGE,
    DECAYS,
    Curve,
    TissueFit,
    annealing_area,
    clean_curves,
    forward_area,
)

DELTA = 1e-3  # Luo et al.'s released code
IRLS_STEPS = 8


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """The Huber loss of residuals ``r``: r^2 / 2 within delta, delta (|r| - delta / 2) beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


def _solve(X: np.ndarray, loss: np.ndarray, delta: float) -> tuple[np.ndarray, float]:
    """(L0, A, C) >= 0 minimising the Huber loss of log residuals for the design ``X`` (columns 1, S1^-alpha, -S2)."""
    w = np.ones_like(loss)
    coef = np.zeros(X.shape[1])
    for _ in range(IRLS_STEPS):
        sw = np.sqrt(w)
        coef, _ = nnls(X / loss[:, None] * sw[:, None], sw)  # relative residuals ~ log residuals, weighted
        pred = X @ coef
        r = np.log(loss) - np.log(np.maximum(pred, 1e-12))
        w_new = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        if np.allclose(w_new, w, rtol=1e-3, atol=1e-6):
            break
        w = w_new
    r = np.log(loss) - np.log(np.maximum(X @ coef, 1e-12))
    return coef, float(huber(r, delta).sum())


def fit_tissue_huber(
    curves: list[Curve] | Curve, delta: float = DELTA, decays: tuple[float, ...] = DECAYS
) -> TissueFit:
    """The Tissue law fitted to one curve ``(eta, steps, loss)`` (or several of one model) under the Huber loss."""
    if not delta > 0:
        raise ValueError(f"delta={delta}: must be > 0")
    if isinstance(curves, tuple):
        curves = [curves]
    clean = clean_curves(list(curves), 5, "Tissue law")
    loss = np.concatenate([c[2] for c in clean])
    s1 = np.concatenate([forward_area(e, st) for e, st, _ in clean])
    if (s1 <= 0).any():
        raise ValueError("steps: every fitted step must follow at least one update with a positive rate")
    grid = np.geomspace(*ALPHA_RANGE, 40)
    best = None
    for decay in decays:
        s2 = np.concatenate([annealing_area(e, st, decay) for e, st, _ in clean])

        def obj(a: float, s2: np.ndarray = s2) -> float:
            return _solve(np.column_stack([np.ones_like(s1), s1 ** (-a), -s2]), loss, delta)[1]

        errs = [obj(a) for a in grid]
        i = int(np.argmin(errs))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(obj, bounds=(lo, hi), method="bounded")
        alpha = float(res.x) if res.fun <= errs[i] else float(grid[i])
        X = np.column_stack([np.ones_like(s1), s1 ** (-alpha), -s2])
        coef, cost = _solve(X, loss, delta)
        if best is None or cost < best[1]:
            rmse = float(np.sqrt(np.mean((1 - (X @ coef) / loss) ** 2)))
            best = (decay, cost, alpha, coef, rmse)
    assert best is not None
    decay, _, alpha, coef, rmse = best
    return TissueFit(float(coef[0]), float(coef[1]), alpha, float(coef[2]), decay, rmse, int(len(loss)))
