"""Learning rate per size from an LR sweep: each (N, D) group's best LR from a parabola in ln LR, and a power law of
that optimum in N (and D, or C, where the sweep supports it), written as a rule file the trainer reads.

    python -m analysis.lr results/lr_cpu                 # table, law, <sweep>/lr/lr_rule.json, lr_vs_loss.png/.svg
                                                         # (the command: analysis/cli/lr.py)
    python -m scaling.train ... train.lr_rule=results/lr_cpu/lr/lr_rule.json   # every later run uses the fitted law

Per group, loss against ln LR is fitted by a parabola through the lowest point and its neighbours (the classic
estimator of an optimum on a log grid, as for IsoFLOP minima in Hoffmann et al. 2022 §3.2). One neighbour on each side
by default: loss rises much faster above the optimal LR than below it, so a wider window drags the vertex down the
gentle side (measured on lr_cpu, N = 6.3k at 0.5M tokens: two neighbours put it at 0.012, one at 0.025, beside the
best sampled LR 0.032). An optimum whose parabola opens downward or whose vertex lies outside the sampled LRs is
reported at the best sampled LR and flagged ``interior=False``, and is left out of the law (it only bounds it).
The law is least squares in logs, ln lr_opt = ln coef + Σ a_v ln v over v in (N, D) or (C): the form of Kaplan
et al. 2020 (Appendix D.6, lr against N) and DeepSeek LLM 2024 (Eq. 1, η_opt = 0.3118·C^−0.125).
The rule file's format is read by scaling/config/lr_rule.py.
Torch-free, like all of ``analysis``; runs are read through ``analysis.data.load`` (scaling/core/records.py).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.load import load_runs
from scaling.core import records
from scaling.core.forms import power_product

VARIABLES = ("N", "D", "C")


@dataclass(frozen=True)
class LROptimum:
    """The best LR of one (N, D) group."""

    N: float
    D: float
    C: float
    lr_opt: float
    loss_opt: float
    interior: bool  # a parabola with its vertex inside the sampled LRs; otherwise lr_opt is the best sampled LR
    curvature: float  # d²loss / d(ln lr)² of the parabola (NaN with fewer than 3 points)
    n_points: int  # LRs sampled in this group (diverged ones excluded)


def optimum(lrs, losses, *, N=math.nan, D=math.nan, C=math.nan, half_width: int = 1) -> LROptimum:
    """The best LR of losses sampled at ``lrs``: the vertex of a parabola in ln LR through the lowest point and up to
    ``half_width`` neighbours on each side (least squares beyond 3 points), when it opens upward and lies inside the
    sampled range."""
    if half_width < 1:
        raise ValueError(f"optimum: half_width={half_width}: must be >= 1 (3 points make a parabola)")
    x, y = np.log(np.asarray(lrs, dtype=float)), np.asarray(losses, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) == 0:
        raise ValueError("optimum: no finite (lr, loss) pair to fit")
    i = int(np.argmin(y))
    best = LROptimum(N, D, C, float(np.exp(x[i])), float(y[i]), False, math.nan, len(x))
    lo, hi = max(0, i - half_width), min(len(x), i + half_width + 1)
    if hi - lo < 3:
        return best
    a, b, c = np.polyfit(x[lo:hi], y[lo:hi], 2)
    if a <= 0:
        return best
    v = -b / (2 * a)
    if not (x[0] < v < x[-1]):
        return LROptimum(N, D, C, best.lr_opt, best.loss_opt, False, float(2 * a), len(x))
    return LROptimum(N, D, C, float(np.exp(v)), float(c - b * b / (4 * a)), True, float(2 * a), len(x))


def optima(runs: pd.DataFrame, half_width: int = 1) -> pd.DataFrame:
    """One row per (N, D) group of ``runs`` (columns N, D, C, lr, loss): the fields of ``LROptimum``."""
    for col in ("N", "D", "lr", "loss"):
        if col not in runs.columns:
            raise ValueError(f"optima: runs table has no column {col!r} (columns: {sorted(runs.columns)})")
    rows = []
    for (n, d), g in runs.groupby(["N", "D"]):
        g = g.groupby("lr", as_index=False)[["loss", "C"]].mean()  # repeated seeds: their mean
        rows.append(optimum(g["lr"], g["loss"], N=n, D=d, C=float(g["C"].mean()), half_width=half_width).__dict__)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class LRLaw:
    """lr_opt = coef · Π v^exponent[v], fitted in logs to the interior optima."""

    coef: float
    exponents: dict
    flops_convention: str
    n_points: int
    rms_log_residual: float  # argmin: rms of ln(lr_opt) − ln(law); joint: rms loss residual (nats) of the fit
    points: pd.DataFrame = field(repr=False, compare=False, default=None)
    method: str = "argmin"  # 'argmin': regression of the per-group optima; 'joint': fit_joint
    stderr: dict = field(default_factory=dict)  # standard error of each exponent (joint only)
    curvature: float = math.nan  # the shared d loss / d (ln lr)^2 / 2 (joint only)

    def __call__(self, N=None, D=None, C=None) -> float:
        vals = {"N": N, "D": D, "C": C}
        return power_product(self.coef, [(float(vals[v]), a) for v, a in self.exponents.items()])

    def __str__(self) -> str:
        terms = " · ".join(
            f"{v}^{a:+.3f}" + (f"(±{self.stderr[v]:.3f})" if v in self.stderr else "")
            for v, a in self.exponents.items()
        )
        c_note = f", C in {self.flops_convention} FLOPs" if "C" in self.exponents else ""
        if self.method == "joint":
            return (
                f"lr_opt = {self.coef:.4g} · {terms}   (joint fit of {self.n_points} runs, shared curvature "
                f"{self.curvature:.3f} nats per (ln lr)^2, rms residual {self.rms_log_residual:.3f} nats{c_note})"
            )
        return (
            f"lr_opt = {self.coef:.4g} · {terms}   ({self.n_points} optima, rms residual "
            f"{self.rms_log_residual:.3f} in ln lr{c_note})"
        )

    def rule(self, source: str) -> dict:
        """The rule file's content (format: scaling/config/lr_rule.py)."""
        return {
            "lr": {
                "coef": self.coef,
                "exponents": dict(self.exponents),
                "flops_convention": self.flops_convention,
                "source": source,
            },
            "fit": {
                "method": self.method,
                "n_points": self.n_points,
                "rms_residual": self.rms_log_residual,
                "stderr": dict(self.stderr),
                "curvature": self.curvature,
                "points": self.points.to_dict(orient="records") if self.points is not None else [],
            },
        }


def choose_variables(opt: pd.DataFrame) -> tuple[str, ...]:
    """N alone, or (N, D) when the interior optima span at least two token counts at two or more sizes each."""
    inner = opt[opt["interior"]]
    per_d = inner.groupby("D")["N"].nunique()
    if inner["D"].nunique() >= 2 and (per_d >= 2).sum() >= 2:
        return ("N", "D")
    return ("N",)


def fit_law(
    opt: pd.DataFrame, variables: tuple[str, ...] | None = None, *, flops_convention: str = "chinchilla"
) -> LRLaw:
    """Least squares of ln lr_opt on ln of ``variables`` (default ``choose_variables``) over the interior optima."""
    variables = variables or choose_variables(opt)
    bad = [v for v in variables if v not in VARIABLES]
    if bad:
        raise ValueError(f"fit_law: variables {bad} not allowed: choose from {VARIABLES}")
    pts = opt[opt["interior"]].reset_index(drop=True)
    if len(pts) < len(variables) + 1:
        raise ValueError(
            f"fit_law: {len(pts)} interior optima, need at least {len(variables) + 1} to fit "
            f"ln lr_opt against {variables}; widen the LR grid so each size's minimum is inside it"
        )
    X = np.column_stack([np.ones(len(pts))] + [np.log(pts[v].to_numpy(float)) for v in variables])
    y = np.log(pts["lr_opt"].to_numpy(float))
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ValueError(
            f"fit_law: ln lr_opt against {variables} is not identifiable from these optima (the "
            f"variables are collinear or constant); fit fewer variables"
        )
    resid = y - X @ beta
    return LRLaw(
        float(np.exp(beta[0])),
        {v: float(b) for v, b in zip(variables, beta[1:])},
        flops_convention,
        len(pts),
        float(np.sqrt(np.mean(resid**2))),
        pts,
    )


JOINT_WINDOW = math.log(8.0)  # the joint fit reads LRs within 8x of each group's best sampled LR
JOINT_SCALE = 0.05  # nats: residuals beyond this count linearly (soft L1), so one stuck run does not steer the law
REF = {"N": 2e4, "D": 1e6, "C": 1e11}  # centres of the logs, so coef is the LR at a CPU-sweep-sized point


def fit_joint(
    runs: pd.DataFrame, variables: tuple[str, ...] = ("N",), *, flops_convention: str = "chinchilla"
) -> LRLaw:
    """The law fitted to every run at once: loss = L_g + k (ln lr − ln coef − Σ a_v ln(v / ref_v))², one floor L_g
    per (N, D) group, one curvature k shared by all, robust (soft-L1) least squares over LRs within 8x of each group's
    best. Each group's own parabola has three points, so its argmin is noisy (on lr_cpu the per-group law had an rms
    residual of 0.56 in ln lr); sharing the curvature lets every run inform the slope. Exponents come with standard
    errors (``LRLaw.stderr``) from the Jacobian at the solution."""
    from scipy.optimize import least_squares

    bad = [v for v in variables if v not in VARIABLES]
    if bad:
        raise ValueError(f"fit_joint: variables {bad} not allowed: choose from {VARIABLES}")
    g = runs.groupby(["N", "D", "lr"], as_index=False)[["loss", "C"]].mean()
    g = g[np.isfinite(g["loss"]) & (g["lr"] > 0)]
    keep = []
    for _, grp in g.groupby(["N", "D"]):
        best = math.log(float(grp.loc[grp["loss"].idxmin(), "lr"]))
        keep.append(grp[np.abs(np.log(grp["lr"]) - best) <= JOINT_WINDOW + 1e-9])
    g = pd.concat(keep, ignore_index=True) if keep else g.iloc[:0]
    groups = sorted(set(zip(g["N"], g["D"])))
    if len(groups) < len(variables) + 1 or len(g) < len(variables) + len(groups) + 3:
        raise ValueError(
            f"fit_joint: {len(g)} runs in {len(groups)} (N, D) groups are too few to fit ln lr_opt "
            f"against {variables}; sample at least {len(variables) + 1} sizes with 3+ LRs each"
        )
    gi = np.array([groups.index(k) for k in zip(g["N"], g["D"])])
    x = np.log(g["lr"].to_numpy(float))
    y = g["loss"].to_numpy(float)
    Z = np.column_stack([np.log(g[v].to_numpy(float) / REF[v]) for v in variables])
    if np.linalg.matrix_rank(np.column_stack([np.ones(len(g)), Z])) < Z.shape[1] + 1:
        raise ValueError(f"fit_joint: ln lr_opt against {variables} is not identifiable (collinear or constant)")

    def resid(p):
        opt = p[0] + Z @ p[1 : 1 + Z.shape[1]]
        k, floors = p[1 + Z.shape[1]], p[2 + Z.shape[1] :]
        return floors[gi] + k * (x - opt) ** 2 - y

    floors0 = [float(y[gi == i].min()) for i in range(len(groups))]
    p0 = np.r_[float(np.median(x)), np.zeros(Z.shape[1]), 0.05, floors0]
    lo = np.r_[-np.inf, np.full(Z.shape[1], -np.inf), 1e-6, np.full(len(groups), -np.inf)]
    fit = least_squares(resid, p0, loss="soft_l1", f_scale=JOINT_SCALE, bounds=(lo, np.inf))
    dof = max(1, len(y) - len(p0))
    cov = np.linalg.pinv(fit.jac.T @ fit.jac) * float(np.sum(fit.fun**2)) / dof
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    exps = {v: float(fit.x[1 + i]) for i, v in enumerate(variables)}
    # in the file's form coef · Π v^a (no reference point): ln coef = p0 − Σ a_v ln ref_v
    coef = float(np.exp(fit.x[0] - sum(a * math.log(REF[v]) for v, a in exps.items())))
    pts = pd.DataFrame(
        {"N": [n for n, _ in groups], "D": [d for _, d in groups], "loss_floor": fit.x[2 + Z.shape[1] :]}
    )
    law = LRLaw(
        coef,
        exps,
        flops_convention,
        len(g),
        float(np.sqrt(np.mean(fit.fun**2))),
        pts,
        method="joint",
        stderr={v: float(se[1 + i]) for i, v in enumerate(variables)},
        curvature=float(fit.x[1 + Z.shape[1]]),
    )
    return law


def diverged(sweep_dir) -> pd.DataFrame:
    """The runs that diverged (N, D, lr): an LR too high for that size; the plot marks them."""
    rows = []
    for d in records.iter_run_dirs(Path(sweep_dir)):
        try:
            s = records.read_summary(d)
        except (OSError, ValueError, TypeError):
            continue
        if s.status == records.STATUS_DIVERGED:
            rows.append({"N": float(s.params_non_embedding), "D": float(s.tokens), "lr": float(s.lr)})
    return pd.DataFrame(rows, columns=["N", "D", "lr"])


@dataclass(frozen=True)
class LRSweep:
    """An LR sweep analysed: its runs, each (N, D) group's optimum, the fitted law (None, with ``note`` saying why,
    when it could not be fitted) and the diverged runs' (N, D, lr)."""

    runs: pd.DataFrame
    optima: pd.DataFrame
    law: LRLaw | None
    diverged: pd.DataFrame
    note: str = ""


def analyse_lr_sweep(
    sweep_dir,
    variables: tuple[str, ...] | None = None,
    flops: str = "chinchilla",
    half_width: int = 1,
    method: str = "joint",
) -> LRSweep:
    """Load an LR sweep, find each group's optimum and fit the law (``method``: 'joint', ``fit_joint``, or
    'argmin', ``fit_law``). Computes only: ``analysis.cli.lr`` writes lr_rule.json, optima.csv and the figure."""
    if method not in ("joint", "argmin"):
        raise ValueError(f"method={method!r}: must be 'joint' or 'argmin'")
    sweep_dir = Path(sweep_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # diverged runs are expected in an LR sweep; they are plotted, not fitted
        runs = load_runs(sweep_dir, flops=flops)
    opt = optima(runs, half_width)
    law, note = None, ""
    try:
        if method == "joint":
            law = fit_joint(runs, variables or choose_variables(opt), flops_convention=flops)
        else:
            law = fit_law(opt, variables, flops_convention=flops)
    except ValueError as e:
        note = str(e)
    return LRSweep(runs=runs, optima=opt, law=law, diverged=diverged(sweep_dir), note=note)
