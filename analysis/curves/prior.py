"""A sweep's prior on a run's end (issue 18, item 3a): the end of a run predicted from its first part as its training
loss so far times the ratio (end / training loss at the same share of the run) of the sweep's finished runs of the same
schedule.

Why: from half of a cosine run neither law is identified on the harness's CPU curves (their annealing term and power
law trade off before the decay; RESULTS.md "Loss-curve laws", h37), while the ratio of a run's end to its training
loss at 50% varies little between the runs of a sweep (0.943-0.977 over the 30 runs of the default CPU sweep). The
ratio carries the rest of the schedule's drop and the training -> validation offset together, so it holds only for
runs of one schedule (its name, warmup, floor and cooldown), and is measured at the same share of the run.

- ``level``: the mean training loss over the window of ``WINDOW`` of the run's steps before the cut (its last
  logged steps; many steps, so ~0.5% noise where one evaluation point has the model's own wiggle).
- ``end_ratio``: a finished run's end (the last point of its subset validation curve, ``schedule.subset_curve``) over
  its ``level`` at ``frac``.
- ``end_from_runs``: all of it for one run and a list of the sweep's finished runs.
- ``predict_end``: ``level`` x the other runs' ratio, as a power of the run's length fitted on them (their median
  where they are too few or of one length).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from analysis.curves import schedule as sc

WINDOW = 0.05  # share of the run's steps averaged before the cut (chosen a priori; RESULTS.md compares 2% and 10%)


def level(steps: np.ndarray, train_loss: np.ndarray, n_steps: int, frac: float, window: float = WINDOW) -> float:
    """The mean of the training losses logged at metrics ``steps`` in ``(cut - w, cut]``, cut = ``int(frac *
    n_steps)``, w = ``max(1, round(window * n_steps))``; ValueError where none is logged there."""
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1]")
    if not 0.0 < window <= frac:
        raise ValueError(f"window={window}: must be in (0, frac={frac}]")
    steps = np.asarray(steps, dtype=np.int64)
    train_loss = np.asarray(train_loss, dtype=float)
    cut = int(frac * n_steps)
    w = max(1, round(window * n_steps))
    sel = (steps > cut - w) & (steps <= cut) & np.isfinite(train_loss)
    if not sel.any():
        raise ValueError(f"no training loss logged in steps ({cut - w}, {cut}]")
    return float(train_loss[sel].mean())


def schedule_key(run_dir: str | Path) -> tuple[Any, ...]:
    """What a ratio depends on besides the model: the schedule's name, warmup, floor, and (WSD) cooldown share and
    shape, from the run's config.yaml (the harness's defaults where a field is absent)."""
    t = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()).get("train", {})
    name = t.get("schedule", "cosine")
    key: tuple[Any, ...] = (name, float(t.get("warmup_frac", 0.05)), float(t.get("final_lr_frac", 0.1)))
    if name == "wsd":
        key += (float(t.get("cooldown_frac", 0.2)), t.get("cooldown_shape", "linear"))
    return key


def run_level(run_dir: str | Path, frac: float, window: float = WINDOW) -> float:
    """``level`` of the run in ``run_dir`` (its metrics' training loss)."""
    from scaling.core import records

    m = records.read_metrics(Path(run_dir))
    n = len(sc.run_rates(run_dir, m))
    return level(m["step"].to_numpy(dtype=np.int64), m["train_loss"].to_numpy(dtype=float), n, frac, window)


def end_ratio(run_dir: str | Path, frac: float, window: float = WINDOW) -> float:
    """A finished run's end (the last point of its subset curve) over its ``run_level`` at ``frac``."""
    _, _, loss = sc.subset_curve(run_dir)
    if len(loss) == 0:
        raise ValueError(f"{run_dir}: no validation point")
    return float(loss[-1]) / run_level(run_dir, frac, window)


MIN_SLOPE_RUNS = 3  # prior runs needed to fit the ratio's trend in the run's length (else their median ratio)
MIN_SPAN = 1.2  # and the longest of them at least this many times the shortest


def predict_end(
    level_now: float,
    ratios: list[float] | np.ndarray,
    steps: int | None = None,
    prior_steps: list[int] | np.ndarray | None = None,
) -> float:
    """A run's end from its ``level`` and the end ratios of the sweep's finished runs of its schedule. With the run's
    ``steps`` and the prior runs' ``prior_steps``: the ratio as a power of the run's length, log ratio = c0 + c1 log
    steps fitted by least squares on the prior runs (longer runs drop less after a given share: their curves are
    flatter there), where at least ``MIN_SLOPE_RUNS`` runs span ``MIN_SPAN``x in length; else their median ratio."""
    r = np.asarray(ratios, dtype=float)
    ok = np.isfinite(r) & (r > 0)
    if not ok.any():
        raise ValueError("ratios: no finished run of this schedule to take the prior from")
    if steps is not None and prior_steps is not None:
        t = np.asarray(prior_steps, dtype=float)
        if len(t) != len(r):
            raise ValueError(f"prior_steps ({len(t)}) and ratios ({len(r)}): must have the same length")
        t, r = t[ok], r[ok]
        if len(t) >= MIN_SLOPE_RUNS and t.max() >= MIN_SPAN * t.min():
            X = np.column_stack([np.ones_like(t), np.log(t)])
            c = np.linalg.lstsq(X, np.log(r), rcond=None)[0]
            return float(level_now * np.exp(c[0] + c[1] * np.log(steps)))
        return float(level_now * np.median(r))
    return float(level_now * np.median(r[ok]))


def end_from_runs(run_dir: str | Path, frac: float, finished: list[str | Path], window: float = WINDOW) -> float:
    """The end of the run in ``run_dir`` (on its subset's measure) predicted from its first ``frac`` of steps and the
    ``finished`` runs of the sweep: those of its schedule (``schedule_key``; the run itself left out) give the ratios
    and their lengths (``predict_end``). ValueError where none shares its schedule."""
    key = schedule_key(run_dir)
    me = Path(run_dir).resolve()
    pool = [Path(d) for d in finished if Path(d).resolve() != me and schedule_key(d) == key]
    if not pool:
        raise ValueError(f"finished: no other run of {run_dir}'s schedule {key}")
    ratios = [end_ratio(d, frac, window) for d in pool]
    lengths = [len(sc.run_rates(d)) for d in pool]
    return predict_end(run_level(run_dir, frac, window), ratios, len(sc.run_rates(run_dir)), lengths)
