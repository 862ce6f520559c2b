"""Kaplan et al. 2020's forms (arXiv:2001.08361): L(N), L(D), L(C) as power laws with an offset (eq. 1.1-1.3)
on the lower envelopes of the runs, and the joint L(N, D) of eq. 1.5 on every run, by a Huber loss on log L (robust to
the stalled runs the quality gate misses) unless asked for least squares."""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from analysis.data.columns import FitError, conventions, take, unique_index
from analysis.fits.approach1 import frontier
from analysis.fits.kaplan_resamples import ROUNDS, robust_scale
from analysis.laws.forms import Allocation, KaplanJointLaw, OffsetPowerLaw
from analysis.laws.protocol import Parameter
from analysis.numbers import short

# The joint law's Huber threshold, in robust scales of the log-loss residuals: 1.345 keeps 95% of least squares'
# efficiency on normal noise (Huber 1964; Holland & Welsch 1977) while a run several scales off pulls with a bounded
# weight. Least squares let the one in three stalled runs the gate misses (about 5% of CPU runs stall) drag the law.
HUBER = 1.345


@dataclass(frozen=True)
class KaplanResult:
    """Kaplan forms: ``l_n``, ``l_d``, ``l_c`` are L(x) = E + (x_c/x)^alpha_x fitted to the lower envelope of loss
    against N, D and C (None where too few points); ``law`` is the joint
    L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq. 1.5, E = 0 without offset),
    whose N_c, D_c, alpha_N, alpha_D and E the result reads through."""

    law: KaplanJointLaw
    l_n: OffsetPowerLaw | None
    l_d: OffsetPowerLaw | None
    l_c: OffsetPowerLaw | None
    converged: bool
    rmse_log: float = float("nan")
    n_points: int = 0
    offset: bool = True
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    resample_group: str | None = None
    huber: float | None = HUBER  # the joint law's Huber threshold in robust scales (None: least squares)
    huber_delta: float = float("nan")  # ... and in ln L, as last used

    N_c = property(lambda self: self.law.N_c)
    D_c = property(lambda self: self.law.D_c)
    alpha_N = property(lambda self: self.law.alpha_N)
    alpha_D = property(lambda self: self.law.alpha_D)
    E = property(lambda self: self.law.E)
    flops_convention = property(lambda self: self.law.flops_convention)
    params_convention = property(lambda self: self.law.params_convention)

    @staticmethod
    def _fitted(law: OffsetPowerLaw | None, name: str) -> OffsetPowerLaw:
        if law is None:
            raise FitError(f"KaplanResult: {name} was not fitted (too few distinct values)")
        return law

    def predict_n(self, N):
        return self._fitted(self.l_n, "l_n").predict(N)

    def predict_d(self, D):
        return self._fitted(self.l_d, "l_d").predict(D)

    def predict_c(self, C):
        return self._fitted(self.l_c, "l_c").predict(C)

    def predict(self, N, D):
        """The loss of the joint law L(N, D) (eq. 1.5)."""
        return self.law.predict(N, D)

    def compute_optimal(self, C) -> Allocation:
        """Minimum of the joint law under C = 6ND (``kaplan_joint_optimum``)."""
        return self.law.compute_optimal(C)

    @property
    def a(self) -> float:
        return self.law.a

    @property
    def b(self) -> float:
        """D_opt = C / (6 N_opt) on the joint law's optimum, so b = 1 - a."""
        return 1 - self.a

    def warm_start(self) -> dict[str, Any]:
        """Keyword arguments that refit resampled data from this optimum, by the same loss (used by bootstrap)."""
        return {"init": self, "huber": self.huber}

    def refit_resamples(self, runs, resamples, *, n_threads=None, with_l_c: bool = True) -> list | None:
        """Every resample's joint law at once by batched Levenberg-Marquardt from this optimum
        (``analysis.fits.kaplan_resamples``); None where that path does not apply."""
        from analysis.fits.kaplan_resamples import refit

        return refit(self, runs, resamples, fit_kaplan, KaplanResult, with_l_c=with_l_c)

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {
            "alpha_N": self.alpha_N,
            "alpha_D": self.alpha_D,
            "N_c": self.N_c,
            "D_c": self.D_c,
            "E": self.E,
            "a": self.a,
        }
        if self.l_c is not None:
            q["alpha_C"] = self.l_c.alpha
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def parameters(self) -> list[Parameter]:
        rows = [
            Parameter("α_N (L(N, D), eq. 1.5)", self.alpha_N, "alpha_N", "exp"),
            Parameter("α_D", self.alpha_D, "alpha_D", "exp"),
            Parameter("N_c", self.N_c, "N_c", "sci"),
            Parameter("D_c", self.D_c, "D_c", "sci"),
            Parameter("E (offset)", self.E, "E", "loss"),
            Parameter("a = α_D/(α_N+α_D)", self.a, "a", "exp"),
        ]
        if self.l_c is not None:
            rows.append(Parameter("α_C (L(C) envelope)", self.l_c.alpha, "alpha_C", "exp"))
        return rows

    def fit_summary(self) -> dict[str, Any]:
        return {
            "converged": self.converged,
            "rmse_log": self.rmse_log,
            "n_points": self.n_points,
            "loss": "least squares" if self.huber is None else f"Huber, threshold {self.huber:g} robust scales",
            "huber_delta": self.huber_delta,
        }

    def __repr__(self) -> str:
        return (
            f"KaplanResult(joint: N_c={self.N_c:.3g}, D_c={self.D_c:.3g}, alpha_N={self.alpha_N:.4f}, "
            f"alpha_D={self.alpha_D:.4f}, E={short(self.E)}{'' if self.converged else ' NOT converged'} | "
            f"L(N)={self.l_n!r}, L(D)={self.l_d!r}, L(C)={self.l_c!r} | {self.n_points} points | "
            f"flops={self.flops_convention}, params={self.params_convention})"
        )


def fit_kaplan(
    runs: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    c_col: str = "C",
    loss_col: str = "loss",
    offset: bool = True,
    init: "KaplanResult | None" = None,
    huber: float | None = HUBER,
) -> KaplanResult:
    """Kaplan et al. 2020 forms, each with an irreducible offset E unless ``offset=False``.

    - L(N) (eq. 1.1) on the best loss of each distinct N,
    - L(D) (eq. 1.2) and L(C) (eq. 1.3) on the lower envelope of loss against D and against C,
    - the joint L(N, D) (eq. 1.5) on every run: least squares on log L from a small grid of starts, then (unless
      ``huber`` is None) two rounds of a Huber loss on log L from there, each with its threshold ``huber`` times
      the robust scale of the residuals it starts from (1.4826 median |r| sqrt(n / (n - 5)),
      ``kaplan_resamples.robust_scale``). On clean data it is least squares' fit within a fraction of its
      spread; a run the quality gate missed pulls it with a bounded weight.
    L(C) is skipped when there is no ``c_col``.
    """
    fn = "fit_kaplan"
    if huber is not None and not (isinstance(huber, (int, float)) and math.isfinite(huber) and huber > 0):
        raise ValueError(f"{fn}: huber={huber!r}; must be a number > 0 (robust scales), or None for least squares")
    runs = unique_index(runs)
    has_c = isinstance(runs, pd.DataFrame) and c_col in runs.columns
    roles: dict[str, Any] = dict(N=n_col, D=d_col, loss=loss_col) | ({"C": c_col} if has_c else {})
    t = take(runs, fn, positive=tuple(roles), min_rows=5 if offset else 4, **roles)
    N, D, L = (t[k].to_numpy() for k in ("N", "D", "loss"))

    def single(x, y):
        try:
            return OffsetPowerLaw.fit(x, y, offset=offset)
        except FitError as err:
            warnings.warn(f"{fn}: {err}")
            return None

    best_n = t.groupby("N")["loss"].min()
    l_n = single(best_n.index.to_numpy(), best_n.to_numpy())
    idx = frontier(D, L, None)
    l_d = single(D[idx], L[idx])
    l_c = None
    if has_c:
        C = t["C"].to_numpy()
        idx = frontier(C, L, None)
        l_c = single(C[idx], L[idx])

    lN, lD, lL, Lmin = np.log(N), np.log(D), np.log(L), float(L.min())
    gN, gD = lN.mean(), lD.mean()

    def unpack(p):
        return (p[0], p[1], p[2], p[3], p[4]) if offset else (0.0, p[0], p[1], p[2], p[3])

    def resid(p):
        E, aN, aD, u, v = unpack(p)
        z = np.logaddexp((aN / aD) * (u - lN), v - lD)
        return np.log(E + np.exp(aD * z)) - lL

    starts = []
    for aN, aD, frac in itertools.product((0.05, 0.1, 0.3), (0.05, 0.1, 0.3), (0.0, 0.5) if offset else (0.0,)):
        E0 = frac * Lmin
        # start where each bracketed term carries half of L - E at the data's geometric mean
        T = (float(np.exp(lL.mean())) - E0) ** (1.0 / aD) / 2.0
        u0, v0 = gN + np.log(T) * aD / aN, gD + np.log(T)
        starts.append([E0, aN, aD, u0, v0] if offset else [aN, aD, u0, v0])
    lo = ([0.0] if offset else []) + [1e-4, 1e-4, -np.inf, -np.inf]
    hi = ([Lmin * (1 - 1e-9)] if offset else []) + [5.0, 5.0, np.inf, np.inf]
    if init is not None:
        w = [min(init.E, Lmin * (1 - 1e-6)), init.alpha_N, init.alpha_D, math.log(init.N_c), math.log(init.D_c)]
        starts = [w if offset else w[1:]] + starts[:: max(1, len(starts) // 3)]
    best = None
    for p0 in starts:
        with np.errstate(all="ignore"):
            try:
                r = optimize.least_squares(resid, p0, bounds=(lo, hi), method="trf", x_scale="jac")
            except (ValueError, FloatingPointError):
                continue
        if np.isfinite(r.cost) and (best is None or r.cost < best.cost):
            best = r
    if best is None:
        raise FitError(f"{fn}: the joint L(N, D) fit failed from every start")
    delta = float("nan")
    if huber is not None:
        for _ in range(ROUNDS):
            d = float(huber * robust_scale(best.fun)[0])
            with np.errstate(all="ignore"):
                try:
                    r = optimize.least_squares(
                        resid, best.x, bounds=(lo, hi), method="trf", x_scale="jac", loss="huber", f_scale=d
                    )
                except (ValueError, FloatingPointError):
                    break
            if not np.all(np.isfinite(r.fun)):
                break
            best, delta = r, d
        if not np.isfinite(delta):  # no Huber round succeeded: the result is least squares, and says so
            huber = None
    E, aN, aD, u, v = (float(z) for z in unpack(best.x))
    fc, pc = conventions(runs)
    law = KaplanJointLaw(
        name="kaplan",
        N_c=math.exp(u),
        D_c=math.exp(v),
        alpha_N=aN,
        alpha_D=aD,
        E=E,
        source="fitted to this sweep",
        flops_convention=fc,
        params_convention=pc,
    )
    return KaplanResult(
        law=law,
        l_n=l_n,
        l_d=l_d,
        l_c=l_c,
        converged=bool(best.success),
        rmse_log=float(np.sqrt(np.mean(best.fun**2))),
        n_points=len(t),
        offset=offset,
        data=runs,
        huber=huber,
        huber_delta=delta,
    )
