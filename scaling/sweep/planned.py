"""A sweep's planned runs, each planned exactly as the trainer will train it (``scaling.config.schema.plan``): shape,
tokens, steps, FLOPs, epochs over the prepared corpus and predicted seconds on this machine.

Epochs (tokens trained / unique training tokens) come from the prepared corpus's meta.json: a plan with a run over
``MAX_EPOCHS`` is refused, naming the run. Time comes from a short probe of this machine (scaling/sweep/probe.py).
Which points a sweep plans: scaling/sweep/sizes.py (per budget) and scaling/sweep/ladder.py (which budgets).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, cast

from scaling.config.schema import Config, ConfigError, apply_point, run_id, validate
from scaling.config.schema import plan as plan_run
from scaling.sweep.probe import probe
from scaling.sweep.timing import wall_seconds

MAX_EPOCHS = 4.0  # a plan with any run reading its corpus more often than this is refused
FRESH_EPOCHS = 1.0  # the default sweep keeps every run at or under one pass over the corpus ...
SAY_EPOCHS = 2.0  # ... or, where no ladder set fits otherwise, at most two, and says so
RUN_OVERHEAD_SECONDS = 1.0  # model build, dataset load and records per run, on top of training and evaluation


@dataclass(frozen=True)
class PlannedRun:
    budget: Optional[float]
    size: str
    point: dict
    run_id: str
    N: int
    tokens: int
    steps: int
    tokens_per_step: int
    lr: float
    flops: float
    epochs: float
    seconds: float

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def budget_of(r: PlannedRun) -> float:
    """The budget of a run planned per budget (``choose_runs``, a sequential stage): these always have one."""
    assert r.budget is not None, r.run_id
    return r.budget


def train_tokens(cfg: Config) -> int:
    """Unique training tokens of the config's corpus (prepared once, checksum-verified, as every run does)."""
    from scaling.data.cache import prepare_data

    path = prepare_data(cfg.data)
    return int(json.loads((path / "meta.json").read_text())["n_train_tokens"])


def check_epochs(runs: list[PlannedRun], limit: float = MAX_EPOCHS) -> None:
    """Refuse a plan in which any run reads its corpus more than ``limit`` times; the message names the runs."""
    over = [r for r in runs if r.epochs > limit]
    if over:
        names = ", ".join(f"{r.run_id} (N={r.N:,}, D={r.tokens:,}: {r.epochs:.2f} epochs)" for r in over)
        raise ConfigError(
            f"epochs > {limit:g} (repeated data bends scaling laws): {names}; allowed: at most {limit:g} "
            f"passes over the corpus: lower the budget, raise the size, or use a larger corpus"
        )


def plan_points(
    base: Config,
    points: list[dict],
    *,
    n_train: int,
    probe_seconds: float = 0.5,
    cache_dir: Path | None = None,
    eval_tokens_total: Optional[int] = None,
) -> list[PlannedRun]:
    """Plan each sweep point on ``base`` exactly as the trainer will (config.plan), with epochs and predicted
    seconds."""
    runs = []
    for pt in points:
        cfg = copy_config(base)
        cfg.point = dict(pt)
        apply_point(cfg)
        validate(cfg)
        p = plan_run(cfg)
        t = cfg.train
        tps = probe(cfg, seconds=probe_seconds, cache_dir=cache_dir)
        n_evals = math.ceil(p.steps / (t.eval_interval or max(1, math.ceil(p.steps / 16))))
        val = eval_tokens_total if eval_tokens_total is not None else (t.final_eval_tokens or _val_tokens(n_train))
        eval_seconds = (n_evals * t.eval_tokens + val) / (3.0 * tps)  # a forward pass: about 1/3 of a training step
        seconds = p.tokens / tps + eval_seconds + RUN_OVERHEAD_SECONDS
        runs.append(
            PlannedRun(
                t.budget,
                cfg.model.size,
                dict(pt),
                run_id(cfg),
                p.shape.params_non_embedding(),
                p.tokens,
                p.steps,
                p.tokens_per_step,
                p.lr,
                p.flops[t.flops_convention],
                p.tokens / n_train,
                seconds,
            )
        )
    return runs


def _val_tokens(n_train: int) -> int:
    return round(n_train * 0.05 / 0.95)  # the validation split of val_fraction 0.05 (exact count: meta.json)


def copy_config(cfg: Config) -> Config:
    """A deep copy of ``cfg`` (each point is applied to a fresh copy of the sweep's base config)."""
    from omegaconf import OmegaConf

    return cast(Config, OmegaConf.to_object(OmegaConf.structured(cfg)))  # stubs say Any: it is a Config


def render(runs: list[PlannedRun], jobs: int, wall=None) -> str:
    lines = [
        f"{'budget':>9} {'size':>8} {'N':>9} {'D':>11} {'steps':>6} {'tok/step':>8} {'lr':>8} {'FLOPs':>9} "
        f"{'epochs':>6} {'pred s':>7}  run_id"
    ]
    for r in runs:
        b = f"{r.budget:.3g}" if r.budget is not None else "-"
        lines.append(
            f"{b:>9} {r.size:>8} {r.N:>9,} {r.tokens:>11,} {r.steps:>6,} {r.tokens_per_step:>8,} "
            f"{r.lr:>8.2e} {r.flops:>9.3g} {r.epochs:>6.2f} {r.seconds:>7.1f}  {r.run_id}"
        )
    total = sum(r.flops for r in runs)
    lines.append(
        f"{len(runs)} runs, total {total:.3g} FLOPs, {sum(r.seconds for r in runs) / 60:.1f} min of run "
        f"time, predicted wall time {(wall or wall_seconds)(runs, jobs) / 60:.1f} min on {jobs} parallel jobs; "
        f"most epochs {max(r.epochs for r in runs):.2f}"
    )
    return "\n".join(lines)
