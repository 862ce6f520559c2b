"""A sweep's prior on a run's end (issue 18, item 3a): the end of a run predicted from its first part as its training
loss so far times the ratio (end / training loss at the same share of the run) of the sweep's finished runs of the same
schedule.

Why: from half of a cosine run neither law is identified on the harness's CPU curves (their annealing term and power
law trade off before the decay; RESULTS.md "Loss-curve laws", h37), while the ratio of a run's end to its training
loss at 50% varies little between the runs of a sweep (RESULTS.md, "Loss-curve laws"). The
ratio carries the rest of the schedule's drop and the training -> validation offset together, so it holds only for
runs of one schedule (its name, warmup, floor and cooldown), and is measured at the same share of the run.

- ``level``: the mean training loss over the window of ``WINDOW`` of the run's steps before the cut (its last
  logged steps; many steps, so ~0.5% noise where one evaluation point has the model's own wiggle).
- ``end_ratio``: a finished run's end (the last point of its subset validation curve, ``schedule.subset_curve``) over
  its ``level`` at ``frac``.
- ``end_from_runs``: all of it for one run and a list of the sweep's finished runs.
- ``level``, ``predict_end``, ``end_interval``: the rule itself, from ``scaling.core.end_prior`` (one definition,
  shared with the trainer's early stop); this module reads run folders for the study.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from analysis.curves import schedule as sc
from scaling.core import end_prior

WINDOW = end_prior.WINDOW
MIN_SLOPE_RUNS = end_prior.MIN_SLOPE_RUNS
MIN_SPAN = end_prior.MIN_SPAN
level = end_prior.level  # the rule itself lives in the torch-free core, shared with the trainer's early stop
predict_end = end_prior.predict_end
end_interval = end_prior.end_interval


def schedule_key(run_dir: str | Path) -> tuple[Any, ...]:
    """What a ratio depends on besides the model (``scaling.core.end_prior.schedule_key``), from the run's
    config.yaml."""
    return end_prior.config_schedule_key(run_dir)


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
