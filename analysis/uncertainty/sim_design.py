"""A sweep's exact design as the calibration simulates it (``SimDesign``, ``sim_design``): its budgets and sizes, a
generator of each budget's IsoFLOP curve centred on the sweep's own Approach 2 line (the shape of its Approach 3 law,
or a parabola), the sweep's noise (analysis/uncertainty/sim_noise.py), and each simulated sweep through the quality
gate's stall rule. The generator is described in analysis/uncertainty/calibration.py's docstring."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from analysis.data.quality import stalled_positions
from analysis.uncertainty.sim_noise import NoiseModel, noise_model


@dataclass(frozen=True)
class _Budget:
    log_c: float  # ln of the geometric mean of the budget's C (as loaded)
    x: np.ndarray  # ln N of every run in the design (sorted)
    x_star: float  # the generator's minimum: the Approach 2 line at log_c
    m: float  # the generator's scale at the minimum (m_b; the parabola's p2 in the fallback)
    level: float  # loss at the minimum (only for realism: the estimators and the gate are level-free)


def _generator(runs, a2, law) -> tuple[list[_Budget], str]:
    """The simulated sweep's budgets: design, true minimum on the Approach 2 line, and the curve's scale."""
    used = a2.per_budget[a2.per_budget["used"]]
    slope, icpt = np.polyfit(np.log(used["C"].to_numpy(float)), np.log(used["N_opt"].to_numpy(float)), 1)
    shape = "approach3"
    if law is None or not (0.02 < law.alpha < 3 and 0.02 < law.beta < 3):
        shape = "parabola"
    p2 = used["p2"].to_numpy(float)
    p2_med = float(np.median(p2[p2 > 0])) if (p2 > 0).any() else 0.05
    out = []
    for b, g in runs.groupby("budget"):
        if not np.isclose(used["budget"], b, rtol=1e-9).any():
            continue
        log_c = float(np.log(g["C"].to_numpy(float)).mean())
        x = np.sort(np.log(g["N"].to_numpy(float)))
        x_star = icpt + slope * log_c
        if shape == "approach3":
            lA, lB, al, be = law.log_params[1], law.log_params[2], law.alpha, law.beta
            log_k = float(np.log(g["N"].to_numpy(float) * g["D"].to_numpy(float)).mean())  # N·D at this budget
            x3 = (math.log(al) + lA - math.log(be) - lB + be * log_k) / (al + be)  # the law's own minimum
            m = math.exp(math.log(al) + lA - al * x3)
        else:
            m = p2_med
        out.append(_Budget(log_c, x, x_star, m, float(g["loss"].min())))
    desc = (
        f"Approach 3's IsoFLOP shape (alpha {law.alpha:.3g}, beta {law.beta:.3g}) centred on the Approach 2 line"
        if shape == "approach3"
        else f"parabolas of curvature {p2_med:.3g} (median of the budgets') centred on the Approach 2 line"
    )
    return out, desc


def _curve(bud: _Budget, x: np.ndarray, shape_law) -> np.ndarray:
    u = x - bud.x_star
    if shape_law is None:
        return bud.level + bud.m * u * u
    al, be = shape_law
    return bud.level + bud.m * (np.expm1(-al * u) / al + np.expm1(be * u) / be)


def _simulate(budgets, shape_law, noise: NoiseModel, rng) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """One simulated sweep after the quality gate's stall rule (``quality.stalled_positions``, the rule
    ``load_runs`` applies; the other checks, diverged and short, cannot fire on a simulated loss): (log C, ln N,
    loss) of every budget."""
    out = []
    for b in budgets:
        y = _curve(b, b.x, shape_law) + noise.seed_sd * rng.standard_normal(b.x.size)
        j = rng.random(b.x.size) < noise.jump_rate
        if j.any():
            y = y + j * rng.uniform(noise.jump_lo, noise.jump_hi, b.x.size)
        flagged = [p for p, *_ in stalled_positions(b.x, y)]
        if flagged:
            keep = np.setdiff1d(np.arange(b.x.size), flagged)
            out.append((b.log_c, b.x[keep], y[keep]))
        else:
            out.append((b.log_c, b.x, y))
    return out


@dataclass(frozen=True)
class SimDesign:
    """A sweep's exact design with the generator and noise the calibration simulates it from."""

    budgets: list
    shape_law: tuple | None  # (alpha, beta) of the Approach 3 shape, None for the parabola generator
    noise: NoiseModel
    generator: str

    def truth(self, targets) -> np.ndarray:
        """The simulation's truth: a, then ln N_opt at each target, on the line through the budgets' true minima."""
        lc, xs = [b.log_c for b in self.budgets], [b.x_star for b in self.budgets]
        a, c = np.polyfit(lc, xs, 1)
        return np.array([a, *(c + a * np.log(np.atleast_1d(np.asarray(targets, float))))])

    def simulate(self, rng) -> list:
        return _simulate(self.budgets, self.shape_law, self.noise, rng)

    def recentred(self, slope: float, icpt: float) -> SimDesign:
        """The same design with every budget's true minimum on the line ln N* = icpt + slope ln C (the fast double
        bootstrap's second level: a simulated sweep's own line as the truth)."""
        return replace(self, budgets=[replace(b, x_star=icpt + slope * b.log_c) for b in self.budgets])


def sim_design(runs: pd.DataFrame, a2, law=None, n_flagged: int = 0, jump=(0.15, 0.25)) -> SimDesign:
    """The design the calibration simulates: ``runs``' budgets and sizes, the generator of ``_generator`` (from the
    Approach 2 fit ``a2`` and the Approach 3 fit ``law``) and the noise of ``noise_model``."""
    budgets, generator = _generator(runs, a2, law)
    if len(budgets) < 3:
        raise ValueError(f"calibrate_approach2: {len(budgets)} budget(s) with a minimum; the t interval needs >= 3")
    shape_law = (law.alpha, law.beta) if generator.startswith("Approach 3") else None
    return SimDesign(budgets, shape_law, noise_model(runs, n_flagged, *jump), generator)
