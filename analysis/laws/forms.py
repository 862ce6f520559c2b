"""Scaling laws and allocations as values: the parametric law L(N, D), Kaplan's joint law, power laws, and the
closed-form compute-optimal allocations they imply.

A fitted result (``analysis.fits``) and a published law (``analysis.laws.published``) of the same form are the same
class here: the published constants are instances, and a fit's ``.law`` is one. Every law that predicts a loss has
``predict(N, D) -> loss``; every law that allocates has ``compute_optimal(C) -> Allocation`` with C in FLOPs under
C = 6ND unless the law says otherwise (``flops_convention``).

References
- Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), arXiv:2203.15556, §3.3 eq. 4
  and Appendix D.2 (the parametric law and its closed-form optimum).
- Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361, eq. 1.1-1.5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import optimize

from analysis.data.columns import FitError
from analysis.numbers import short
from scaling.core import forms as closed


@dataclass(frozen=True)
class Allocation:
    """A compute-optimal allocation at budget C: N_opt parameters trained on D_opt tokens (loss NaN if unknown).

    Fields are floats for a scalar C and arrays for an array of budgets.
    """

    C: Any
    N_opt: Any
    D_opt: Any
    tokens_per_param: Any
    loss: Any = float("nan")

    @classmethod
    def of(cls, C, N_opt, D_opt, loss=float("nan")) -> "Allocation":
        """All fields broadcast to C's shape (a scalar loss of NaN becomes an array of NaN for an array C)."""
        C, N_opt, D_opt, loss = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (C, N_opt, D_opt, loss)))
        C, N_opt, D_opt, loss = (scalar_or_array(v) for v in (C, N_opt, D_opt, loss))
        return cls(C=C, N_opt=N_opt, D_opt=D_opt, tokens_per_param=scalar_or_array(np.divide(D_opt, N_opt)), loss=loss)

    def as_dict(self) -> dict[str, Any]:
        return {
            "C": self.C,
            "N_opt": self.N_opt,
            "D_opt": self.D_opt,
            "tokens_per_param": self.tokens_per_param,
            "loss": self.loss,
        }

    def __repr__(self) -> str:
        if np.ndim(self.C):
            return f"Allocation(C={self.C!r}, N_opt={self.N_opt!r}, D_opt={self.D_opt!r}, loss={self.loss!r})"
        return (
            f"Allocation(C={self.C:.3g}, N_opt={self.N_opt:.3g}, D_opt={self.D_opt:.3g}, "
            f"tokens_per_param={self.tokens_per_param:.3g}, loss={short(self.loss)})"
        )


def scalar_or_array(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * x**exponent, fitted by least squares in log-log space (``PowerLaw.fit``)."""

    coef: float
    exponent: float

    def predict(self, x):
        return scalar_or_array(closed.power_law(np.asarray(x, dtype=float), self.coef, self.exponent))

    def inverse(self, y):
        """The x at which the law gives y."""
        return scalar_or_array(closed.power_law_inverse(np.asarray(y, dtype=float), self.coef, self.exponent))

    @classmethod
    def fit(cls, x, y) -> "PowerLaw":
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        if ok.sum() < 2 or np.unique(x[ok]).size < 2:
            raise FitError(
                f"PowerLaw.fit: need at least 2 points with distinct positive x, got {int(ok.sum())} "
                f"usable point(s) (x={x.tolist()})"
            )
        coef, exponent = closed.fit_power_law(x[ok], y[ok])
        return cls(coef=coef, exponent=exponent)

    def __repr__(self) -> str:
        return f"PowerLaw({self.coef:.4g} * x^{self.exponent:.4f})"


@dataclass(frozen=True)
class OffsetPowerLaw:
    """y = E + (x_c / x)**alpha (Kaplan et al. 2020 eq. 1.1-1.3, with the irreducible term E of Hoffmann et al.).

    ``fit`` minimises the squared error of log y over E in [0, min y), alpha in [0, 5] and log x_c (scipy
    least_squares from the best start of an alpha grid); with ``offset=False``, E = 0 and the fit is a straight
    line in log-log space.
    """

    E: float
    x_c: float
    alpha: float
    n_points: int = 0
    rmse_log: float = float("nan")

    def predict(self, x):
        x = np.asarray(x, dtype=float)
        return scalar_or_array(self.E + (self.x_c / x) ** self.alpha)

    @classmethod
    def fit(cls, x, y, *, offset: bool = True) -> "OffsetPowerLaw":
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        x, y = x[ok], y[ok]
        need = 4 if offset else 2
        if np.unique(x).size < need:
            raise FitError(
                f"OffsetPowerLaw.fit: need at least {need} distinct positive x values "
                f"({'with' if offset else 'without'} an offset), got {np.unique(x).size}"
            )
        lx0 = float(np.mean(np.log(x)))
        u, ly, ymin = np.log(x) - lx0, np.log(y), float(y.min())
        if not offset:  # a straight line in log-log space: exact
            pl = PowerLaw.fit(x, y)
            al, k = -pl.exponent, math.log(pl.coef) + pl.exponent * lx0
            rmse = float(np.sqrt(np.mean((k - al * u - ly) ** 2)))
            return cls(
                E=0.0,
                x_c=float(np.exp(lx0 + k / al)) if al > 0 else float("nan"),
                alpha=float(al),
                n_points=int(x.size),
                rmse_log=rmse,
            )

        # y = E + exp(k - alpha u), u = log x - mean log x (well conditioned); x_c = exp(mean log x + k / alpha).
        # Start from the best alpha of a grid, where E and exp(k) solve a linear least-squares problem, then refine
        # on log y with the analytic Jacobian.
        alphas = np.geomspace(0.005, 4.0, 48)
        basis = np.exp(-np.multiply.outer(alphas, u))  # (grid, points)
        n, sb, sbb, sy, sby = u.size, basis.sum(1), (basis * basis).sum(1), y.sum(), basis @ y
        det = n * sbb - sb * sb
        with np.errstate(divide="ignore", invalid="ignore"):
            E = np.where(det > 0, (sbb * sy - sb * sby) / det, -1.0)
            c = np.where(det > 0, (n * sby - sb * sy) / det, 0.0)
            c = np.where(E < 0, sby / sbb, c)  # E clipped to 0: least squares through the origin
            E = np.maximum(E, 0.0)
            valid = (c > 0) & (E < ymin)
            sse = np.where(valid, np.sum((np.log(E[:, None] + c[:, None] * basis) - ly) ** 2, axis=1), np.inf)
        i = int(np.argmin(sse))
        start = (float(E[i]), math.log(c[i]), float(alphas[i])) if np.isfinite(sse[i]) else (0.0, float(ly.mean()), 0.1)

        def resid(p):
            return np.log(p[0] + np.exp(p[1] - p[2] * u)) - ly

        def jac(p):
            T = np.exp(p[1] - p[2] * u)
            Y = p[0] + T
            return np.column_stack([1.0 / Y, T / Y, -u * T / Y])

        hi_E = ymin * (1 - 1e-9)
        p0 = np.clip(start, [0.0, -np.inf, 0.0], [hi_E, np.inf, 5.0])
        r = optimize.least_squares(
            resid, p0, jac=jac, bounds=([0.0, -np.inf, 0.0], [hi_E, np.inf, 5.0]), method="trf", x_scale="jac"
        )
        E_fit, k, al = (float(v) for v in r.x)
        x_c = float(np.exp(lx0 + k / al)) if al > 0 else float("nan")
        return cls(E=E_fit, x_c=x_c, alpha=al, n_points=int(x.size), rmse_log=float(np.sqrt(np.mean(r.fun**2))))

    def __repr__(self) -> str:
        return f"OffsetPowerLaw({short(self.E)} + ({self.x_c:.3g}/x)^{self.alpha:.4f})"


def parametric_optimum(E, A, B, alpha, beta, C) -> Allocation:
    """Compute-optimal (N, D) of L = E + A/N^alpha + B/D^beta under C = 6ND, in closed form.

    Hoffmann et al. 2022 §3.3 and Appendix D.2 (eq. 4): G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta/(alpha+beta), b = alpha/(alpha+beta), N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b.
    """
    if not (alpha > 0 and beta > 0 and A > 0 and B > 0):
        raise FitError(
            f"parametric_optimum: needs alpha, beta, A, B > 0 for a finite optimum, got A={A}, B={B}, "
            f"alpha={alpha}, beta={beta}"
        )
    with np.errstate(divide="ignore"):
        return parametric_optimum_log(E, float(np.log(A)), float(np.log(B)), alpha, beta, C)


def parametric_optimum_log(E, logA, logB, alpha, beta, C) -> Allocation:
    """``parametric_optimum`` from log A and log B: finite even where A = e^logA overflows (degenerate fits)."""
    if not (alpha > 0 and beta > 0 and np.isfinite(logA) and np.isfinite(logB)):
        raise FitError(
            f"parametric_optimum: needs alpha, beta > 0 and finite log A, log B for a finite optimum, "
            f"got log A={logA}, log B={logB}, alpha={alpha}, beta={beta}"
        )
    C = np.asarray(C, dtype=float)
    logC6 = np.log(C / 6.0)
    logN, logD = closed.chinchilla_log_optimum(logC6, logA, logB, alpha, beta)
    return Allocation.of(C, np.exp(logN), np.exp(logD), E + np.exp(logA - alpha * logN) + np.exp(logB - beta * logD))


def kaplan_joint_optimum(N_c, D_c, alpha_N, alpha_D, E, C) -> Allocation:
    """Compute-optimal (N, D) of Kaplan's L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D under C = 6ND.

    Kaplan et al. 2020 eq. 1.5. With p = alpha_N/alpha_D, minimising (N_c/N)^p + 6 D_c N / C over N gives
    N_opt = (p N_c^p C / (6 D_c))^(1/(1+p)), so N_opt ∝ C^(alpha_D/(alpha_N+alpha_D)).
    """
    C = np.asarray(C, dtype=float)
    p = alpha_N / alpha_D
    logN = (np.log(p) + p * np.log(N_c) + np.log(C / 6.0) - np.log(D_c)) / (1.0 + p)
    N = np.exp(logN)
    D = C / (6.0 * N)
    return Allocation.of(C, N, D, E + ((N_c / N) ** p + D_c / D) ** alpha_D)


def parametric_loss(E, logA, logB, alpha, beta, N, D):
    """L = E + A/N^alpha + B/D^beta from log A and log B (Hoffmann et al. 2022 eq. 2): finite where A overflows."""
    lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
    return scalar_or_array(E + np.exp(logA - alpha * lN) + np.exp(logB - beta * lD))


def kaplan_joint_loss(N_c, D_c, alpha_N, alpha_D, E, N, D):
    """L = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq. 1.5)."""
    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    return scalar_or_array(E + ((N_c / N) ** (alpha_N / alpha_D) + D_c / D) ** alpha_D)


@dataclass(frozen=True)
class ParametricLaw:
    """L(N, D) = E + A/N^alpha + B/D^beta with its closed-form allocation under C = 6ND (Hoffmann et al. 2022 §3.3):
    a = beta/(alpha+beta), b = alpha/(alpha+beta), G = (alpha A/(beta B))^(1/(alpha+beta))."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    source: str = ""
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    # ln A and ln B as fitted (``from_logs``): finite where A = e^ln A overflows in a degenerate fit; None: from A, B
    log_A: float | None = field(default=None, repr=False, compare=False)
    log_B: float | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_logs(
        cls, name: str, E: float, log_A: float, log_B: float, alpha: float, beta: float, **kw
    ) -> "ParametricLaw":
        """The law from ln A and ln B (as Approach 3 fits them); A and B are e^ln A, e^ln B (inf on overflow)."""
        with np.errstate(over="ignore", under="ignore"):
            A, B = (float(np.exp(v)) for v in (log_A, log_B))
        return cls(name=name, E=E, A=A, B=B, alpha=alpha, beta=beta, log_A=float(log_A), log_B=float(log_B), **kw)

    @property
    def a(self) -> float:
        s = self.alpha + self.beta
        return closed.chinchilla_exponents(self.alpha, self.beta)[0] if s else float("nan")

    @property
    def b(self) -> float:
        s = self.alpha + self.beta
        return closed.chinchilla_exponents(self.alpha, self.beta)[1] if s else float("nan")

    @property
    def G(self) -> float:
        if self.log_A is None:
            return closed.chinchilla_g(self.A, self.B, self.alpha, self.beta)
        if not (self.alpha > 0 and self.beta > 0):
            return float("nan")
        return float(np.exp(closed.chinchilla_log_g(self.log_A, self.log_B, self.alpha, self.beta)))

    @property
    def params(self) -> tuple[float, float, float, float, float]:
        return (self.E, self.A, self.B, self.alpha, self.beta)

    def predict(self, N, D):
        if self.log_A is not None:
            return parametric_loss(self.E, self.log_A, self.log_B, self.alpha, self.beta, N, D)
        with np.errstate(divide="ignore"):
            return parametric_loss(self.E, math.log(self.A), math.log(self.B), self.alpha, self.beta, N, D)

    def compute_optimal(self, C) -> Allocation:
        if self.log_A is not None:
            return parametric_optimum_log(self.E, self.log_A, self.log_B, self.alpha, self.beta, C)
        return parametric_optimum(self.E, self.A, self.B, self.alpha, self.beta, C)


@dataclass(frozen=True)
class KaplanJointLaw:
    """L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq. 1.5); its allocation is
    the minimum under C = 6ND (``kaplan_joint_optimum``), so N_opt ∝ C^(alpha_D/(alpha_N+alpha_D))."""

    name: str
    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float
    source: str = ""
    E: float = 0.0
    flops_convention: str = "6n"
    params_convention: str = "non_embedding"

    @property
    def a(self) -> float:
        return self.alpha_D / (self.alpha_N + self.alpha_D)

    def predict(self, N, D):
        return kaplan_joint_loss(self.N_c, self.D_c, self.alpha_N, self.alpha_D, self.E, N, D)

    def compute_optimal(self, C) -> Allocation:
        return kaplan_joint_optimum(self.N_c, self.D_c, self.alpha_N, self.alpha_D, self.E, C)


@dataclass(frozen=True)
class AllocationLaw:
    """An allocation without a loss surface: N_opt = n_opt(C), D_opt = d_opt(C) (or C / (flops_per_param_token *
    N_opt) when d_opt is None), and optionally the loss along it, L_opt(C) (a PowerLaw or OffsetPowerLaw).

    ``n_per_unit`` converts the law's "model size" into parameters (DeepSeek's M is FLOPs a token, ~6 N). It has no
    ``predict(N, D)``: an allocation law says nothing about a model off its optimal line.
    """

    name: str
    n_opt: PowerLaw
    source: str = ""
    d_opt: PowerLaw | None = None
    flops_per_param_token: float = 6.0
    n_per_unit: float = 1.0
    loss: Any = None
    flops_convention: str = "unknown"
    params_convention: str = "unknown"

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent if self.d_opt is not None else 1.0 - self.a

    def compute_optimal(self, C) -> Allocation:
        C = np.asarray(C, dtype=float)
        N = np.asarray(self.n_opt.predict(C)) * self.n_per_unit
        D = self.d_opt.predict(C) if self.d_opt is not None else C / (self.flops_per_param_token * N)
        loss = self.loss.predict(C) if self.loss is not None else np.full(C.shape, np.nan)
        return Allocation.of(C, N, D, loss)
