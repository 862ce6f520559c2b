"""The data-constrained scaling law of Muennighoff et al. 2023, for runs that repeat their training data.

Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel 2023, "Scaling Data-Constrained Language
Models", NeurIPS 2023, arXiv:2305.16264, §3 (the law) and the authors' released code and constants,
github.com/huggingface/datablations (README, "Parametric Fit"). With U unique tokens repeated to D tokens in all:

    U_D = min(U, D),  R_D = D/U_D - 1                                (repetitions beyond the first epoch)
    D'  = U_D + U_D·R_D*·(1 - exp(-R_D/R_D*))                         (effective data: repeats decay in value)
    U_N = min(N, N_opt(U_D)),  R_N = N/U_N - 1                        (parameters beyond the compute-optimal size
    N'  = U_N + U_N·R_N*·(1 - exp(-R_N/R_N*))                         for the unique data decay alike)
    L   = E + A/N'^α + B/D'^β

where N_opt(U_D) = G·(U_D·G)^(β/α), G = (αA/(βB))^(1/(α+β)), is the Chinchilla-optimal size for U_D tokens
(Hoffmann et al. 2022 Appendix D.2, inverted for N). Without repetition (D <= U) and N <= N_opt(U), D' = D, N' = N
and the law is Chinchilla's. The published fit (``MUENNIGHOFF_2023``) gives L(N=6.34e9, D=242e9, U=25e9) = 2.22564
(their README prints 2.2256440889984477). Its R_D* = 15.39: after about 15 repetitions one more epoch is worth 1/e
of as many fresh tokens (dD'/dR_D = U e^(-R_D/R_D*)); up to about 4 epochs repeated data changes the loss
negligibly against unique data (the paper's abstract), the threshold ``check_epochs`` warns at.

``fit_datacon`` fits a law to runs that record unique tokens (``scaling.core.records.RunSummary.unique_train_tokens``,
``epochs``): first E, A, B, α, β by Approach 3 on the runs of at most one epoch (or a base law you pass), then R_D*
and R_N* on every run with the base held fixed, by the same Huber loss on log L (δ = 1e-3, summed) that Approach 3
uses (Hoffmann et al. 2022 §3.3), then all seven parameters together from there.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from analysis.data.columns import conventions
from analysis.laws.forms import Allocation, ParametricLaw
from analysis.laws.protocol import FitResult, Parameter
from scaling.core.forms import chinchilla_g

EPOCH_WARN_LIMIT = 4.0  # Muennighoff et al. 2023, abstract: up to ~4 epochs, repeated data is about as good as unique


class RepeatedDataWarning(UserWarning):
    """Runs trained for more epochs than repeated data stays (nearly) as good as fresh."""


@dataclass(frozen=True)
class DataConstrainedLaw:
    """L(N, D, U) = E + A/N'^α + B/D'^β with effective N' and D' (Muennighoff et al. 2023 §3)."""

    name: str
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    rd_star: float  # R_D*: repetitions of the data after which its value has decayed by 1 - 1/e
    rn_star: float  # R_N*: the same for parameters beyond the compute-optimal size for the unique data
    source: str = ""

    @property
    def G(self) -> float:
        return chinchilla_g(self.A, self.B, self.alpha, self.beta)

    def params_for_data(self, D) -> np.ndarray:
        """Chinchilla-optimal N for D tokens under C = 6ND: N = G (D G)^(β/α) (Hoffmann et al. 2022 App. D.2,
        D_opt = (C/6)^b / G inverted; the authors' ``D_to_N``)."""
        return self.G * (np.asarray(D, dtype=float) * self.G) ** (self.beta / self.alpha)

    def effective_data(self, D, U) -> np.ndarray:
        """D' = U_D + U_D R_D* (1 - exp(-R_D/R_D*)), U_D = min(U, D), R_D = D/U_D - 1 (Muennighoff et al. §3)."""
        D, U = np.asarray(D, dtype=float), np.asarray(U, dtype=float)
        ud = np.minimum(U, D)
        rd = np.maximum(D / ud - 1.0, 0.0)
        return ud + ud * self.rd_star * (-np.expm1(-rd / self.rd_star))

    def effective_params(self, N, U, D=None) -> np.ndarray:
        """N' = U_N + U_N R_N* (1 - exp(-R_N/R_N*)), U_N = min(N, N_opt(U_D)), R_N = N/U_N - 1 (§3)."""
        N, U = np.asarray(N, dtype=float), np.asarray(U, dtype=float)
        ud = U if D is None else np.minimum(U, np.asarray(D, dtype=float))
        un = np.minimum(N, self.params_for_data(ud))
        rn = np.maximum(N / un - 1.0, 0.0)
        return un + un * self.rn_star * (-np.expm1(-rn / self.rn_star))

    def predict(self, N, D, U=None):
        """Loss of N parameters trained on D tokens of which U are unique (U None or >= D: no repetition)."""
        U = D if U is None else U
        _check_positive("predict", N=N, D=D, U=U)
        out = (
            self.E
            + self.A / self.effective_params(N, U, D) ** self.alpha
            + self.B / self.effective_data(D, U) ** self.beta
        )
        return float(out) if np.ndim(out) == 0 else out

    def compute_optimal(self, C, U=None) -> Allocation:
        """N_opt, D_opt = C/(6 N_opt) and the loss at C (FLOPs = 6ND) with ``U`` unique tokens (None: no
        repetition): the minimum over ln N of L(N, C/6N, U) on a grid of 2001 sizes from 1e2 to 1e16, refined by a
        golden-section search between the lowest grid point's neighbours to 1e-9 in ln N, every budget at once."""
        if U is not None:
            _check_positive("DataConstrainedLaw.compute_optimal", U=U)
        _check_positive("DataConstrainedLaw.compute_optimal", C=C)
        Cs = np.atleast_1d(np.asarray(C, dtype=float))

        def loss(t, c):  # L at ln N = t (broadcast against c), every argument already checked positive
            N = np.exp(t)
            D = c / (6 * N)
            Uq = D if U is None else np.broadcast_to(float(U), np.shape(D))
            return (
                self.E
                + self.A / self.effective_params(N, Uq, D) ** self.alpha
                + self.B / self.effective_data(D, Uq) ** self.beta
            )

        x = np.linspace(math.log(1e2), math.log(1e16), 2001)
        j = np.clip(np.argmin(loss(x[None, :], Cs[:, None]), axis=1), 1, x.size - 2)
        lo, hi = x[j - 1], x[j + 1]
        g = (math.sqrt(5) - 1) / 2
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        fa, fb = loss(a, Cs), loss(b, Cs)
        while lo.size and np.max(hi - lo) > 1e-9:  # the unimodal bracket shrinks by g a step: ~36 steps from the grid's
            left = fa <= fb
            hi, lo = np.where(left, b, hi), np.where(left, lo, a)
            a_new, b_new = hi - g * (hi - lo), lo + g * (hi - lo)
            fa, fb = np.where(left, loss(a_new, Cs), fb), np.where(left, fa, loss(b_new, Cs))
            a, b = np.where(left, a_new, b), np.where(left, a, b_new)
        n_opt = np.exp((lo + hi) / 2)
        d_opt = Cs / (6 * n_opt)
        unique = None if U is None else np.full_like(n_opt, float(U))
        out = np.asarray(self.predict(n_opt, d_opt, unique))
        if np.ndim(C) == 0:
            return Allocation.of(float(Cs[0]), float(n_opt[0]), float(d_opt[0]), float(np.atleast_1d(out)[0]))
        return Allocation.of(Cs, n_opt, d_opt, out)

    def predict_unconstrained(self, N, D):
        """The same constants with every token and parameter counted in full: E + A/N^α + B/D^β."""
        _check_positive("predict_unconstrained", N=N, D=D)
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        out = self.E + self.A / N**self.alpha + self.B / D**self.beta
        return float(out) if out.ndim == 0 else out


def _check_positive(fn: str, **values) -> None:
    for name, v in values.items():
        a = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(a) & (a > 0)):
            bad = a[~(np.isfinite(a) & (a > 0))].ravel()[0]
            raise ValueError(f"{fn}: {name} must be finite and > 0, got {float(bad)!r}")


# The authors' released fit (datablations README, "Parametric Fit"): they list log A, log B, log E, α, β, R_D*, R_N*
# as [6.255414, 7.3049974, 0.6254804, 0.3526596, 0.3526596, 15.387756, 5.309743].
MUENNIGHOFF_2023 = DataConstrainedLaw(
    name="muennighoff2023",
    E=math.exp(0.6254804),
    A=math.exp(6.255414),
    B=math.exp(7.3049974),
    alpha=0.3526596,
    beta=0.3526596,
    rd_star=15.387756,
    rn_star=5.309743,
    source="Muennighoff et al. 2023, Scaling Data-Constrained Language Models, arXiv:2305.16264, §3; constants from "
    "github.com/huggingface/datablations README (Parametric Fit)",
)


def prediction_shift(law: DataConstrainedLaw, N, D, U) -> pd.DataFrame:
    """How much the repetition correction moves a prediction: for each (N, D, U), epochs D/U, D' and N', the loss
    with the correction (``law.predict``) and without it (``law.predict_unconstrained``), and the difference."""
    N, D, U = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=float)) for v in (N, D, U)))
    with_c = np.atleast_1d(law.predict(N, D, U))
    without = np.atleast_1d(law.predict_unconstrained(N, D))
    return pd.DataFrame(
        {
            "N": N,
            "D": D,
            "U": U,
            "epochs": D / U,
            "D_eff": law.effective_data(D, U),
            "N_eff": law.effective_params(N, U, D),
            "loss_constrained": with_c,
            "loss_unconstrained": without,
            "delta": with_c - without,
            "rel_delta": with_c / without - 1.0,
        }
    )


def check_epochs(
    runs: pd.DataFrame, *, epochs_col: str = "epochs", run_col: str = "run_id", limit: float = EPOCH_WARN_LIMIT
) -> list[str]:
    """Warn (``RepeatedDataWarning``) naming every run trained for more than ``limit`` epochs, beyond which
    repeated data is worth measurably less than fresh (Muennighoff et al. 2023, abstract), so a fit that assumes fresh
    data (Approaches 1-3, Kaplan) is biased; returns those runs' ids. A frame without ``epochs_col`` is not checked."""
    if epochs_col not in runs.columns:
        return []
    ep = pd.to_numeric(runs[epochs_col], errors="coerce")
    over = runs[ep > limit]
    if over.empty:
        return []
    ids = [str(v) for v in (over[run_col] if run_col in over.columns else over.index)]
    worst = float(ep.max())
    warnings.warn(
        f"{len(ids)} run(s) trained for more than {limit:g} epochs of their data (up to {worst:.3g}): "
        f"{', '.join(ids[:8])}{' ...' if len(ids) > 8 else ''}; repeated tokens are worth less than fresh "
        f"ones beyond ~{limit:g} epochs (Muennighoff et al. 2023), so fits that assume fresh data are "
        f"biased; compare with analysis.fits.datacon.fit_datacon",
        RepeatedDataWarning,
        stacklevel=2,
    )
    return ids


@dataclass(frozen=True)
class DataConstrainedFit:
    """A fitted ``DataConstrainedLaw`` (``law``) with how it was fitted: the base fit (Approach 3 on the runs of at
    most one epoch, or the law passed in), the runs used, and the optimiser's end state."""

    law: DataConstrainedLaw
    base: Any = field(repr=False)
    n_runs: int = 0
    n_repeated: int = 0
    objective: float = float("nan")
    converged: bool = False

    unique_tokens: float = float("nan")  # the most unique tokens any run saw: the corpus compute_optimal assumes
    resample_group: str | None = None
    flops_convention: str = "unknown"
    params_convention: str = "unknown"

    # no single exponent: the allocation bends where the data runs out (Muennighoff et al. 2023 §3)
    a = property(lambda self: float("nan"))
    b = property(lambda self: float("nan"))

    def predict(self, N, D, U=None):
        return self.law.predict(N, D, U)

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        law = self.law
        q = {
            "E": law.E,
            "A": law.A,
            "B": law.B,
            "alpha": law.alpha,
            "beta": law.beta,
            "rd_star": law.rd_star,
            "rn_star": law.rn_star,
        }
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def compute_optimal(self, C, U=None) -> Allocation:
        """``law.compute_optimal`` with ``U`` unique tokens, default the corpus the runs drew from
        (``unique_tokens``)."""
        return self.law.compute_optimal(C, self.unique_tokens if U is None else U)

    def warm_start(self) -> dict[str, Any]:
        return {}

    def refit_resamples(self, runs, resamples, *, n_threads=None) -> None:
        return None

    def parameters(self) -> list[Parameter]:
        law = self.law
        return [
            Parameter("E (irreducible loss)", law.E, "E", "loss"),
            Parameter("A", law.A, "A", "g"),
            Parameter("B", law.B, "B", "g"),
            Parameter("α", law.alpha, "alpha", "exp"),
            Parameter("β", law.beta, "beta", "exp"),
            Parameter("R_D* (repetitions for 1 - 1/e of the data's value lost)", law.rd_star, "rd_star", "g"),
            Parameter("R_N* (the same for excess parameters)", law.rn_star, "rn_star", "g"),
        ]

    def fit_summary(self) -> dict[str, Any]:
        return {"converged": self.converged, "n_runs": self.n_runs}


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def fit_datacon(
    runs: pd.DataFrame,
    *,
    base: Any = None,
    n_col: str = "N",
    d_col: str = "D",
    u_col: str = "unique_train_tokens",
    epochs_col: str = "epochs",
    loss_col: str = "loss",
    delta: float = 1e-3,
    grid: str = "small",
    joint: bool = True,
) -> DataConstrainedFit:
    """Fit the data-constrained law to runs with unique-token counts.

    Unique tokens come from ``u_col``, else D / ``epochs_col``. The base E, A, B, α, β come from ``base`` (a
    ``ParametricLaw`` or ``DataConstrainedLaw``, or a fit holding one, e.g. an ``Approach3Result``) or, if None, from
    ``analysis.fit_approach3`` (``grid``) on the runs with at most one epoch (at least 5 needed). Then R_D*, R_N* are
    fitted with the base fixed: L-BFGS-B over log R_D*, log R_N* from a 4 x 4 grid of starts, Huber loss on
    log L_pred - log L (δ = ``delta``), summed as in Approach 3. With ``joint`` (default) all seven parameters
    are then refined together from there (L-BFGS-B on log E, log A, log B, α, β, log R_D*, log R_N*), since runs
    of one epoch with N above N_opt(U) already feel the parameter discount; the joint refit is kept only if it
    lowers the objective.
    """
    fn = "fit_datacon"
    for name, col in (("n_col", n_col), ("d_col", d_col), ("loss_col", loss_col)):
        if col not in runs.columns:
            raise ValueError(f"{fn}: {name}={col!r} is not a column of runs; columns are {list(runs.columns)}")
    N = pd.to_numeric(runs[n_col], errors="coerce").to_numpy(float)
    D = pd.to_numeric(runs[d_col], errors="coerce").to_numpy(float)
    L = pd.to_numeric(runs[loss_col], errors="coerce").to_numpy(float)
    if u_col in runs.columns:
        U = pd.to_numeric(runs[u_col], errors="coerce").to_numpy(float)
    elif epochs_col in runs.columns:
        U = D / pd.to_numeric(runs[epochs_col], errors="coerce").to_numpy(float)
    else:
        raise ValueError(
            f"{fn}: neither u_col={u_col!r} nor epochs_col={epochs_col!r} is a column of runs; one is "
            f"needed for the unique tokens. Columns are {list(runs.columns)}"
        )
    ok = np.isfinite(N) & np.isfinite(D) & np.isfinite(L) & np.isfinite(U) & (N > 0) & (D > 0) & (L > 0) & (U > 0)
    if ok.sum() < 5:
        raise ValueError(f"{fn}: {int(ok.sum())} run(s) with finite, positive N, D, unique tokens and loss; need >= 5")
    N, D, L, U = N[ok], D[ok], L[ok], U[ok]
    fresh = D <= U * (1 + 1e-9)
    if base is None:
        if fresh.sum() < 5:
            raise ValueError(
                f"{fn}: {int(fresh.sum())} run(s) of at most one epoch; the base law needs >= 5 of them "
                f"(or pass base=, e.g. an Approach 3 fit or a published law)"
            )
        from analysis.fits.approach3 import fit_approach3

        base = fit_approach3(pd.DataFrame({"N": N[fresh], "D": D[fresh], "loss": L[fresh]}), grid=grid)
    base_law = base.law if isinstance(base, FitResult) else base
    if not isinstance(base_law, (ParametricLaw, DataConstrainedLaw)):
        raise ValueError(
            f"{fn}: base={type(base).__name__}; it must be a ParametricLaw (e.g. a published one), a "
            f"DataConstrainedLaw, or a fit result holding one (an Approach 3 fit)"
        )
    law0 = DataConstrainedLaw(
        name="fit",
        E=float(base_law.E),
        A=float(base_law.A),
        B=float(base_law.B),
        alpha=float(base_law.alpha),
        beta=float(base_law.beta),
        rd_star=1.0,
        rn_star=1.0,
    )
    logL = np.log(L)

    def objective(theta):
        law = replace(law0, rd_star=math.exp(theta[0]), rn_star=math.exp(theta[1]))
        with np.errstate(over="ignore", invalid="ignore"):
            pred = law.predict(N, D, U)
        return float(np.sum(_huber(np.log(pred) - logL, delta)))

    best = None
    for s0 in np.log([1.0, 5.0, 20.0, 80.0]):
        for s1 in np.log([1.0, 5.0, 20.0, 80.0]):
            r = minimize(objective, [s0, s1], method="L-BFGS-B", bounds=[(-5.0, 10.0), (-5.0, 10.0)])
            if best is None or r.fun < best.fun:
                best = r
    assert best is not None  # the 4 x 4 starts above always ran
    law = replace(law0, rd_star=float(math.exp(best.x[0])), rn_star=float(math.exp(best.x[1])))
    if joint:
        # Runs of one epoch are not all Chinchilla-shaped under this law: parameters beyond N_opt(U) are discounted
        # even on fresh data, so the base fitted on them is refined together with R_D*, R_N*.
        def joint_objective(t):
            with np.errstate(over="ignore", invalid="ignore"):
                trial = DataConstrainedLaw(
                    "fit", math.exp(t[0]), math.exp(t[1]), math.exp(t[2]), t[3], t[4], math.exp(t[5]), math.exp(t[6])
                )
                pred = trial.predict(N, D, U)
            v = float(np.sum(_huber(np.log(pred) - logL, delta)))
            return v if math.isfinite(v) else 1e300

        t0 = [
            math.log(law.E),
            math.log(law.A),
            math.log(law.B),
            law.alpha,
            law.beta,
            math.log(law.rd_star),
            math.log(law.rn_star),
        ]
        r = minimize(
            joint_objective,
            t0,
            method="L-BFGS-B",
            bounds=[(-5, 5), (-10, 40), (-10, 40), (0.01, 2.5), (0.01, 2.5), (-5, 10), (-5, 10)],
        )
        if r.fun <= best.fun:
            best = r
            law = DataConstrainedLaw(
                "fit",
                math.exp(r.x[0]),
                math.exp(r.x[1]),
                math.exp(r.x[2]),
                float(r.x[3]),
                float(r.x[4]),
                math.exp(r.x[5]),
                math.exp(r.x[6]),
            )
    fc, pc = conventions(runs)
    law = replace(
        law, source=f"fit_datacon on {N.size} runs ({int((~fresh).sum())} repeated){', joint refit' if joint else ''}"
    )
    return DataConstrainedFit(
        law=law,
        base=base,
        n_runs=int(N.size),
        n_repeated=int((~fresh).sum()),
        objective=float(best.fun),
        converged=bool(best.success),
        unique_tokens=float(U.max()),
        flops_convention=fc,
        params_convention=pc,
    )
