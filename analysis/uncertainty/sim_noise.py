"""The loss noise of a sweep's runs as the calibrations simulate it (``NoiseModel``): the seed spread measured about
each budget's parabola and the rate of runs that end far above their neighbours, from the runs the quality gate
flagged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

JUMP_PRIOR_RUNS = 20  # the Beta(1, 19) prior on the jump rate: worth 20 runs at 1 in 20


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
