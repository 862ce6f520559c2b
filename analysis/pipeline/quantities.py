"""The quantities bootstrapped and calibrated for a fit, as picklable callables (bootstrap workers in other
processes unpickle them)."""

from __future__ import annotations

import numpy as np

from analysis.pipeline.result import num, qname


class AllocationQuantities:
    """What is bootstrapped for every approach: N_opt, D_opt, tokens per parameter and loss at each prediction
    budget and at each point of the band grid (in the sweep's FLOP convention), plus the result's own parameters
    (exponents, E, ...). A class, not a lambda, so that bootstrap workers in other processes can unpickle it."""

    def __init__(self, budgets, grid, ratio=None):
        self.cs = np.concatenate([np.asarray(budgets, float), np.asarray(grid, float)])
        self.ratio = ratio

    def __call__(self, fit) -> dict:
        from analysis.laws.conventions import in_convention

        a = in_convention(fit, self.ratio).compute_optimal(self.cs)
        out = {}
        for q in ("N_opt", "D_opt", "tokens_per_param", "loss"):
            v = np.broadcast_to(np.asarray(getattr(a, q, np.nan), dtype=float), self.cs.shape)
            out.update({qname(q, c): float(x) for c, x in zip(self.cs, v)})
        out.update({k: num(v) for k, v in fit.default_quantities().items()})
        return out


class CalibratedQuantities:
    """What the law calibration judges: a and N_opt (under C = 6ND, the law's own) at each report budget. Another
    quantity (the compute multiplier of ``analysis compare``) is calibrated by passing its own such function to
    ``law_calibration.calibrate_law``."""

    def __init__(self, budgets):
        self.budgets = tuple(float(b) for b in budgets)

    def __call__(self, fit) -> dict[str, float]:
        out = {"a": float(fit.a)}
        for b in self.budgets:
            out[qname("N_opt", b)] = float(np.asarray(fit.compute_optimal(b).N_opt))
        return out
