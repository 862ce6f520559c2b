"""Fitting scaling laws to finished runs: Chinchilla's Approaches 1, 2 and 3, Kaplan's forms, bootstrap intervals
and backtests.

Every fit takes a plain DataFrame and the names of its columns (defaulting to the canonical ``N``, ``D``, ``C``,
``loss``, ``budget`` of ``analysis.load_runs``), so published data with other column names fits as easily as a
sweep. Results are small frozen dataclasses: parameters, the data used, how the fit converged, the FLOP and
parameter conventions (from ``df.attrs`` when present), ``.predict`` and, where it applies, ``.compute_optimal(C)``
returning an ``Allocation``.

References
- Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), arXiv:2203.15556:
  Approach 1 (§3.1), Approach 2 (§3.2), Approach 3 (§3.3, Appendix D.2).
- Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (Epoch AI), arXiv:2404.10102: the Huber loss
  must be summed, not averaged, or L-BFGS stops early.
- Kaplan et al. 2020, "Scaling Laws for Neural Language Models", arXiv:2001.08361: eq. 1.1-1.5.

numpy, scipy, pandas and joblib only: this package never imports torch.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import math
import os
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import optimize


class FitError(ValueError):
    """The data cannot be fitted as asked; the message names the argument or column, the value and what is allowed."""


# --------------------------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------------------------

def _take(df: Any, fn: str, arg: str = "runs", *, min_rows: int = 1, drop_nan: tuple[str, ...] = (),
          positive: tuple[str, ...] = (), **roles: str) -> pd.DataFrame:
    """Columns of ``df`` named by ``roles`` (role=column, the role N naming argument n_col and so on), as floats
    under the role names, checked. ``positive`` roles must be finite and > 0; rows where a ``drop_nan`` role is NaN
    are dropped (curves carry NaN losses at steps without an evaluation)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{fn}: {arg} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise FitError(f"{fn}: {arg} is empty (0 rows); it needs rows with columns "
                       f"{', '.join(repr(c) for c in roles.values())}")
    out = {}
    for role, col in roles.items():
        if col not in df.columns:
            argname = f"{role.lower()}_col"
            raise FitError(f"{fn}: column {col!r} ({argname}) is not in {arg}; its columns are {list(df.columns)}. "
                           f"Pass {argname}= to name yours")
        s = df[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise FitError(f"{fn}: column {col!r} ({role.lower()}_col) must be numeric; it has dtype {s.dtype} "
                           f"(first value {s.iloc[0]!r})")
        out[role] = s.astype(float)
    t = pd.DataFrame(out, index=df.index)
    for role in drop_nan:
        if role in t:
            t = t[t[role].notna()]
    for role in positive:
        if role not in t:
            continue
        v = t[role].to_numpy()
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(f"{fn}: column {roles[role]!r} ({role.lower()}_col) must be finite and > 0; "
                           f"row {t.index[i]!r} has {float(v[i])!r} ({int(bad.sum())} bad row(s) in all)")
    if len(t) < min_rows:
        raise FitError(f"{fn}: {arg} has {len(t)} usable row(s); at least {min_rows} are needed")
    return t


def _unique_index(df: Any) -> Any:
    """``df`` with a unique index (bootstrap resamples repeat rows), so rows can be picked back out by label."""
    if isinstance(df, pd.DataFrame) and not df.index.is_unique:
        attrs = dict(df.attrs)
        df = df.reset_index(drop=True)
        df.attrs.update(attrs)
    return df


def _conventions(df: pd.DataFrame) -> tuple[str, str]:
    attrs = getattr(df, "attrs", {}) or {}
    return str(attrs.get("flops_convention", "unknown")), str(attrs.get("params_convention", "unknown"))


def _fmt(x: float) -> str:
    if x is None or np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.3g}"
    return f"{x:.4g}"


# --------------------------------------------------------------------------------------------------------------------
# Small value types shared by every approach
# --------------------------------------------------------------------------------------------------------------------

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
        C, N_opt, D_opt, loss = (_scalar_or_array(v) for v in (C, N_opt, D_opt, loss))
        return cls(C=C, N_opt=N_opt, D_opt=D_opt, tokens_per_param=_scalar_or_array(np.divide(D_opt, N_opt)),
                   loss=loss)

    def as_dict(self) -> dict[str, Any]:
        return {"C": self.C, "N_opt": self.N_opt, "D_opt": self.D_opt, "tokens_per_param": self.tokens_per_param,
                "loss": self.loss}

    def __repr__(self) -> str:
        if np.ndim(self.C):
            return f"Allocation(C={self.C!r}, N_opt={self.N_opt!r}, D_opt={self.D_opt!r}, loss={self.loss!r})"
        return (f"Allocation(C={self.C:.3g}, N_opt={self.N_opt:.3g}, D_opt={self.D_opt:.3g}, "
                f"tokens_per_param={self.tokens_per_param:.3g}, loss={_fmt(self.loss)})")


def _scalar_or_array(v):
    a = np.asarray(v, dtype=float)
    return float(a) if a.ndim == 0 else a


@dataclass(frozen=True)
class PowerLaw:
    """y = coef * x**exponent, fitted by least squares in log-log space (``PowerLaw.fit``)."""

    coef: float
    exponent: float

    def predict(self, x):
        return _scalar_or_array(self.coef * np.asarray(x, dtype=float) ** self.exponent)

    @classmethod
    def fit(cls, x, y) -> "PowerLaw":
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        if ok.sum() < 2 or np.unique(x[ok]).size < 2:
            raise FitError(f"PowerLaw.fit: need at least 2 points with distinct positive x, got {int(ok.sum())} "
                           f"usable point(s) (x={x.tolist()})")
        slope, intercept = np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)
        return cls(coef=float(np.exp(intercept)), exponent=float(slope))

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
        return _scalar_or_array(self.E + (self.x_c / x) ** self.alpha)

    @classmethod
    def fit(cls, x, y, *, offset: bool = True) -> "OffsetPowerLaw":
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
        x, y = x[ok], y[ok]
        need = 4 if offset else 2
        if np.unique(x).size < need:
            raise FitError(f"OffsetPowerLaw.fit: need at least {need} distinct positive x values "
                           f"({'with' if offset else 'without'} an offset), got {np.unique(x).size}")
        lx0 = float(np.mean(np.log(x)))
        u, ly, ymin = np.log(x) - lx0, np.log(y), float(y.min())
        if not offset:  # a straight line in log-log space: exact
            pl = PowerLaw.fit(x, y)
            al, k = -pl.exponent, math.log(pl.coef) + pl.exponent * lx0
            rmse = float(np.sqrt(np.mean((k - al * u - ly) ** 2)))
            return cls(E=0.0, x_c=float(np.exp(lx0 + k / al)) if al > 0 else float("nan"), alpha=float(al),
                       n_points=int(x.size), rmse_log=rmse)

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
        r = optimize.least_squares(resid, p0, jac=jac, bounds=([0.0, -np.inf, 0.0], [hi_E, np.inf, 5.0]),
                                   method="trf", x_scale="jac")
        E, k, al = (float(v) for v in r.x)
        x_c = float(np.exp(lx0 + k / al)) if al > 0 else float("nan")
        return cls(E=E, x_c=x_c, alpha=al, n_points=int(x.size), rmse_log=float(np.sqrt(np.mean(r.fun ** 2))))

    def __repr__(self) -> str:
        return f"OffsetPowerLaw({_fmt(self.E)} + ({self.x_c:.3g}/x)^{self.alpha:.4f})"


def parametric_optimum(E, A, B, alpha, beta, C) -> Allocation:
    """Compute-optimal (N, D) of L = E + A/N^alpha + B/D^beta under C = 6ND, in closed form.

    Hoffmann et al. 2022 §3.3 and Appendix D.2 (eq. 4): G = (alpha A / (beta B))^(1/(alpha+beta)),
    a = beta/(alpha+beta), b = alpha/(alpha+beta), N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b.
    """
    if not (alpha > 0 and beta > 0 and A > 0 and B > 0):
        raise FitError(f"parametric_optimum: needs alpha, beta, A, B > 0 for a finite optimum, got A={A}, B={B}, "
                       f"alpha={alpha}, beta={beta}")
    with np.errstate(divide="ignore"):
        return _parametric_optimum_log(E, float(np.log(A)), float(np.log(B)), alpha, beta, C)


def _parametric_optimum_log(E, logA, logB, alpha, beta, C) -> Allocation:
    """``parametric_optimum`` from log A and log B: finite even where A = e^logA overflows (degenerate fits)."""
    if not (alpha > 0 and beta > 0 and np.isfinite(logA) and np.isfinite(logB)):
        raise FitError(f"parametric_optimum: needs alpha, beta > 0 and finite log A, log B for a finite optimum, "
                       f"got log A={logA}, log B={logB}, alpha={alpha}, beta={beta}")
    logC6 = np.log(np.asarray(C, dtype=float) / 6.0)
    logG = (math.log(alpha) + logA - math.log(beta) - logB) / (alpha + beta)
    a, b = beta / (alpha + beta), alpha / (alpha + beta)
    logN, logD = logG + a * logC6, b * logC6 - logG
    return Allocation.of(np.exp(logC6) * 6.0, np.exp(logN), np.exp(logD),
                         E + np.exp(logA - alpha * logN) + np.exp(logB - beta * logD))


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


# --------------------------------------------------------------------------------------------------------------------
# Approach 1: the envelope of training curves (Hoffmann et al. 2022 §3.1)
# --------------------------------------------------------------------------------------------------------------------

def _frontier(x: np.ndarray, y: np.ndarray, n_bins: int | None) -> np.ndarray:
    """Indices of the lower envelope of y against x: the minimum y in each log-spaced bin of x, kept only where it
    is below every minimum at smaller x (a point reached with less compute at lower loss dominates it)."""
    order = np.argsort(x, kind="stable")
    if n_bins:
        lx = np.log(x[order])
        edges = np.linspace(lx[0], lx[-1], n_bins + 1)
        which = np.clip(np.searchsorted(edges, lx, side="right") - 1, 0, n_bins - 1)
        picks = []
        for k in np.unique(which):
            members = order[which == k]
            picks.append(members[np.argmin(y[members])])
        order = np.array(picks)
    keep, best = [], np.inf
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    return np.array(keep, dtype=int)


@dataclass(frozen=True)
class Approach1Result:
    """Approach 1: N_opt = n_opt(C), D_opt = d_opt(C) fitted to the envelope of training curves."""

    n_opt: PowerLaw
    d_opt: PowerLaw
    envelope: pd.DataFrame = field(repr=False, compare=False)
    n_runs: int = 0
    n_points: int = 0
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    resample_group: str = "run_id"  # curves' rows are steps: the bootstrap resamples whole runs

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    def compute_optimal(self, C) -> Allocation:
        return Allocation.of(C, self.n_opt.predict(C), self.d_opt.predict(C))

    predict = compute_optimal

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"a": self.a, "b": self.b}
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param)
        return q

    def __repr__(self) -> str:
        return (f"Approach1Result(a={self.a:.4f}, b={self.b:.4f}, n_opt={self.n_opt!r}, d_opt={self.d_opt!r} | "
                f"envelope of {len(self.envelope)} points from {self.n_points} points of {self.n_runs} runs | "
                f"flops={self.flops_convention}, params={self.params_convention})")


def fit_approach1(curves: pd.DataFrame, *, n_col: str = "N", d_col: str = "D", c_col: str = "C",
                  loss_col: str = "loss", run_col: str = "run_id", only_schedule_complete: bool = True,
                  complete_col: str = "schedule_complete", n_bins: int | None = 40,
                  drop_edge_sizes: bool = True) -> Approach1Result:
    """Chinchilla Approach 1 (Hoffmann et al. 2022 §3.1): the minimum loss reached at each FLOP count across all
    curves (the envelope), the (N, D) reaching it, and power laws N_opt ∝ C^a, D_opt ∝ C^b fitted to them.

    ``curves`` has one row per logged point (``analysis.load_curves``). Only points where the LR schedule had
    finished are valid (a cosine run mid-way is not the best model for that many tokens), so with
    ``only_schedule_complete`` rows whose ``complete_col`` is False are dropped. The envelope is taken over
    ``n_bins`` log-spaced FLOP bins (None: every point), keeping a bin's minimum only if it beats every bin below.
    With ``drop_edge_sizes``, envelope points reached by the smallest or largest model are kept in ``envelope``
    (column ``used`` False) but not fitted: there the true optimum may lie outside the sampled sizes.
    """
    fn = "fit_approach1"
    curves = _unique_index(curves)
    roles = dict(N=n_col, D=d_col, C=c_col, loss=loss_col)
    t = _take(curves, fn, "curves", drop_nan=("loss",), positive=("N", "D", "C", "loss"), **roles)
    if only_schedule_complete:
        if complete_col not in curves.columns:
            raise FitError(f"{fn}: column {complete_col!r} (complete_col) is not in curves, so the points where the "
                           f"LR schedule had finished are unknown; pass only_schedule_complete=False if every row "
                           f"is a finished schedule")
        done = curves.loc[t.index, complete_col].fillna(False).astype(bool).to_numpy()
        t = t[done]
        if len(t) == 0:
            raise FitError(f"{fn}: no row of curves has {complete_col}=True and a finite {loss_col!r}")
    runs = curves.loc[t.index, run_col] if run_col in curves.columns else pd.Series(np.arange(len(t)), t.index)
    C, loss = t["C"].to_numpy(), t["loss"].to_numpy()
    idx = _frontier(C, loss, n_bins)
    N = t["N"].to_numpy()
    env = pd.DataFrame({"C": C[idx], "N": N[idx], "D": t["D"].to_numpy()[idx], "loss": loss[idx],
                        "run_id": runs.to_numpy()[idx]})
    # Where the smallest or largest model reaches the envelope, the optimum may lie beyond the sampled sizes: that
    # stretch of the envelope flattens against the edge and would bias the exponent toward 0.
    env["used"] = True
    if drop_edge_sizes and np.unique(N).size >= 3:
        env["used"] = (env["N"] > N.min()) & (env["N"] < N.max())
    used = env[env["used"]]
    if used["C"].nunique() < 2:
        raise FitError(f"{fn}: the envelope has {used['C'].nunique()} usable FLOP value(s) (of {len(env)} points, "
                       f"{int((~env['used']).sum())} reached by the smallest or largest model); at least 2 are "
                       f"needed: add runs or sizes, or set drop_edge_sizes=False")
    fc, pc = _conventions(curves)
    return Approach1Result(n_opt=PowerLaw.fit(used["C"], used["N"]), d_opt=PowerLaw.fit(used["C"], used["D"]),
                           envelope=env, n_runs=int(runs.nunique()), n_points=len(t), flops_convention=fc,
                           params_convention=pc, data=curves, resample_group=run_col)


# --------------------------------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP parabolas (Hoffmann et al. 2022 §3.2)
# --------------------------------------------------------------------------------------------------------------------

def isoflop_groups(df: pd.DataFrame, budget_col: str = "budget", c_col: str = "C") -> pd.Series:
    """The IsoFLOP budget of each row: ``budget_col`` where finite, else ``c_col`` rounded to 2 significant figures
    (runs sized for one budget land within rounding of it)."""
    key = pd.Series(np.nan, index=df.index, dtype=float)
    if budget_col in df.columns:
        key = pd.to_numeric(df[budget_col], errors="coerce").astype(float)
    missing = key.isna()
    if missing.any():
        if c_col not in df.columns:
            raise FitError(f"isoflop_groups: neither column {budget_col!r} (budget_col) nor {c_col!r} (c_col) gives "
                           f"the budget of {int(missing.sum())} row(s); columns are {list(df.columns)}")
        c = pd.to_numeric(df.loc[missing, c_col], errors="coerce").to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = 10.0 ** (np.floor(np.log10(c)) - 1)
        key[missing] = np.round(c / mag) * mag
    return key


def isoflop_minimum(N, D, loss) -> dict[str, float]:
    """Fit loss = p2 (ln N)^2 + p1 ln N + p0 to one budget's runs and return its minimum.

    Returns N_opt, D_opt (from a straight line of ln D against ln N through the budget's runs, which is exact for
    C = 6ND and nearly so under conventions that add attention FLOPs), loss_opt, inside (whether N_opt lies within
    the sampled N), curvature (d^2 loss / d(ln N)^2 = 2 p2) and the coefficients p2, p1, p0. N_opt is NaN when
    the parabola opens downward.
    """
    x, ld, y = np.log(np.asarray(N, float)), np.log(np.asarray(D, float)), np.asarray(loss, float)
    if np.unique(x).size < 3:
        raise FitError(f"isoflop_minimum: a parabola needs at least 3 distinct N, got {np.unique(x).size}")
    xm = x.mean()
    q2, q1, q0 = np.polyfit(x - xm, y, 2)
    p2, p1, p0 = q2, q1 - 2 * q2 * xm, q2 * xm * xm - q1 * xm + q0
    if q2 > 0:
        xo = xm - q1 / (2 * q2)
        lo = q0 - q1 * q1 / (4 * q2)
        s, c = np.polyfit(x, ld, 1)
        No, Do = math.exp(xo), math.exp(c + s * xo)
        inside = bool(x.min() <= xo <= x.max())
    else:
        No = Do = lo = float("nan")
        inside = False
    return dict(N_opt=No, D_opt=Do, loss_opt=float(lo), inside=inside, curvature=float(2 * q2), p2=float(p2),
                p1=float(p1), p0=float(p0), n_runs=int(x.size), N_min=float(np.exp(x.min())),
                N_max=float(np.exp(x.max())))


@dataclass(frozen=True)
class Approach2Result:
    """Approach 2: one parabola a budget (``per_budget``), then N_opt ∝ C^a and D_opt ∝ C^b across budgets."""

    n_opt: PowerLaw
    d_opt: PowerLaw
    per_budget: pd.DataFrame = field(repr=False, compare=False)
    n_budgets_used: int = 0
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    data: pd.DataFrame = field(default=None, repr=False, compare=False)

    @property
    def a(self) -> float:
        return self.n_opt.exponent

    @property
    def b(self) -> float:
        return self.d_opt.exponent

    @functools.cached_property
    def loss_opt(self) -> OffsetPowerLaw | None:
        """L_opt(C) = E + (C_c/C)^alpha_C through the used budgets' minimum losses (None with fewer than 4)."""
        u = self.per_budget[self.per_budget["used"]]
        return OffsetPowerLaw.fit(u["C"], u["loss_opt"]) if len(u) >= 4 else None

    def compute_optimal(self, C) -> Allocation:
        loss = self.loss_opt.predict(C) if self.loss_opt is not None else np.full(np.shape(C), np.nan)
        return Allocation.of(C, self.n_opt.predict(C), self.d_opt.predict(C), loss)

    predict = compute_optimal

    def parabola(self, budget: float, N):
        """The fitted parabola of ``budget`` (a value of ``per_budget.budget``) evaluated at model sizes N."""
        rows = self.per_budget[np.isclose(self.per_budget["budget"], budget, rtol=1e-9)]
        if rows.empty:
            raise FitError(f"parabola: budget={budget!r} is not one of {self.per_budget['budget'].tolist()}")
        r = rows.iloc[0]
        x = np.log(np.asarray(N, dtype=float))
        return _scalar_or_array(r["p2"] * x * x + r["p1"] * x + r["p0"])

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"a": self.a, "b": self.b}
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param)
            if self.loss_opt is not None:
                q["loss"] = al.loss
        return q

    def __repr__(self) -> str:
        n_out = int((~self.per_budget["inside"]).sum())
        return (f"Approach2Result(a={self.a:.4f}, b={self.b:.4f}, n_opt={self.n_opt!r}, d_opt={self.d_opt!r} | "
                f"{self.n_budgets_used} of {len(self.per_budget)} budgets used"
                f"{f', {n_out} with the minimum outside the sampled N' if n_out else ''} | "
                f"flops={self.flops_convention}, params={self.params_convention})")


def fit_approach2(runs: pd.DataFrame, *, n_col: str = "N", d_col: str = "D", c_col: str = "C",
                  loss_col: str = "loss", budget_col: str = "budget", require_inside: bool = True) -> Approach2Result:
    """Chinchilla Approach 2 (Hoffmann et al. 2022 §3.2): per IsoFLOP budget, a parabola of loss in ln N and its
    minimum N_opt(C), D_opt(C); then power laws N_opt ∝ C^a and D_opt ∝ C^b across budgets.

    Budgets come from ``budget_col`` (or C rounded to 2 significant figures where it is missing or NaN); C of a
    budget is the geometric mean of its runs' ``c_col`` (the FLOPs under the loaded convention; ``budget_col``
    itself when there is no ``c_col``). Budgets with fewer than 3 distinct N are skipped; with ``require_inside``,
    so are budgets whose minimum lies outside the sampled N (an extrapolated minimum), each with a warning. With at
    least 4 budgets the minimum losses also get an offset power law, so ``compute_optimal`` predicts the loss.
    """
    fn = "fit_approach2"
    runs = _unique_index(runs)
    has_c = isinstance(runs, pd.DataFrame) and c_col in runs.columns
    roles = dict(N=n_col, D=d_col, loss=loss_col) | ({"C": c_col} if has_c else {})
    t = _take(runs, fn, positive=tuple(roles), min_rows=3, **roles)
    if not has_c:
        if budget_col not in runs.columns:
            raise FitError(f"{fn}: column {c_col!r} (c_col) is not in runs and neither is {budget_col!r} "
                           f"(budget_col); one of them must give each run's FLOPs. Columns are {list(runs.columns)}")
        t["C"] = pd.to_numeric(runs.loc[t.index, budget_col], errors="coerce")
    key = isoflop_groups(runs.loc[t.index], budget_col, c_col if has_c else budget_col).to_numpy()
    N, D, L, C = (t[k].to_numpy() for k in ("N", "D", "loss", "C"))
    rows = []
    for budget in np.unique(key):
        g = key == budget
        if np.unique(N[g]).size < 3:
            warnings.warn(f"{fn}: budget {budget:.3g} has {np.unique(N[g]).size} distinct N (< 3); skipped")
            continue
        m = isoflop_minimum(N[g], D[g], L[g])
        rows.append(dict(budget=float(budget), C=float(np.exp(np.log(C[g]).mean())), **m))
    per = pd.DataFrame(rows, columns=["budget", "C", "N_opt", "D_opt", "loss_opt", "inside", "curvature", "p2",
                                      "p1", "p0", "n_runs", "N_min", "N_max"])
    usable = (per["curvature"] > 0).to_numpy().copy()
    inside = per["inside"].to_numpy(dtype=bool)
    for i in np.flatnonzero(~usable):
        warnings.warn(f"{fn}: budget {per['budget'].iat[i]:.3g}: the parabola opens downward (curvature "
                      f"{per['curvature'].iat[i]:.3g}); no minimum, skipped")
    if require_inside:
        for i in np.flatnonzero(usable & ~inside):
            warnings.warn(f"{fn}: budget {per['budget'].iat[i]:.3g}: the fitted minimum N={per['N_opt'].iat[i]:.3g} "
                          f"is outside the sampled N [{per['N_min'].iat[i]:.3g}, {per['N_max'].iat[i]:.3g}]; skipped "
                          f"(require_inside=False keeps it)")
        usable = usable & inside
    per["used"] = usable
    u = per[usable]
    if len(u) < 2:
        raise FitError(f"{fn}: {len(u)} budget(s) have a usable IsoFLOP minimum (of {len(per)} with >= 3 distinct "
                       f"N); at least 2 are needed for the power laws")
    fc, pc = _conventions(runs)
    return Approach2Result(n_opt=PowerLaw.fit(u["C"], u["N_opt"]), d_opt=PowerLaw.fit(u["C"], u["D_opt"]),
                           per_budget=per, n_budgets_used=len(u), flops_convention=fc,
                           params_convention=pc, data=runs)


# --------------------------------------------------------------------------------------------------------------------
# Approach 3: the parametric law L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022 §3.3, Appendix D.2)
# --------------------------------------------------------------------------------------------------------------------

# Parameter order of a start: the arguments of the LSE below.
GRID_COLUMNS = ("e", "a", "b", "alpha", "beta")


def approach3_grid(kind: str = "full") -> np.ndarray:
    """Starting points (rows of GRID_COLUMNS) for the Approach 3 fit.

    "full" is Hoffmann et al.'s grid (Appendix D.2), also used by Besiroglu et al.: alpha, beta in {0, 0.5, ..., 2},
    e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 5*5*5*6*6 = 4,500 starts. "small" (32 starts) is for
    refits that also start from a known optimum, such as bootstrap resamples.
    """
    if kind == "full":
        e, ab, ex = np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.1, 5.0), np.arange(0.0, 2.01, 0.5)
    elif kind == "small":
        e, ab, ex = np.array([-0.5, 0.5]), np.array([5.0, 15.0]), np.array([0.5, 1.0])
    else:
        raise FitError(f"approach3_grid: kind={kind!r}; allowed: 'full', 'small' (or pass an array as grid=)")
    return np.array([(ei, ai, bi, al, be) for ei, ai, bi, al, be in itertools.product(e, ab, ab, ex, ex)])


def approach3_objective(theta: np.ndarray, logN: np.ndarray, logD: np.ndarray, logL: np.ndarray,
                        delta: float = 1e-3, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed Huber loss and its gradient for S parameter vectors at once.

    theta is (S, 5) in GRID_COLUMNS order; for each row the objective is
    sum_i w_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) (Hoffmann et al. 2022 eq. 3),
    summed rather than averaged (Besiroglu et al. 2024 §2). ``weights`` (S, n), default 1, are how often each point
    occurs (a bootstrap resample). Returns f (S,) and grad (S, 5).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # wild line-search trials give inf/nan f, which are rejected
        return _approach3_objective(np.atleast_2d(theta), logN, logD, logL, delta, weights)


def _approach3_objective(theta, logN, logD, logL, delta, weights):
    e, a, b, al, be = theta.T
    # Shift each row by the largest of its LSE arguments over the data. The largest of a - alpha*logN sits at an
    # end of the logN range, so the shift costs nothing per point and the exponentials cannot overflow.
    lnr, ldr = (logN.min(), logN.max()), (logD.min(), logD.max())
    m = np.maximum(np.maximum(a - np.minimum(al * lnr[0], al * lnr[1]), b - np.minimum(be * ldr[0], be * ldr[1])), e)
    e1 = np.multiply.outer(-al, logN)
    e1 += (a - m)[:, None]
    np.exp(e1, out=e1)
    e2 = np.multiply.outer(-be, logD)
    e2 += (b - m)[:, None]
    np.exp(e2, out=e2)
    e3 = np.exp(e - m)
    s = e1 + e2
    s += e3[:, None]
    np.maximum(s, 1e-300, out=s)  # only far outside any sensible region can every term underflow
    r = np.log(s)
    r += m[:, None] - logL
    c = np.clip(r, -delta, delta)  # Huber'(r)
    if weights is None:
        f = np.einsum("ij,ij->i", c, r) - 0.5 * np.einsum("ij,ij->i", c, c)  # Huber(r) = c (r - c/2)
    else:
        r -= 0.5 * c
        r *= c
        f = np.einsum("ij,ij->i", r, weights)
        c *= weights
    c /= s
    e1 *= c
    e2 *= c
    g = np.empty_like(theta, dtype=float)
    g[:, 0] = e3 * c.sum(1)
    g[:, 1] = e1.sum(1)
    g[:, 2] = e2.sum(1)
    g[:, 3] = -(e1 @ logN)
    g[:, 4] = -(e2 @ logD)
    return f, g


# Second pass from the best starts: a relative stop test, so a summed Huber loss of ~1e-4 is not cut short.
_REFINE = dict(ftol=0.0, gtol=1e-9, max_iter=5000)
# First pass from every start: scipy's stop tests, and an iteration cap (99% of starts stop by ~170 iterations on
# the benchmark; the stragglers' points still compete for the refinement pass).
_FIRST = dict(max_iter=400)

# L-BFGS stop reasons
_RUNNING, _GTOL, _FTOL, _LINESEARCH, _MAXITER = 0, 1, 2, 3, 4
_STOP_MESSAGES = {_GTOL: "gradient below gtol", _FTOL: "reduction of f below ftol",
                  _LINESEARCH: "line search found no decrease", _MAXITER: "iteration limit reached"}


def lbfgs_batch(fun_grad: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]], x0: np.ndarray, *,
                memory: int = 10, max_iter: int = 1000, gtol: float = 1e-5, ftol: float = 2.220446049250313e-09,
                f_floor: float = 1.0, max_ls: int = 30, c1: float = 1e-4
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Minimise S independent problems at once with L-BFGS (Nocedal & Wright 2006, Alg. 7.4 and 7.5).

    ``fun_grad(X, rows)`` maps (k, P) points of problems ``rows`` (indices into x0) to (f (k,), grad (k, P)), so
    every objective evaluation is one vectorised call over the problems still running. Each problem has its own
    memory, backtracking Armijo line search and stop test; a problem stops when max|grad| <= gtol or
    (f_old - f_new) <= ftol * max(|f_old|, |f_new|, f_floor).
    The defaults are scipy's L-BFGS-B's, whose f_floor of 1 makes the test absolute for small objectives: a summed
    Huber loss of ~1e-4 then stops while still far from the minimum, so refinement passes use f_floor=0 (a purely
    relative test). Returns x, f, status (see _STOP_MESSAGES), iterations.
    """
    x = np.array(x0, dtype=float)
    S, P = x.shape
    f, g = fun_grad(x, np.arange(S))
    f, g = np.array(f, dtype=float), np.array(g, dtype=float)
    m = memory
    sh, yh, rho = np.zeros((S, m, P)), np.zeros((S, m, P)), np.zeros((S, m))
    n_hist, head, nit = np.zeros(S, int), np.zeros(S, int), np.zeros(S, int)
    status = np.zeros(S, int)
    status[~np.isfinite(f)] = _LINESEARCH
    status[(status == _RUNNING) & (np.abs(g).max(1) <= gtol)] = _GTOL
    for _ in range(max_iter):
        act = np.flatnonzero(status == _RUNNING)
        if act.size == 0:
            break
        ga, na, ha = g[act], n_hist[act], head[act]
        # two-loop recursion over each problem's stored pairs, gathered newest first; empty slots have rho = 0
        order = (ha[:, None] - 1 - np.arange(m)) % m
        S_o = np.take_along_axis(sh[act], order[:, :, None], 1)
        Y_o = np.take_along_axis(yh[act], order[:, :, None], 1)
        R_o = np.take_along_axis(rho[act], order, 1) * (np.arange(m) < na[:, None])
        q = -ga
        alpha = np.empty((act.size, m))
        for j in range(m):
            alpha[:, j] = R_o[:, j] * np.einsum("ij,ij->i", S_o[:, j], q)
            q -= alpha[:, j, None] * Y_o[:, j]
        sy, yy = np.einsum("ij,ij->i", S_o[:, 0], Y_o[:, 0]), np.einsum("ij,ij->i", Y_o[:, 0], Y_o[:, 0])
        gnorm = np.maximum(np.linalg.norm(ga, axis=1), 1e-300)
        gamma = np.where(na > 0, sy / np.where(yy > 0, yy, 1.0), 1.0 / gnorm)
        q *= gamma[:, None]
        for j in range(m - 1, -1, -1):
            bj = R_o[:, j] * np.einsum("ij,ij->i", Y_o[:, j], q)
            q += (alpha[:, j] - bj)[:, None] * S_o[:, j]
        p = q
        gp = np.einsum("ij,ij->i", ga, p)
        bad = ~(gp < 0)
        if bad.any():  # not a descent direction: forget the memory, take a unit steepest-descent step
            p[bad] = -ga[bad] / gnorm[bad, None]
            n_hist[act[bad]] = 0
            gp[bad] = -gnorm[bad]
        # backtracking line search with safeguarded quadratic interpolation
        t = np.ones(act.size)
        fa = f[act]
        xn, fn, gn = np.empty((act.size, P)), np.empty(act.size), np.empty((act.size, P))
        pend = np.arange(act.size)
        for _ls in range(max_ls):
            xt = x[act[pend]] + t[pend, None] * p[pend]
            ft, gt = fun_grad(xt, act[pend])
            ok = np.isfinite(ft) & (ft <= fa[pend] + c1 * t[pend] * gp[pend])
            done = pend[ok]
            xn[done], fn[done], gn[done] = xt[ok], ft[ok], gt[ok]
            pend = pend[~ok]
            if pend.size == 0:
                break
            tr, fr = t[pend], ft[~ok]
            curv = 2 * (fr - fa[pend] - gp[pend] * tr)
            tq = np.where(np.isfinite(curv) & (curv > 0), -gp[pend] * tr * tr / np.where(curv > 0, curv, 1.0),
                          0.5 * tr)
            t[pend] = np.clip(tq, 0.1 * tr, 0.5 * tr)
        failed = np.zeros(act.size, bool)
        failed[pend] = True
        status[act[failed]] = _LINESEARCH
        okm = ~failed
        ai = act[okm]
        s_new, y_new = xn[okm] - x[ai], gn[okm] - g[ai]
        sy = np.einsum("ij,ij->i", s_new, y_new)
        keep = sy > 1e-10 * np.einsum("ij,ij->i", y_new, y_new)  # curvature condition, else skip the update
        ki = ai[keep]
        slot = head[ki]
        sh[ki, slot], yh[ki, slot], rho[ki, slot] = s_new[keep], y_new[keep], 1.0 / sy[keep]
        head[ki] = (slot + 1) % m
        n_hist[ki] = np.minimum(n_hist[ki] + 1, m)
        f_old = f[ai]
        x[ai], f[ai], g[ai] = xn[okm], fn[okm], gn[okm]
        nit[ai] += 1
        st = np.zeros(ai.size, int)
        st[(f_old - f[ai]) <= ftol * np.maximum(np.maximum(np.abs(f_old), np.abs(f[ai])), f_floor)] = _FTOL
        st[np.abs(g[ai]).max(1) <= gtol] = _GTOL
        status[ai] = np.where(st > 0, st, status[ai])
    status[status == _RUNNING] = _MAXITER
    return x, f, status, nit


@dataclass(frozen=True)
class Approach3Result:
    """Approach 3: L(N, D) = E + A/N^alpha + B/D^beta; a = beta/(alpha+beta), b = alpha/(alpha+beta),
    G = (alpha A/(beta B))^(1/(alpha+beta)); ``huber_loss`` is the summed objective at the optimum."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    a: float
    b: float
    G: float
    huber_loss: float
    n_starts: int
    converged: bool
    n_points: int = 0
    delta: float = 1e-3
    message: str = ""
    n_iter: int = 0
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    columns: tuple[str, str, str] = ("N", "D", "loss")
    theta: tuple = field(default=(), repr=False, compare=False)  # (log E, log A, log B, alpha, beta) as fitted
    degenerate: bool = False  # an exponent outside [0.02, 3], or E, A or B out of floating range

    @property
    def params(self) -> tuple[float, float, float, float, float]:
        return (self.E, self.A, self.B, self.alpha, self.beta)

    @property
    def log_params(self) -> tuple[float, float, float, float, float]:
        """(log E, log A, log B, alpha, beta): the fitted coordinates, finite where A or B overflow."""
        if self.theta:
            return tuple(float(v) for v in self.theta)
        with np.errstate(divide="ignore"):
            return (float(np.log(self.E)), float(np.log(self.A)), float(np.log(self.B)), self.alpha, self.beta)

    def predict(self, N, D):
        _, la, lb, al, be = self.log_params
        lN, lD = np.log(np.asarray(N, dtype=float)), np.log(np.asarray(D, dtype=float))
        return _scalar_or_array(self.E + np.exp(la - al * lN) + np.exp(lb - be * lD))

    def compute_optimal(self, C) -> Allocation:
        """Closed form under C = 6ND (Hoffmann et al. 2022 eq. 4). With another FLOP convention, C here is still
        6ND: pass 6 * N * D of the allocation you want, not that convention's FLOPs."""
        _, la, lb, al, be = self.log_params
        return _parametric_optimum_log(self.E, la, lb, al, be, C)

    def residuals(self) -> pd.DataFrame:
        """The fitted data with the prediction and the log residual log L - log L_hat of each row."""
        n, d, l = self.columns
        out = self.data.copy()
        out["loss_pred"] = self.predict(out[n].to_numpy(float), out[d].to_numpy(float))
        out["resid_log"] = np.log(out[l].to_numpy(float)) - np.log(out["loss_pred"].to_numpy(float))
        return out

    def warm_start(self) -> dict[str, Any]:
        """Keyword arguments that refit resampled data from this optimum plus the small grid (used by bootstrap)."""
        return {"init": self, "grid": "small"}

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": self.a, "b": self.b}
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def __repr__(self) -> str:
        return (f"Approach3Result(E={_fmt(self.E)}, A={_fmt(self.A)}, B={_fmt(self.B)}, alpha={self.alpha:.4f}, "
                f"beta={self.beta:.4f} | a={self.a:.4f}, b={self.b:.4f}, G={_fmt(self.G)} | "
                f"huber={self.huber_loss:.4g} over {self.n_points} points, best of {self.n_starts} starts, "
                f"{'converged' if self.converged else 'NOT converged: ' + self.message}"
                f"{', DEGENERATE (the data do not pin every term)' if self.degenerate else ''} | "
                f"flops={self.flops_convention}, params={self.params_convention})")


def _init_row(init) -> np.ndarray:
    if isinstance(init, Approach3Result):
        row = np.asarray(init.log_params, dtype=float)
        if not np.all(np.isfinite(row)):
            raise FitError(f"fit_approach3: init={init!r} has non-finite log parameters {row.tolist()}")
        return row
    if isinstance(init, dict):
        missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in init]
        if missing:
            raise FitError(f"fit_approach3: init is missing {missing}; give E, A, B, alpha, beta")
        init = (init["E"], init["A"], init["B"], init["alpha"], init["beta"])
    v = np.asarray(init, dtype=float).ravel()
    if v.size != 5 or not np.all(np.isfinite(v)) or np.any(v[:3] <= 0):
        raise FitError(f"fit_approach3: init={init!r}; expected (E, A, B, alpha, beta) with E, A, B > 0")
    return np.array([np.log(v[0]), np.log(v[1]), np.log(v[2]), v[3], v[4]])


def _approach3_starts(fn: str, grid, init) -> np.ndarray:
    if isinstance(grid, str):
        starts = approach3_grid(grid)
    elif isinstance(grid, pd.DataFrame):
        starts = grid[list(GRID_COLUMNS)].to_numpy(dtype=float)
    else:
        starts = np.asarray(grid, dtype=float)
    if starts.ndim != 2 or starts.shape[1] != 5 or not np.all(np.isfinite(starts)):
        raise FitError(f"{fn}: grid has shape {starts.shape}; expected finite (S, 5) starts in order "
                       f"{GRID_COLUMNS}, or 'full' / 'small'")
    if init is not None:
        starts = np.vstack([_init_row(init)[None, :], starts])
    return starts


def _approach3_data(runs, fn, n_col, d_col, loss_col, delta):
    if not (isinstance(delta, (int, float)) and delta > 0):
        raise FitError(f"{fn}: delta={delta!r}; must be a number > 0")
    t = _take(runs, fn, positive=("N", "D", "loss"), min_rows=5, N=n_col, D=d_col, loss=loss_col)
    return t, tuple(np.log(t[k].to_numpy()) for k in ("N", "D", "loss"))


def _approach3_result(theta, fval, converged, message, n_iter, n_starts, n_points, delta, runs, data, columns,
                      fn) -> Approach3Result:
    e, la, lb, alpha, beta = (float(v) for v in theta)
    with np.errstate(over="ignore", under="ignore"):
        E, A, B = (float(np.exp(v)) for v in (e, la, lb))
    s = alpha + beta
    if alpha > 0 and beta > 0:
        G = float(np.exp((math.log(alpha) + la - math.log(beta) - lb) / s))
    else:
        G = float("nan")
    degenerate = not (0.02 <= alpha <= 3 and 0.02 <= beta <= 3 and all(0 < v < np.inf for v in (E, A, B)))
    if degenerate and data is not None:  # (resample refits stay quiet: bootstrap counts them through the values)
        warnings.warn(f"{fn}: degenerate fit: E={E:.3g}, A={A:.3g}, B={B:.3g}, alpha={alpha:.3g}, beta={beta:.3g} "
                      f"(log A={la:.3g}, log B={lb:.3g}); an exponent outside [0.02, 3] (a term that is constant or a "
                      f"step over the data) or a coefficient out of floating range means the data do not constrain "
                      f"that term (too few sizes or token counts, or too narrow a range)")
    fc, pc = _conventions(runs)
    return Approach3Result(E=E, A=A, B=B, alpha=alpha, beta=beta, a=beta / s if s else float("nan"),
                           b=alpha / s if s else float("nan"), G=G, huber_loss=float(fval), n_starts=n_starts,
                           converged=bool(converged), n_points=n_points, delta=float(delta), message=message,
                           n_iter=int(n_iter), flops_convention=fc, params_convention=pc, data=data,
                           columns=columns, theta=(e, la, lb, alpha, beta), degenerate=degenerate)


def fit_approach3(runs: pd.DataFrame, *, n_col: str = "N", d_col: str = "D", loss_col: str = "loss",
                  delta: float = 1e-3, grid: str | np.ndarray = "full", init=None, n_polish: int = 3,
                  n_threads: int | None = None) -> Approach3Result:
    """Chinchilla Approach 3 (Hoffmann et al. 2022 §3.3, Appendix D.2): fit L(N, D) = E + A/N^alpha + B/D^beta.

    Minimises sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) with A = e^a, B = e^b,
    E = e^e, by L-BFGS from every start of ``grid`` ("full": the paper's 4,500; "small": 32; or an (S, 5) array in
    GRID_COLUMNS order) plus ``init`` ((E, A, B, alpha, beta), a dict of those, or an Approach3Result), all starts
    at once on a vectorised objective with its analytic gradient (``lbfgs_batch``, stop tests as scipy's L-BFGS-B).
    The ``n_polish`` best distinct optima are then run on with a relative stop test (with the default absolute one,
    a summed Huber loss of ~1e-4 stops up to a few % above its minimum), and the best is kept; ``converged`` says
    whether that last run met its stop test. Large grids are split over ``n_threads`` threads (default: up to 2;
    numpy releases the GIL).
    """
    fn = "fit_approach3"
    runs = _unique_index(runs)
    t, (logN, logD, logL) = _approach3_data(runs, fn, n_col, d_col, loss_col, delta)
    starts = _approach3_starts(fn, grid, init)

    def fun_grad(X, rows=None):
        return approach3_objective(X, logN, logD, logL, delta)

    n_threads = n_threads or min(2, os.cpu_count() or 1)
    chunks = np.array_split(starts, n_threads) if (n_threads > 1 and len(starts) >= 1000) else [starts]
    if len(chunks) > 1:
        with ThreadPoolExecutor(len(chunks)) as ex:
            parts = list(ex.map(lambda c: lbfgs_batch(fun_grad, c, **_FIRST), chunks))
        x, f, status, nit = (np.concatenate(z) for z in zip(*parts))
    else:
        x, f, status, nit = lbfgs_batch(fun_grad, starts, **_FIRST)

    # refine the best few distinct optima with a purely relative stop test (f_floor=0), keep the best
    order = [i for i in np.argsort(f) if np.isfinite(f[i])]
    if not order:
        raise FitError(f"{fn}: the objective is not finite at any start")
    picked: list[int] = []
    for i in order:
        if all(np.max(np.abs(x[i] - x[j])) > 1e-3 for j in picked):
            picked.append(i)
        if len(picked) >= max(1, n_polish):
            break
    x2, f2, st2, nit2 = lbfgs_batch(fun_grad, x[picked], **_REFINE)
    j = int(np.argmin(np.where(np.isfinite(f2), f2, np.inf)))
    if not f2[j] <= f[picked[0]]:  # cannot happen (L-BFGS only descends); keep the first pass's best
        j, x2, f2, st2, nit2 = 0, x[picked[:1]], f[picked[:1]], status[picked[:1]], np.zeros(1, int)
    fval, th, conv = f2[j], x2[j], st2[j] in (_GTOL, _FTOL)
    msg, n_iter = _STOP_MESSAGES[st2[j]], int(nit[picked[j]] + nit2[j])
    return _approach3_result(th, fval, conv, "" if conv else msg, n_iter, len(starts), len(t), delta, runs,
                             runs.loc[t.index], (n_col, d_col, loss_col), fn)


def fit_approach3_resamples(runs: pd.DataFrame, resamples: list[np.ndarray], *, n_col: str = "N", d_col: str = "D",
                            loss_col: str = "loss", delta: float = 1e-3, grid: str | np.ndarray = "small",
                            init=None, n_threads: int | None = None) -> list[Approach3Result]:
    """Approach 3 refitted on many resamples of ``runs`` at once (what ``bootstrap`` uses for Approach 3).

    ``resamples`` are arrays of row positions. A resample's objective is the full data's with each point weighted
    by how often it was drawn, so every (resample, start) pair becomes one problem of a single ``lbfgs_batch``
    call: thousands of small fits share each vectorised evaluation instead of paying Python overhead one by one.
    Starts are ``grid`` plus ``init`` (usually the full-data optimum), and each resample's best start is refined
    with the relative stop test, as in ``fit_approach3``. The results carry no ``data``. Chunks of resamples run
    on ``n_threads`` threads (default: every core).
    """
    fn = "fit_approach3_resamples"
    runs = _unique_index(runs)
    t, (logN, logD, logL) = _approach3_data(runs, fn, n_col, d_col, loss_col, delta)
    starts = _approach3_starts(fn, grid, init)
    K, n = len(starts), len(t)
    pos = np.flatnonzero(runs.index.isin(t.index))  # positions of usable rows; resamples index runs by position
    remap = np.full(len(runs), -1)
    remap[pos] = np.arange(n)
    weights = np.zeros((len(resamples), n))
    for r, idx in enumerate(resamples):
        kept = remap[np.asarray(idx, dtype=int)]
        weights[r] = np.bincount(kept[kept >= 0], minlength=n)

    def solve(block: np.ndarray):
        W = np.repeat(weights[block], K, axis=0)  # problem p = (resample block[p // K], start p % K)

        def fun_grad(X, rows):
            return approach3_objective(X, logN, logD, logL, delta, W[rows])

        x, f, status, nit = lbfgs_batch(fun_grad, np.tile(starts, (len(block), 1)), **_FIRST)
        k = np.argmin(np.where(np.isfinite(f), f, np.inf).reshape(len(block), K), axis=1)
        p = np.arange(len(block)) * K + k  # each resample's best start, refined as in fit_approach3
        W1 = weights[block]
        x2, f2, st2, nit2 = lbfgs_batch(lambda X, rows: approach3_objective(X, logN, logD, logL, delta, W1[rows]),
                                        x[p], **_REFINE)
        return x2, f2, st2, nit[p] + nit2

    per_block = max(1, int(1.2e6 // (K * n)))  # ~10 MB a temporary array
    blocks = [np.arange(i, min(i + per_block, len(resamples))) for i in range(0, len(resamples), per_block)]
    n_threads = n_threads or os.cpu_count() or 1
    if n_threads > 1 and len(blocks) > 1:
        with ThreadPoolExecutor(min(n_threads, len(blocks))) as ex:
            parts = list(ex.map(solve, blocks))
    else:
        parts = [solve(b) for b in blocks]
    out = []
    for x, f, status, nit in parts:
        for i in range(len(f)):
            out.append(_approach3_result(x[i], f[i], status[i] in (_GTOL, _FTOL), _STOP_MESSAGES.get(status[i], ""),
                                         nit[i], K, int(weights[len(out)].sum()), delta, runs, None,
                                         (n_col, d_col, loss_col), fn))
    return out


# --------------------------------------------------------------------------------------------------------------------
# Kaplan et al. 2020 forms
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KaplanResult:
    """Kaplan forms: ``l_n``, ``l_d``, ``l_c`` are L(x) = E + (x_c/x)^alpha_x fitted to the lower envelope of loss
    against N, D and C (None where too few points); the joint law is
    L(N, D) = E + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D (Kaplan et al. 2020 eq. 1.5, E = 0 without offset)."""

    N_c: float
    D_c: float
    alpha_N: float
    alpha_D: float
    E: float
    l_n: OffsetPowerLaw | None
    l_d: OffsetPowerLaw | None
    l_c: OffsetPowerLaw | None
    converged: bool
    rmse_log: float = float("nan")
    n_points: int = 0
    offset: bool = True
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    data: pd.DataFrame = field(default=None, repr=False, compare=False)

    def _law(self, name):
        law = getattr(self, name)
        if law is None:
            raise FitError(f"KaplanResult: {name} was not fitted (too few distinct values)")
        return law

    def predict_n(self, N):
        return self._law("l_n").predict(N)

    def predict_d(self, D):
        return self._law("l_d").predict(D)

    def predict_c(self, C):
        return self._law("l_c").predict(C)

    def predict(self, N, D):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        p = self.alpha_N / self.alpha_D
        return _scalar_or_array(self.E + ((self.N_c / N) ** p + self.D_c / D) ** self.alpha_D)

    def compute_optimal(self, C) -> Allocation:
        """Minimum of the joint law under C = 6ND (``kaplan_joint_optimum``)."""
        return kaplan_joint_optimum(self.N_c, self.D_c, self.alpha_N, self.alpha_D, self.E, C)

    @property
    def a(self) -> float:
        return self.alpha_D / (self.alpha_N + self.alpha_D)

    def warm_start(self) -> dict[str, Any]:
        """Keyword arguments that refit resampled data from this optimum (used by bootstrap)."""
        return {"init": self}

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"alpha_N": self.alpha_N, "alpha_D": self.alpha_D, "N_c": self.N_c, "D_c": self.D_c, "E": self.E,
             "a": self.a}
        if self.l_c is not None:
            q["alpha_C"] = self.l_c.alpha
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def __repr__(self) -> str:
        return (f"KaplanResult(joint: N_c={self.N_c:.3g}, D_c={self.D_c:.3g}, alpha_N={self.alpha_N:.4f}, "
                f"alpha_D={self.alpha_D:.4f}, E={_fmt(self.E)}{'' if self.converged else ' NOT converged'} | "
                f"L(N)={self.l_n!r}, L(D)={self.l_d!r}, L(C)={self.l_c!r} | {self.n_points} points | "
                f"flops={self.flops_convention}, params={self.params_convention})")


def fit_kaplan(runs: pd.DataFrame, *, n_col: str = "N", d_col: str = "D", c_col: str = "C", loss_col: str = "loss",
               offset: bool = True, init: "KaplanResult | None" = None) -> KaplanResult:
    """Kaplan et al. 2020 forms, each with an irreducible offset E unless ``offset=False``.

    - L(N) (eq. 1.1) on the best loss of each distinct N,
    - L(D) (eq. 1.2) and L(C) (eq. 1.3) on the lower envelope of loss against D and against C,
    - the joint L(N, D) (eq. 1.5) on every run, by least squares on log L from a small grid of starts.
    L(C) is skipped when there is no ``c_col``.
    """
    fn = "fit_kaplan"
    runs = _unique_index(runs)
    has_c = isinstance(runs, pd.DataFrame) and c_col in runs.columns
    roles = dict(N=n_col, D=d_col, loss=loss_col) | ({"C": c_col} if has_c else {})
    t = _take(runs, fn, positive=tuple(roles), min_rows=5 if offset else 4, **roles)
    N, D, L = (t[k].to_numpy() for k in ("N", "D", "loss"))

    def single(x, y):
        try:
            return OffsetPowerLaw.fit(x, y, offset=offset)
        except FitError as err:
            warnings.warn(f"{fn}: {err}")
            return None

    best_n = t.groupby("N")["loss"].min()
    l_n = single(best_n.index.to_numpy(), best_n.to_numpy())
    idx = _frontier(D, L, None)
    l_d = single(D[idx], L[idx])
    l_c = None
    if has_c:
        C = t["C"].to_numpy()
        idx = _frontier(C, L, None)
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
    E, aN, aD, u, v = (float(z) for z in unpack(best.x))
    fc, pc = _conventions(runs)
    return KaplanResult(N_c=math.exp(u), D_c=math.exp(v), alpha_N=aN, alpha_D=aD, E=E, l_n=l_n, l_d=l_d, l_c=l_c,
                        converged=bool(best.success), rmse_log=float(np.sqrt(np.mean(best.fun ** 2))),
                        n_points=len(t), offset=offset, flops_convention=fc, params_convention=pc, data=runs)


# --------------------------------------------------------------------------------------------------------------------
# Bootstrap
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BootstrapResult:
    """Percentile bootstrap: ``samples`` has one row a resample (NaN where its fit failed), ``intervals`` one row a
    quantity with the full-data estimate and the [lo, hi] interval at ``level``."""

    result: Any
    samples: pd.DataFrame = field(repr=False)
    intervals: pd.DataFrame = field(repr=False)
    level: float
    n_resamples: int
    n_failed: int
    seed: int
    group_col: str | None
    seconds: float = float("nan")

    def interval(self, quantity: str) -> tuple[float, float]:
        row = self.intervals[self.intervals["quantity"] == quantity]
        if row.empty:
            raise FitError(f"BootstrapResult.interval: quantity={quantity!r}; "
                           f"have {self.intervals['quantity'].tolist()}")
        return float(row["lo"].iloc[0]), float(row["hi"].iloc[0])

    def __repr__(self) -> str:
        lines = [f"BootstrapResult({self.n_resamples} resamples over "
                 f"{self.group_col or 'rows'}, {self.n_failed} failed, {self.level:.0%} percentile intervals, "
                 f"seed={self.seed})"]
        for _, r in self.intervals.iterrows():
            lines.append(f"  {r['quantity']:>16}: {_fmt(r['estimate'])}  [{_fmt(r['lo'])}, {_fmt(r['hi'])}]")
        return "\n".join(lines)


def _accepts(fn: Callable, names) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return all(n in params for n in names)


def _resample_indices(df: pd.DataFrame, n_resamples: int, seed: int, group_col: str | None,
                      strata_col: str | None) -> list[np.ndarray]:
    """Row positions of every resample, drawn up front from one generator so results do not depend on n_jobs."""
    rng = np.random.default_rng(seed)
    n = len(df)
    if group_col is not None:
        codes, uniq = pd.factorize(df[group_col], sort=True)
        members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
        out = []
        for _ in range(n_resamples):
            pick = rng.integers(0, len(members), len(members))
            out.append(np.concatenate([members[k] for k in pick]))
        return out
    if strata_col is not None:
        codes, uniq = pd.factorize(isoflop_groups(df, strata_col) if strata_col == "budget" else df[strata_col],
                                   sort=True)
        members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
        return [np.concatenate([m[rng.integers(0, m.size, m.size)] for m in members]) for _ in range(n_resamples)]
    return [rng.integers(0, n, n) for _ in range(n_resamples)]


def _resample(df: pd.DataFrame, idx: np.ndarray) -> pd.DataFrame:
    out = df.iloc[idx].reset_index(drop=True)
    out.attrs.update(df.attrs)
    return out


def _approach3_keywords(fit_fn) -> dict[str, Any] | None:
    """The keywords ``fit_fn`` passes to fit_approach3 if it is fit_approach3 or a functools.partial of it."""
    kw: dict[str, Any] = {}
    f = fit_fn
    while isinstance(f, functools.partial):
        if f.args:
            return None
        kw = {**f.keywords, **kw}  # an outer partial's keywords win
        f = f.func
    return kw if f is fit_approach3 else None


def _bootstrap_chunk(fit_fn, df, chunk, kwargs, quantities):
    rows = []
    for idx in chunk:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = fit_fn(_resample(df, idx), **kwargs)
                rows.append({k: float(v) for k, v in quantities(res).items()})
            except (FitError, ValueError, ArithmeticError, np.linalg.LinAlgError):
                rows.append(None)
    return rows


def bootstrap(fit_fn: Callable[..., Any], df: pd.DataFrame, *, n_resamples: int = 1000, seed: int = 0,
              quantities: Callable[[Any], dict[str, float]] | None = None, level: float = 0.9,
              group_col: str | None = None, strata_col: str | None = None, budget: float | None = None,
              n_jobs: int | None = None) -> BootstrapResult:
    """Percentile bootstrap of any fit: refit ``fit_fn`` on ``n_resamples`` resamples of ``df`` and report the
    ``level`` interval of every quantity.

    Resamples draw rows (runs) with replacement; with ``group_col``, whole groups (e.g. "run_id" for curves,
    "budget" for IsoFLOP sets); with ``strata_col``, rows within each stratum (each budget keeps its run count).
    Fits over curves (Approach 1) resample whole runs by default. ``quantities(result) -> dict`` picks what to
    report (default ``result.default_quantities(budget=budget)``: exponents, E, N_opt and D_opt at ``budget``...).
    If the full-data result offers ``warm_start()`` (Approach 3) and ``fit_fn`` accepts those keywords, resamples
    start from the full-data optimum plus the small grid. When ``fit_fn`` is ``fit_approach3`` (or a
    functools.partial of it) all resamples are solved together by ``fit_approach3_resamples`` on ``n_jobs``
    threads; any other ``fit_fn`` is called once a resample, on ``n_jobs`` processes (joblib). Reproducible by
    ``seed`` whatever ``n_jobs``; ``n_jobs`` None uses every core (for other fits: when the resamples would take
    more than a few seconds on one). Resamples whose fit fails are NaN rows, counted in ``n_failed``; infinite
    values (a coefficient that overflows in a degenerate refit) are NaN too.
    """
    t0 = time.perf_counter()
    if not isinstance(df, pd.DataFrame) or len(df) == 0:
        raise FitError(f"bootstrap: df must be a non-empty DataFrame, got "
                       f"{type(df).__name__ if not isinstance(df, pd.DataFrame) else 'an empty one'}")
    if not (isinstance(n_resamples, int) and n_resamples >= 2):
        raise FitError(f"bootstrap: n_resamples={n_resamples!r}; must be an integer >= 2")
    if not (0 < level < 1):
        raise FitError(f"bootstrap: level={level!r}; must be in (0, 1)")
    for name, col in (("group_col", group_col), ("strata_col", strata_col)):
        if col is not None and col not in df.columns:
            raise FitError(f"bootstrap: {name}={col!r} is not a column of df; columns are {list(df.columns)}")
    full = fit_fn(df)
    if group_col is None and strata_col is None:
        g = getattr(full, "resample_group", None)
        if g is not None and g in df.columns:
            group_col = g
    if quantities is None:
        if not hasattr(full, "default_quantities"):
            raise FitError(f"bootstrap: {type(full).__name__} has no default_quantities(); pass quantities=")
        quantities = _DefaultQuantities(budget)
    estimate = {k: float(v) for k, v in quantities(full).items()}
    kwargs = full.warm_start() if hasattr(full, "warm_start") else {}
    if kwargs and not _accepts(fit_fn, kwargs):
        kwargs = {}
    data = df.reset_index(drop=True)
    data.attrs.update(df.attrs)
    chunks_idx = _resample_indices(data, n_resamples, seed, group_col, strata_col)
    cores = os.cpu_count() or 1
    a3 = _approach3_keywords(fit_fn)
    if a3 is not None:
        # Approach 3: every resample (x every start) solved in one batched L-BFGS, on threads
        kw = {k: v for k, v in a3.items() if k in ("n_col", "d_col", "loss_col", "delta")}
        kw.update(grid=a3.get("grid", "small"), init=a3.get("init"))
        kw.update(kwargs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = fit_approach3_resamples(data, chunks_idx, **kw,
                                           n_threads=cores if n_jobs is None or n_jobs < 0 else n_jobs)
        rows = []
        for res in fits:
            try:
                rows.append({k: float(v) for k, v in quantities(res).items()})
            except (FitError, ValueError, ArithmeticError):
                rows.append(None)
    else:
        # time one resample here to decide whether the process pool pays for itself
        t1 = time.perf_counter()
        rows = _bootstrap_chunk(fit_fn, data, chunks_idx[:1], kwargs, quantities)
        per_fit = time.perf_counter() - t1
        if n_jobs is None:
            n_jobs = cores if per_fit * (n_resamples - 1) > 3.0 else 1
        elif n_jobs < 0:
            n_jobs = cores
        rest = chunks_idx[1:]
        if n_jobs > 1 and len(rest) > 1:
            from joblib import Parallel, delayed
            parts = [p for p in np.array_split(np.arange(len(rest)), n_jobs * 4) if len(p)]
            for out in Parallel(n_jobs=n_jobs)(delayed(_bootstrap_chunk)(fit_fn, data, [rest[i] for i in p], kwargs,
                                                                         quantities) for p in parts):
                rows.extend(out)
        else:
            rows.extend(_bootstrap_chunk(fit_fn, data, rest, kwargs, quantities))
    names = list(estimate)
    samples = pd.DataFrame([r if r is not None else {k: np.nan for k in names} for r in rows], columns=names)
    samples = samples.replace([np.inf, -np.inf], np.nan)  # an overflowing coefficient (degenerate refit): no value
    n_failed = sum(r is None for r in rows)
    if n_failed > 0.1 * n_resamples:
        warnings.warn(f"bootstrap: {n_failed} of {n_resamples} resamples failed to fit; intervals use the rest")
    lo_q, hi_q = (1 - level) / 2, 1 - (1 - level) / 2
    intervals = pd.DataFrame({
        "quantity": names,
        "estimate": [estimate[k] for k in names],
        "lo": [float(np.nanquantile(samples[k], lo_q)) if samples[k].notna().any() else np.nan for k in names],
        "hi": [float(np.nanquantile(samples[k], hi_q)) if samples[k].notna().any() else np.nan for k in names],
    })
    return BootstrapResult(result=full, samples=samples, intervals=intervals, level=level, n_resamples=n_resamples,
                           n_failed=n_failed, seed=seed, group_col=group_col or strata_col,
                           seconds=time.perf_counter() - t0)


class _DefaultQuantities:
    """Picklable ``lambda r: r.default_quantities(budget=budget)`` for worker processes."""

    def __init__(self, budget):
        self.budget = budget

    def __call__(self, result):
        return result.default_quantities(budget=self.budget)


# --------------------------------------------------------------------------------------------------------------------
# Backtest
# --------------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BacktestResult:
    """A fit made without one budget, judged on it: ``predicted`` vs the ``observed`` IsoFLOP optimum of the
    held-out budget (its parabola's minimum); relative errors are predicted / observed - 1."""

    holdout_budget: float
    C: float
    observed: Allocation
    predicted: Allocation
    rel_err_N: float
    rel_err_D: float
    rel_err_loss: float
    observed_inside: bool
    n_train_runs: int
    n_holdout_runs: int
    result: Any = field(repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        q = ("N_opt", "D_opt", "loss")
        return pd.DataFrame({"quantity": q,
                             "predicted": [self.predicted.N_opt, self.predicted.D_opt, self.predicted.loss],
                             "observed": [self.observed.N_opt, self.observed.D_opt, self.observed.loss],
                             "rel_error": [self.rel_err_N, self.rel_err_D, self.rel_err_loss]})

    def __repr__(self) -> str:
        return (f"BacktestResult(holdout budget {self.holdout_budget:.3g} (C={self.C:.3g}, {self.n_holdout_runs} "
                f"runs; fit on {self.n_train_runs}): N_opt {self.predicted.N_opt:.3g} vs {self.observed.N_opt:.3g} "
                f"({self.rel_err_N:+.1%}), D_opt {self.predicted.D_opt:.3g} vs {self.observed.D_opt:.3g} "
                f"({self.rel_err_D:+.1%}), loss {_fmt(self.predicted.loss)} vs {_fmt(self.observed.loss)} "
                f"({self.rel_err_loss:+.2%}){'' if self.observed_inside else '; observed minimum extrapolated'})")


def backtest(fit_fn: Callable[..., Any], runs: pd.DataFrame, *, holdout_budget: float | None = None,
             n_col: str = "N", d_col: str = "D", c_col: str = "C", loss_col: str = "loss",
             budget_col: str = "budget", curves: pd.DataFrame | None = None,
             run_col: str = "run_id") -> BacktestResult:
    """Fit without one IsoFLOP budget (default: the largest) and predict its optimal N, D and loss.

    The observed optimum is the minimum of the held-out budget's parabola in ln N (``isoflop_minimum``); C is the
    geometric mean of its runs' ``c_col``. ``fit_fn`` is called on the remaining runs, or, when ``curves`` is
    given (Approach 1), on the curves of the remaining runs (matched on ``run_col``). Relative errors are
    predicted / observed - 1 (NaN for the loss if the fit cannot predict it).
    """
    fn = "backtest"
    runs = _unique_index(runs)
    t = _take(runs, fn, positive=("N", "D", "loss", "C"), min_rows=4, N=n_col, D=d_col, loss=loss_col, C=c_col)
    key = isoflop_groups(runs.loc[t.index], budget_col, c_col)
    budgets = np.sort(key.unique())
    if budgets.size < 3:
        raise FitError(f"{fn}: runs span {budgets.size} budget(s); a backtest needs at least 3 (2 to fit, 1 held out)")
    if holdout_budget is None:
        holdout_budget = float(budgets[-1])
    match = np.isclose(key.to_numpy(), holdout_budget, rtol=1e-6)
    if not match.any():
        raise FitError(f"{fn}: holdout_budget={holdout_budget!r} is not one of the budgets {budgets.tolist()}")
    held = t[match]
    obs = isoflop_minimum(held["N"], held["D"], held["loss"])
    C = float(np.exp(np.log(held["C"]).mean()))
    train = runs.loc[t.index[~match]]
    if curves is not None:
        if run_col not in runs.columns or run_col not in curves.columns:
            raise FitError(f"{fn}: run_col={run_col!r} must be a column of both runs and curves")
        res = fit_fn(curves[curves[run_col].isin(set(train[run_col]))])
    else:
        res = fit_fn(train)
    pred = res.compute_optimal(C)
    observed = Allocation.of(C, obs["N_opt"], obs["D_opt"], obs["loss_opt"])
    if not obs["inside"]:
        warnings.warn(f"{fn}: the held-out budget's minimum N={obs['N_opt']:.3g} lies outside its sampled N; "
                      f"the observed optimum is an extrapolation")
    return BacktestResult(holdout_budget=float(holdout_budget), C=C, observed=observed, predicted=pred,
                          rel_err_N=float(pred.N_opt / observed.N_opt - 1),
                          rel_err_D=float(pred.D_opt / observed.D_opt - 1),
                          rel_err_loss=float(pred.loss / observed.loss - 1), observed_inside=obs["inside"],
                          n_train_runs=len(train), n_holdout_runs=int(match.sum()), result=res)
