"""Luo et al. 2025 ("A Multi-Power Law for Loss Curve Prediction Across Learning Rate Schedules", arXiv:2503.12811,
eq. 3), fitted to one curve (or several curves of one model trained under different schedules):

    L(t) = L0 + A·(S1(t) + S_W)^-alpha - LD(t)
    LD(t) = B·sum_{k=1}^{t} (eta_{k-1} - eta_k)·G(eta_k^-gamma·S_k(t)),  G(x) = 1 - (C·x + 1)^-beta,
    S_k(t) = sum_{tau=k}^{t} eta_tau

S1 + S_W is the forward area with warmup included (``analysis.curves.areas``). Seven parameters, fitted by
bounded least squares on relative residuals from a few starts (the first from a Tissue fit of the same curves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from analysis.curves.areas import annealing_area, forward_area, loss_drop, loss_drop_kernel
from analysis.curves.schedule import Curve, clean_curves
from analysis.curves.tissue import fit_tissue_curves

C_STARTS = (0.3, 3.0, 30.0)


@dataclass(frozen=True)
class MultiPowerFit:
    L0: float
    A: float
    alpha: float
    B: float
    C: float
    beta: float
    gamma: float
    rmse_rel: float
    n_points: int
    block: int = 1  # decreases grouped into blocks of this many updates (1: exact)

    name = "multipower"

    @property
    def params(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in ("L0", "A", "alpha", "B", "C", "beta", "gamma")}

    def predict(self, eta: np.ndarray, steps: np.ndarray) -> np.ndarray:
        s1 = forward_area(eta, steps)
        kern = loss_drop_kernel(eta, steps, self.block)
        return self.L0 + self.A * s1 ** (-self.alpha) - self.B * loss_drop(kern, self.C, self.beta, self.gamma)


def fit_multipower(
    curves: list[Curve] | Curve,
    block: int = 1,
    starts: tuple[float, ...] = C_STARTS,
    max_nfev: int = 200,
    huber: float | None = None,
) -> MultiPowerFit:
    """Fit one set of parameters to one curve ``(eta, steps, loss)`` or to a list of curves of the same model.
    ``huber=delta``: minimise the Huber loss of the log residuals instead (``analysis.curves.huber``)."""
    if huber is not None and not huber > 0:
        raise ValueError(f"huber={huber}: must be > 0 (or None: least squares)")
    if isinstance(curves, tuple):
        curves = [curves]
    curves = clean_curves(list(curves), 8, "multi-power law")
    s1 = [forward_area(eta, steps) for eta, steps, _ in curves]
    kern = [loss_drop_kernel(eta, steps, block) for eta, steps, _ in curves]
    loss = np.concatenate([c[2] for c in curves])

    def model(p: np.ndarray) -> np.ndarray:
        L0, logA, alpha, logB, logC, beta, gamma = p
        parts = [
            L0 + np.exp(logA) * a ** (-alpha) - np.exp(logB) * loss_drop(k, np.exp(logC), beta, gamma)
            for a, k in zip(s1, kern)
        ]
        return np.concatenate(parts)

    def resid(p: np.ndarray) -> np.ndarray:
        if huber is not None:
            return np.log(loss) - np.log(np.maximum(model(p), 1e-12))
        return (loss - model(p)) / loss

    # starts from the Tissue law fitted to the same points (its L0, A, alpha), B sized so that the loss drop at the
    # last point matches the Tissue annealing term there, over a few C (the drop's time scale)
    t = fit_tissue_curves(curves)
    eta0, steps0, _ = curves[0]
    tissue_drop = max(t.C * float(annealing_area(eta0, steps0[-1:], t.decay)[0]), 1e-4 * float(loss.min()))
    lo = [0.0, -30, 0.01, -30, -30, 0.01, 0.0]
    hi = [float(loss.max()), 30, 3.0, 30, 30, 3.0, 2.0]  # L0 is no floor: annealing ends below it
    best = None
    for c0 in starts:
        ld = float(loss_drop(kern[0], c0, 0.6, 0.6)[-1])
        B0 = tissue_drop / ld if ld > 0 else 1.0
        p0 = np.array([min(t.L0, 0.99 * loss.max()), np.log(max(t.A, 1e-6)), t.alpha, np.log(B0), np.log(c0), 0.6, 0.6])
        p0 = np.clip(p0, np.array(lo) + 1e-9, np.array(hi) - 1e-9)
        robust = dict(loss="huber", f_scale=huber) if huber is not None else {}
        r = least_squares(resid, p0, bounds=(lo, hi), x_scale="jac", max_nfev=max_nfev, **robust)
        if best is None or r.cost < best.cost:
            best = r
        if np.sqrt(2 * best.cost / len(loss)) < 1e-9:  # an exact curve: no other start can do better
            break
    assert best is not None
    L0, logA, alpha, logB, logC, beta, gamma = best.x
    rmse = float(np.sqrt(np.mean(((loss - model(best.x)) / loss) ** 2)))
    return MultiPowerFit(
        float(L0),
        float(np.exp(logA)),
        float(alpha),
        float(np.exp(logB)),
        float(np.exp(logC)),
        float(beta),
        float(gamma),
        rmse,
        int(len(loss)),
        block,
    )
