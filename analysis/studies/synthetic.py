"""Synthetic sweeps drawn from a known law, to check that the fitters recover it.

``synthetic_runs`` lays out an IsoFLOP design (several budgets, several model sizes a budget spread evenly in
log N around the law's optimum, D = C / (6N)) and draws each run's final loss from the law with multiplicative
log-normal noise. ``synthetic_curves`` does the same for whole training curves, as if every logged point ended a
schedule (a WSD cooldown branched there), which is what Approach 1 needs. The frames have the canonical columns of
``analysis.load_runs`` / ``load_curves`` with C = 6ND, so every fit runs on them unchanged.

A law is anything with ``.predict(N, D)`` and ``.compute_optimal(C)``: ``analysis.laws.published.ParametricLaw``,
``KaplanJointLaw``, or a fitted ``Approach3Result``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from analysis.laws.published import CHINCHILLA_APPROACH3, ParametricLaw

CHINCHILLA = CHINCHILLA_APPROACH3
# A second truth unlike Chinchilla's: beta > alpha, so N_opt ∝ C^0.55 (vs 0.45), about 20 tokens a parameter at 1e19.
SECOND_TRUTH = ParametricLaw(
    name="synthetic_second",
    E=1.8,
    A=210.0,
    B=2000.0,
    alpha=0.30,
    beta=0.37,
    source="synthetic: a second known truth for tests",
    flops_convention="6n",
    params_convention="synthetic",
)

DEFAULT_BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19, 3e19, 1e20, 3e20, 1e21)


def isoflop_design(
    budgets=DEFAULT_BUDGETS, n_per_budget: int = 9, span: float = 8.0, law: Any = CHINCHILLA, centre_offset: float = 1.0
) -> pd.DataFrame:
    """The (N, D) of an IsoFLOP sweep: for each budget C, ``n_per_budget`` sizes log-spaced over
    [N*/span, N* span] around N* = ``centre_offset`` times the law's compute-optimal N (an experimenter's guess
    is off by ``centre_offset``), and D = C / (6N). Returns columns budget, C, N, D."""
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    if n_per_budget < 3 or span <= 1:
        raise ValueError(f"isoflop_design: n_per_budget={n_per_budget} must be >= 3 and span={span} > 1")
    rows = []
    for C in budgets:
        centre = float(law.compute_optimal(C).N_opt) * centre_offset
        for N in np.geomspace(centre / span, centre * span, n_per_budget):
            rows.append((C, C, N, C / (6.0 * N)))
    return pd.DataFrame(rows, columns=["budget", "C", "N", "D"])


def synthetic_runs(
    law: Any = CHINCHILLA,
    budgets=DEFAULT_BUDGETS,
    n_per_budget: int = 9,
    span: float = 8.0,
    noise: float = 0.005,
    seed: int = 0,
    centre_offset: float = 1.0,
    design: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row a run: the IsoFLOP ``design`` (default ``isoflop_design(...)``) with loss = law(N, D) * exp(noise * z),
    z standard normal, drawn from ``seed``. Columns run_id, budget, C, N, D, loss (+ loss_true);
    attrs flops_convention "6n" (C = 6ND exactly) and params_convention "synthetic"."""
    if design is None:
        design = isoflop_design(budgets, n_per_budget, span, law, centre_offset)
    rng = np.random.default_rng(seed)
    df = design.copy().reset_index(drop=True)
    if "C" not in df:
        df["C"] = 6.0 * df["N"] * df["D"]
    if "budget" not in df:
        df["budget"] = df["C"]
    true = np.asarray(law.predict(df["N"].to_numpy(float), df["D"].to_numpy(float)), dtype=float)
    df["loss_true"] = true
    df["loss"] = true * np.exp(noise * rng.standard_normal(len(df)))
    df.insert(0, "run_id", [f"syn-{i:04d}" for i in range(len(df))])
    df.attrs["flops_convention"] = "6n"
    df.attrs["params_convention"] = "synthetic"
    return df


def synthetic_curves(
    law: Any = CHINCHILLA,
    sizes=None,
    tokens_per_param=(1.0, 400.0),
    n_points: int = 60,
    noise: float = 0.0,
    seed: int = 0,
    complete: str = "all",
    runs: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Training curves: one run a model size in ``sizes`` (default 16 sizes from 1e7 to 3e9), logged at
    ``n_points`` token counts log-spaced over ``tokens_per_param`` times N, loss = law(N, D) * exp(noise * z).
    Given ``runs`` (e.g. from ``synthetic_runs``), the curves are those runs' instead: same run_id, N and budget,
    logged from D/100 up to each run's final D.

    ``complete="all"`` marks every point schedule_complete (a WSD run with a cooldown branched at each point);
    ``"last"`` marks only each run's final point (a cosine run). Columns follow ``analysis.load_curves``.
    """
    if complete not in ("all", "last"):
        raise ValueError(f"synthetic_curves: complete={complete!r}; allowed: 'all', 'last'")
    if runs is not None:
        plan = [
            (r.run_id, float(r.N), float(r.D) * np.geomspace(0.01, 1.0, n_points), float(r.budget))
            for r in runs.itertuples()
        ]
    else:
        sizes = np.geomspace(1e7, 3e9, 16) if sizes is None else np.asarray(sizes, dtype=float)
        plan = [
            (f"curve-{k:02d}", float(N), N * np.geomspace(tokens_per_param[0], tokens_per_param[1], n_points), np.nan)
            for k, N in enumerate(sizes)
        ]
    rng = np.random.default_rng(seed)
    frames = []
    for run_id, N, D, budget in plan:
        true = np.asarray(law.predict(np.full_like(D, N), D), dtype=float)
        loss = true * np.exp(noise * rng.standard_normal(D.size))
        done = np.ones(D.size, bool) if complete == "all" else np.arange(D.size) == D.size - 1
        frames.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "step": np.arange(1, D.size + 1),
                    "N": N,
                    "D": D,
                    "C": 6.0 * N * D,
                    "train_loss": loss,
                    "val_loss": loss,
                    "loss": loss,
                    "lr": np.nan,
                    "schedule_complete": done,
                    "budget": budget,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df.attrs["flops_convention"] = "6n"
    df.attrs["params_convention"] = "synthetic"
    return df
