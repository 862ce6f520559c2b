"""One law over a sweep's runs fitted on every checkpoint of every run (issue 18, item 2): Chinchilla's form with the
data term in learning-rate-weighted tokens and Tissue et al.'s annealing term,

    L(N, s) = E + A/N^alpha + B/S1(s)^beta - C·S2(s)

S1(s) = tokens_per_step · sum_{i<=s} eta_i/eta_peak (tokens weighted by the rate relative to the run's peak; D for a
constant rate) and S2(s) the annealing area of eta/eta_peak (Tissue et al. 2024 eq. 1-2, lambda = 0.999). Hoffmann et
al. 2022 eq. 2 fits the end points only; Tissue et al. 2024 §5 fit a curve law with a model-size term. At the end of a
complete schedule of the sweep's shape, S1 = k·D (k the schedule's mean relative rate) and S2 = S2_end, so the law
becomes Chinchilla's L(N, D) = (E - C·S2_end) + A/N^alpha + (B k^-beta)/D^beta, whose compute-optimal allocation
under C = 6ND is the closed form (``ParametricLaw``). The schedule's shape is the median-length run's.

Fit: for fixed (alpha, beta) the law is linear in (E, A, B, C) >= 0 (non-negative least squares on relative
residuals, each run weighted equally whatever its number of checkpoints); (alpha, beta) from a grid, then refined.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import minimize, nnls

from analysis.curves.areas import annealing_area
from analysis.curves.predict import after_warmup
from analysis.curves.schedule import run_curve
from analysis.data.columns import conventions
from analysis.laws.forms import Allocation, ParametricLaw
from analysis.laws.protocol import Parameter

DECAY = 0.999
GRID = np.linspace(0.05, 1.5, 10)


@functools.lru_cache(maxsize=4096)
def _curve(run_dir: str, mtime: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return run_curve(run_dir)


def checkpoints(runs: pd.DataFrame, decay: float = DECAY) -> pd.DataFrame:
    """Every logged validation point after warmup of every run: run_id, N, S1 (rate-weighted tokens), S2, loss."""
    for col in ("run_dir", "N", "tokens_per_step"):
        if col not in runs.columns:
            raise ValueError(f"runs: column {col!r} missing; a runs table from analysis.data.load_runs has it")
    frames = []
    for r in runs.itertuples():
        f = Path(str(r.run_dir)) / "metrics.parquet"
        eta, steps, loss = _curve(str(r.run_dir), f.stat().st_mtime if f.exists() else 0.0)
        s, y = after_warmup(eta, steps, loss)
        if len(s) == 0:
            continue
        u = eta / eta.max()
        frames.append(
            pd.DataFrame(
                {
                    "run_id": r.run_id,
                    "N": float(r.N),
                    "S1": float(r.tokens_per_step) * np.cumsum(u)[s - 1],
                    "S2": annealing_area(u, s, decay),
                    "loss": y,
                }
            )
        )
    if not frames:
        raise ValueError("runs: no run has a logged validation point after warmup")
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class JointCurveFit:
    E: float
    A: float
    B: float
    C: float
    alpha: float
    beta: float
    k: float  # mean relative rate of the sweep's schedule: S1 = k·D at its end
    s2_end: float  # its annealing area at the end
    n_points: int
    n_runs: int
    rmse_rel: float
    converged: bool = True
    flops_convention: str = "unknown"
    params_convention: str = "unknown"
    resample_group: str | None = None  # resampled as Approach 3: whole runs

    @property
    def law(self) -> ParametricLaw:
        """The end-of-schedule law L(N, D) in Chinchilla's form."""
        return ParametricLaw(
            "curve-joint",
            self.E - self.C * self.s2_end,
            self.A,
            self.B * self.k ** (-self.beta),
            self.alpha,
            self.beta,
            source="fitted to every checkpoint of this sweep",
            flops_convention=self.flops_convention,
            params_convention=self.params_convention,
        )

    @property
    def a(self) -> float:
        return self.law.a

    @property
    def b(self) -> float:
        return self.law.b

    def refit_resamples(self, runs, resamples, *, n_threads=None) -> None:
        return None

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"alpha": self.alpha, "beta": self.beta, "E": self.law.E, "C_anneal": self.C, "a": self.a}
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def parameters(self) -> list[Parameter]:
        return [
            Parameter("α (N term)", self.alpha, "alpha", "exp"),
            Parameter("β (rate-weighted tokens)", self.beta, "beta", "exp"),
            Parameter("E at a schedule's end (E − C·S2_end)", self.law.E, "E", "loss"),
            Parameter("C (annealing)", self.C, "C_anneal", "sci"),
        ]

    def fit_summary(self) -> dict[str, Any]:
        return {"converged": self.converged, "rmse_rel": self.rmse_rel, "n_points": self.n_points, "runs": self.n_runs}

    def predict(self, N, D):
        return self.law.predict(N, D)

    def compute_optimal(self, C) -> Allocation:
        return self.law.compute_optimal(C)

    def warm_start(self) -> dict[str, Any]:
        return {"start": (self.alpha, self.beta)}


def _solve(pts: pd.DataFrame, w: np.ndarray, alpha: float, beta: float) -> tuple[np.ndarray, float]:
    y = pts["loss"].to_numpy()
    X = np.column_stack([np.ones(len(y)), pts["N"].to_numpy() ** -alpha, pts["S1"].to_numpy() ** -beta, -pts["S2"]])
    X = X * (w / y)[:, None]
    coef, rnorm = nnls(X, w)
    return coef, float(rnorm)


def fit_joint(runs: pd.DataFrame, decay: float = DECAY, start: tuple[float, float] | None = None) -> JointCurveFit:
    """Fit the joint law to every checkpoint of ``runs`` (a runs table: run_dir, N, tokens_per_step, steps)."""
    pts = checkpoints(runs, decay)
    n_runs = pts["run_id"].nunique()
    if pts["N"].nunique() < 2:
        raise ValueError(f"runs: {pts['N'].nunique()} distinct N; the joint law needs at least 2 model sizes")
    counts = pts.groupby("run_id")["loss"].transform("size").to_numpy()
    w = 1.0 / np.sqrt(counts)
    if start is None:
        errs = [(_solve(pts, w, a, b)[1], a, b) for a in GRID for b in GRID]
        start = min(errs)[1:]
    res = minimize(
        lambda p: _solve(pts, w, *np.clip(p, 0.01, 3.0))[1],
        np.asarray(start, dtype=float),
        method="Nelder-Mead",
        options={"xatol": 1e-4, "fatol": 1e-10, "maxiter": 400},
    )
    alpha, beta = (float(v) for v in np.clip(res.x, 0.01, 3.0))
    coef, rnorm = _solve(pts, w, alpha, beta)
    # the sweep's schedule shape: the median-length run's relative rates
    med = runs.iloc[int(np.argsort(runs["steps"].to_numpy())[len(runs) // 2])]
    f = Path(str(med.run_dir)) / "metrics.parquet"
    eta = _curve(str(med.run_dir), f.stat().st_mtime if f.exists() else 0.0)[0]
    u = eta / eta.max()
    s2_end = float(annealing_area(u, np.array([len(u)]), decay)[0])
    E, A, B, C = (float(c) for c in coef)
    fc, pc = conventions(runs)
    return JointCurveFit(
        E,
        A,
        B,
        C,
        alpha,
        beta,
        float(u.mean()),
        s2_end,
        len(pts),
        n_runs,
        rnorm / float(np.sqrt(w @ w)),
        bool(res.success),
        fc,
        pc,
    )
