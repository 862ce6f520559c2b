"""Tissue et al. 2024 ("Scaling Law with Learning Rate Annealing", arXiv:2408.11029, eq. 1), fitted to one curve:

    L(s) = L0 + A·S1(s)^-alpha - C·S2(s)

S1 the forward area and S2 the momentum-weighted annealing area with decay factor lambda (``analysis.curves.areas``).
For fixed alpha and lambda the law is linear in (L0, A, C), all non-negative, so the fit is variable projection:
non-negative least squares for those three at each alpha on a grid, then a bounded 1-D refinement of alpha, for each
lambda of a small grid. Residuals are relative (loss - prediction) / loss, as the authors' error measure. Deterministic,
milliseconds for a harness curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar, nnls

from analysis.curves.areas import annealing_area, forward_area
from analysis.curves.schedule import Curve, clean_curves

DECAYS = (0.99, 0.995, 0.999)  # lambda grid: Tissue et al. report 0.99-0.999 and fit with 0.999
ALPHA_RANGE = (0.02, 3.0)


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
