"""The schedule functionals the loss-curve laws are written in, evaluated at the logged steps of a curve.

``eta[i]`` is the rate of update ``i + 1``; ``steps`` are 1-based (the loss at step s follows updates eta[:s]).

- Forward area (Tissue et al. 2024, arXiv:2408.11029, eq. 1; Luo et al. 2025, arXiv:2503.12811, eq. 3):
  S1(s) = sum_{i=1}^{s} eta_i, warmup included (Luo et al.'s S1 + S_W).
- Annealing area (Tissue et al. 2024 eq. 1-2): m_i = lambda·m_{i-1} + (eta_{i-1} - eta_i), S2(s) = sum_{i=1}^{s} m_i,
  lambda the decay factor (0.999 in their fits, 0.99-0.999 reported to work). The decreases are counted after the
  schedule's peak only: warmup's increases are not annealing (Tissue et al. fit from the end of warmup).
- Multi-power loss drop (Luo et al. 2025 eq. 3): LD(t) = B sum_{k=1}^{t} (eta_{k-1} - eta_k)·G(eta_k^-gamma·S_k(t)),
  S_k(t) = sum_{tau=k}^{t} eta_tau, G(x) = 1 - (C·x + 1)^-beta; decreases after the peak only, as for S2.
"""

from __future__ import annotations

import numpy as np

# S1, S2 and the decreases are the core's (the trainer's early stop fits the Tissue law too)
from scaling.core.curve_law import annealing_area, check_rates, decreases, forward_area

__all__ = ["annealing_area", "decreases", "forward_area", "loss_drop", "loss_drop_kernel"]


def loss_drop_kernel(eta: np.ndarray, steps: np.ndarray, block: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the multi-power loss drop needs, independent of its parameters: for each decrease block k and step t,
    the decrease d_k, eta_k and S_k(t) (0 where k > t). Decreases are grouped into blocks of ``block`` updates
    (their sum, at the block's last update) to bound the cost on long schedules; ``block=1`` is exact."""
    eta, steps = check_rates(eta, steps)
    if block < 1:
        raise ValueError(f"block={block}: must be >= 1")
    d = decreases(eta)
    cum = np.cumsum(eta)
    nz = np.flatnonzero(d)
    if len(nz) == 0:
        z = np.zeros((len(steps), 0))
        return np.zeros(0), np.zeros(0), z
    if block > 1:
        groups = nz // block
        ends = np.r_[np.flatnonzero(np.diff(groups) != 0), len(nz) - 1]
        starts = np.r_[0, ends[:-1] + 1]
        dk = np.add.reduceat(d[nz], starts)
        k = nz[ends]
    else:
        dk = d[nz]
        k = nz
    etak = eta[k]
    # S_k(t) = sum_{tau=k}^{t} eta_tau = cum[t-1] - cum[k-1] with k 1-based = index+1
    before = np.where(k > 0, cum[k - 1], 0.0)
    sk = cum[steps - 1][:, None] - before[None, :]
    sk = np.where(k[None, :] <= steps[:, None] - 1, sk, -1.0)  # -1 marks k after t
    return dk, etak, sk


def loss_drop(kernel: tuple[np.ndarray, np.ndarray, np.ndarray], C: float, beta: float, gamma: float) -> np.ndarray:
    """sum_k d_k G(eta_k^-gamma S_k(t)) at each step (the multi-power LD without its factor B)."""
    dk, etak, sk = kernel
    if len(dk) == 0:
        return np.zeros(sk.shape[0])
    x = np.where(sk >= 0, sk, 0.0) * etak[None, :] ** (-gamma)
    g = 1.0 - (C * x + 1.0) ** (-beta)
    return (g * dk[None, :]).sum(axis=1)
