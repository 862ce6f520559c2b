"""A sweep's prior on a run's end (issue 18): the end of a run predicted from its first part as its training loss so
far times the ratio (end / training loss at the same share of the run) of the sweep's finished runs of the same
schedule, with a 90% interval from how well that rule predicts the pool's own runs (leave-one-out).

Why: from half of a cosine run neither curve law is identified on the harness's CPU curves (their annealing term and
power law trade off before the decay; RESULTS.md "Loss-curve laws", h37), while the ratio of a run's end to its
training loss at 50% varies little between the runs of a sweep. The ratio carries the rest of the schedule's drop and
the training -> validation offset together, so it holds only for runs of one schedule (``schedule_key``: its name,
warmup, floor and cooldown) and is measured at the same share of the run.

The one definition of the rule: the trainer's early stop (``scaling.train.callbacks.early_stop``) and the analysis
study (``analysis.curves.prior``) both call it. Torch-free.

- ``level``: the mean training loss over the window of ``WINDOW`` of the run's steps before the cut.
- ``predict_end``: ``level`` x the pool's ratio, as a power of the run's length fitted on the pool (their median where
  they are too few or of one length).
- ``end_interval``: that end with a 90% interval: the leave-one-out log errors of the rule on the pool's own ratios,
  their root mean square times Student's t (``MIN_POOL`` runs at least).
- ``read_pool``: the ratios and lengths of the finished runs of a schedule in a sweep folder, from their metrics and
  summaries.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml
from scipy.stats import t as student_t

WINDOW = 0.05  # share of the run's steps averaged before the cut (chosen a priori, before any figure was seen)
MIN_SLOPE_RUNS = 3  # prior runs needed to fit the ratio's trend in the run's length (else their median ratio)
MIN_SPAN = 1.2  # and the longest of them at least this many times the shortest
MIN_POOL = 3  # pool runs needed for an interval (each left out in turn: >= 2 errors a spread is taken from)


def level(steps: np.ndarray, train_loss: np.ndarray, n_steps: int, frac: float, window: float = WINDOW) -> float:
    """The mean of the training losses logged at metrics ``steps`` in ``(cut - w, cut]``, cut = ``frac * n_steps``
    rounded down (a hair above, so that ``frac = step / n_steps`` gives ``step`` back, not ``step - 1``), w = ``max(1,
    round(window * n_steps))``; ValueError where none is logged there."""
    if not 0.0 < frac <= 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1]")
    if not 0.0 < window <= frac:
        raise ValueError(f"window={window}: must be in (0, frac={frac}]")
    steps = np.asarray(steps, dtype=np.int64)
    train_loss = np.asarray(train_loss, dtype=float)
    cut = math.floor(frac * n_steps + 1e-9)
    w = max(1, round(window * n_steps))
    sel = (steps > cut - w) & (steps <= cut) & np.isfinite(train_loss)
    if not sel.any():
        raise ValueError(f"no training loss logged in steps ({cut - w}, {cut}]")
    return float(train_loss[sel].mean())


def schedule_key(train: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a ratio depends on besides the model: the schedule's name, warmup, floor, and (WSD) cooldown share and
    shape, and the size of the evaluation subset its end is measured on, from a run's ``train`` config section (the
    schema's defaults where a field is absent: scaling.config.schema.Train's, which a test holds these to)."""
    name = train.get("schedule", "cosine")
    key: tuple[Any, ...] = (
        name,
        float(train.get("warmup_frac", 0.05)),
        float(train.get("final_lr_frac", 0.1)),
        int(train.get("eval_tokens", 16384)),
    )
    if name == "wsd":
        key += (float(train.get("cooldown_frac", 0.2)), train.get("cooldown_shape", "linear"))
    return key


def config_schedule_key(run_dir: str | Path) -> tuple[Any, ...]:
    """``schedule_key`` of the run in ``run_dir`` (its config.yaml)."""
    config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text()) or {}
    return schedule_key(config.get("train") or {})


def _clean(ratios, prior_steps) -> tuple[np.ndarray, np.ndarray | None]:
    r = np.asarray(ratios, dtype=float)
    t = None if prior_steps is None else np.asarray(prior_steps, dtype=float)
    if t is not None and len(t) != len(r):
        raise ValueError(f"prior_steps ({len(t)}) and ratios ({len(r)}): must have the same length")
    ok = np.isfinite(r) & (r > 0)
    if not ok.any():
        raise ValueError("ratios: no finished run of this schedule to take the prior from")
    return r[ok], None if t is None else t[ok]


def predict_ratio(ratios, steps: int | None = None, prior_steps=None) -> float:
    """The pool's end ratio for a run of ``steps``: with the pool's lengths ``prior_steps``, log ratio = c0 + c1 log
    steps fitted by least squares (longer runs drop less after a given share: their curves are flatter there), where
    at least ``MIN_SLOPE_RUNS`` runs span ``MIN_SPAN``x in length; else their median ratio."""
    r, t = _clean(ratios, prior_steps)
    if steps is not None and t is not None and len(t) >= MIN_SLOPE_RUNS and t.max() >= MIN_SPAN * t.min():
        X = np.column_stack([np.ones_like(t), np.log(t)])
        c = np.linalg.lstsq(X, np.log(r), rcond=None)[0]
        return float(np.exp(c[0] + c[1] * np.log(steps)))
    return float(np.median(r))


def predict_end(level_now: float, ratios, steps: int | None = None, prior_steps=None) -> float:
    """A run's end from its ``level`` and the end ratios of the sweep's finished runs of its schedule
    (``predict_ratio``)."""
    return float(level_now * predict_ratio(ratios, steps, prior_steps))


def loo_log_errors(ratios, prior_steps=None) -> np.ndarray:
    """log(ratio) - log(the rule's ratio from the other runs) for each run of the pool in turn."""
    r, t = _clean(ratios, prior_steps)
    out = []
    for j in range(len(r)):
        keep = np.arange(len(r)) != j
        others_t = None if t is None else t[keep]
        pred = predict_ratio(r[keep], None if t is None else int(t[j]), others_t)
        out.append(math.log(r[j]) - math.log(pred))
    return np.asarray(out, dtype=float)


def end_interval(
    level_now: float, ratios, steps: int | None = None, prior_steps=None, coverage: float = 0.9
) -> tuple[float, float, float]:
    """(end, lo, hi): ``predict_end`` with a ``coverage`` interval, end x exp(+-t_q(m - 1) x rms of the pool's
    ``loo_log_errors``), m the pool's size. Each left-out error holds the noise of a run's level and of its ratio, as
    a new run's does. The end and the errors come from one rule: the length trend only where the pool less one run
    still has ``MIN_SLOPE_RUNS`` (else a 3-run pool would predict by the trend and measure its errors on medians of
    2). One mismatch is left: a fold that leaves out the pool's longest or shortest run can lose ``MIN_SPAN`` and take
    the median. ValueError with fewer than ``MIN_POOL`` usable runs."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"coverage={coverage}: must be in (0, 1)")
    r, t = _clean(ratios, prior_steps)
    if len(r) < MIN_POOL:
        raise ValueError(f"ratios: {len(r)} finished runs of this schedule, an interval needs {MIN_POOL}")
    if len(r) - 1 < MIN_SLOPE_RUNS:
        t = None
    end = predict_end(level_now, r, steps, t)
    e = loo_log_errors(r, t)
    half = float(student_t.ppf(0.5 + coverage / 2, len(e) - 1)) * math.sqrt(float(np.mean(e**2)))
    return end, end * math.exp(-half), end * math.exp(half)


def pool_entry(
    run_dir: str | Path, key: tuple[Any, ...], frac: float, window: float = WINDOW
) -> tuple[float, int] | None:
    """(ratio, steps) of the run in ``run_dir`` as a member of schedule ``key``'s pool at ``frac``: its end (its
    summary's ``final_subset_val_loss``, the intermediate evaluations' measure) over its ``level`` (its metrics'
    training loss); None for a run that is not complete, a cooldown branch, one without a final subset loss or of
    another schedule, or one whose files cannot be read."""
    from scaling.core import records

    d = Path(run_dir)
    try:
        s = records.read_summary(d)
        if s.status != records.STATUS_COMPLETE or s.parent_run_id is not None or not s.steps:
            return None
        end = s.final_subset_val_loss
        if end is None or not math.isfinite(end) or config_schedule_key(d) != key:
            return None
        m = records.read_metrics(d)
        lv = level(m["step"].to_numpy(dtype=np.int64), m["train_loss"].to_numpy(dtype=float), s.steps, frac, window)
    except (ValueError, OSError, KeyError, TypeError, yaml.YAMLError):
        return None
    if not (lv > 0 and math.isfinite(lv)):
        return None
    return float(end) / lv, int(s.steps)


def read_pool(
    folder: str | Path, key: tuple[Any, ...], frac: float, exclude: tuple[str, ...] = (), window: float = WINDOW
) -> tuple[list[float], list[int], list[str]]:
    """(ratios, lengths, run ids) of the complete runs in the sweep ``folder`` whose config has schedule ``key``: a
    run's end (its summary's ``final_subset_val_loss``, the intermediate evaluations' measure) over its ``level`` at
    ``frac`` (its metrics' training loss), and its steps. Runs in ``exclude``, cooldown branches, runs without a final
    subset loss and runs whose files cannot be read are left out (``pool_entry``)."""
    from scaling.core import records

    ratios: list[float] = []
    lengths: list[int] = []
    ids: list[str] = []
    for d in sorted(records.iter_run_dirs(Path(folder))):
        if d.name in exclude or not (d / records.SUMMARY_FILE).exists():
            continue
        e = pool_entry(d, key, frac, window)
        if e is not None:
            ratios.append(e[0])
            lengths.append(e[1])
            ids.append(d.name)
    return ratios, lengths, ids
