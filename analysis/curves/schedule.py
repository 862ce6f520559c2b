"""A run's learning rate at every optimizer step (from its metrics, or recomputed from its config for runs logged
before every step's rate was recorded), and its validation curve against it; schedules to transfer a fit to.

Convention used by every law here: ``eta[i]`` is the rate of optimizer update ``i + 1`` (1-based, as the metrics'
``step`` column), so the loss logged at step ``s`` was reached after the updates ``eta[:s]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from scaling.core.curve_law import Curve, clean_curves  # noqa: F401  (the curves' shape and check, shared)
from scaling.core.schedule import Schedule


def rates(schedule: Schedule) -> np.ndarray:
    """Every update's rate under ``schedule`` (length ``total_steps``)."""
    return np.array([schedule.lr_at(i) for i in range(schedule.total_steps)], dtype=float)


def schedule_from_config(config: dict[str, Any], steps: int, peak_lr: float) -> Schedule:
    """The schedule a run trained with, rebuilt from its resolved config (config.yaml) exactly as
    ``scaling.config.run_plan`` builds it: warmup and WSD cooldown as fractions of the run's ``steps``."""
    t = config.get("train", {})
    name = t.get("schedule", "cosine")
    warmup = min(steps - 1, round(float(t.get("warmup_frac", 0.05)) * steps)) if steps > 1 else 0
    cooldown = max(1, round(float(t.get("cooldown_frac", 0.2)) * (steps - warmup))) if name == "wsd" else 0
    return Schedule(
        name,
        peak_lr,
        steps,
        warmup,
        float(t.get("final_lr_frac", 0.1)),
        cooldown,
        t.get("cooldown_shape", "linear"),
    )


def run_rates(run_dir: str | Path, metrics: pd.DataFrame | None = None) -> np.ndarray:
    """The rate of every update of the run in ``run_dir``: its metrics' ``lr`` column where every step has one,
    else the schedule recomputed from config.yaml and summary.json (older runs, or rows lost to a resume)."""
    from scaling.core import records

    run_dir = Path(run_dir)
    m = records.read_metrics(run_dir) if metrics is None else metrics
    steps = m["step"].to_numpy(dtype=np.int64)
    if "lr" in m.columns:
        lr = m["lr"].to_numpy(dtype=float)
        n = int(steps.max()) if len(steps) else 0
        if n and len(steps) == n and np.array_equal(np.sort(steps), np.arange(1, n + 1)) and np.isfinite(lr).all():
            return lr[np.argsort(steps)]
    s = records.read_summary(run_dir)
    if s.parent_run_id is not None:
        raise ValueError(f"{run_dir}: a cooldown branch without every step's lr in its metrics; cannot rebuild it")
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return rates(schedule_from_config(config, s.steps, s.lr))


def run_curve(run_dir: str | Path) -> Curve:
    """(eta, steps, loss) of a run: every update's rate and the validation losses at the steps that logged one."""
    from scaling.core import records

    m = records.read_metrics(Path(run_dir))
    eta = run_rates(run_dir, m)
    v = m["val_loss"].to_numpy(dtype=float)
    ok = np.isfinite(v)
    return eta, m["step"].to_numpy(dtype=np.int64)[ok], v[ok]


def subset_curve(run_dir: str | Path) -> Curve:
    """(eta, steps, loss) with every point on one measure: the fixed ``train.eval_tokens`` subset of the validation
    split. The final point is the metrics' ``subset_val_loss`` where the run logged it; in older runs, whose final
    point was measured on the whole split (or ``final_eval_tokens``), that point is left out."""
    from scaling.core import records

    run_dir = Path(run_dir)
    m = records.read_metrics(run_dir)
    eta = run_rates(run_dir, m)
    steps = m["step"].to_numpy(dtype=np.int64)
    v = m["val_loss"].to_numpy(dtype=float)
    sub = m["subset_val_loss"].to_numpy(dtype=float)
    last = int(np.flatnonzero(np.isfinite(v))[-1]) if np.isfinite(v).any() else -1
    if last >= 0 and np.isfinite(sub[last]):
        v = v.copy()
        v[last] = sub[last]
    elif last >= 0 and steps[last] == len(eta):
        t = yaml.safe_load((run_dir / "config.yaml").read_text()).get("train", {})
        if int(t.get("final_eval_tokens") or 0) != int(t.get("eval_tokens", 16384)):
            v = v.copy()
            v[last] = np.nan
    ok = np.isfinite(v)
    return eta, steps[ok], v[ok]


def final_offset(run_dir: str | Path) -> float | None:
    """final_val_loss - the final step's subset loss: what maps a curve fitted to the subset points onto the run's
    final (whole-split) loss; None for a run that did not log its final subset loss."""
    from scaling.core import records

    s = records.read_summary(Path(run_dir))
    if s.final_val_loss is None or s.final_subset_val_loss is None:
        return None
    return float(s.final_val_loss - s.final_subset_val_loss)


def cosine(peak_lr: float, steps: int, warmup_frac: float = 0.05, final_lr_frac: float = 0.1) -> np.ndarray:
    """Rates of a cosine run of ``steps`` updates, warmup and floor as the harness plans them."""
    warmup = min(steps - 1, round(warmup_frac * steps)) if steps > 1 else 0
    return rates(Schedule("cosine", peak_lr, steps, warmup, final_lr_frac))


def wsd(
    peak_lr: float,
    steps: int,
    cooldown_start: int,
    warmup_frac: float = 0.05,
    final_lr_frac: float = 0.1,
    shape: str = "linear",
) -> np.ndarray:
    """Rates of a WSD run of ``steps`` updates whose cooldown starts after update ``cooldown_start``."""
    warmup = min(steps - 1, round(warmup_frac * steps)) if steps > 1 else 0
    if not warmup < cooldown_start < steps:
        raise ValueError(f"cooldown_start={cooldown_start}: must be in ({warmup}, {steps}) (after warmup, before end)")
    return rates(Schedule("wsd", peak_lr, steps, warmup, final_lr_frac, steps - cooldown_start, shape))
