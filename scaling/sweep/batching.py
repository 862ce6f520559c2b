"""Which runs the adaptive stage trains next in the time it has left: the best batch by expected narrowing per FLOP
(scaling.core.design.choose), or, when that batch would not finish in time, the best-scoring runs that would.

The fallback, in order:

1. ``best``: the best batch of ``slots`` runs (design.choose over every candidate) if its predicted time fits;
2. ``fits``: else the same choice among the candidates whose own runs fit the time left, so a batch of runs that
   keeps every worker busy (2 runs of one core each here) replaces a 5-run new budget that would overrun;
3. ``alone``: else, when that leaves a worker idle (one run fits, or none), the best-scoring single run that fits
   given all the workers' threads (its time planned at that many threads: the caller's ``alone``);
4. nothing: every candidate that would narrow the interval takes longer than the time left (or none would).

Predicted times are the caller's (``cost``: the launcher's makespan of the runs on that many workers, scaled by the
sweep's measured over predicted seconds, plus a batch's start-up). Torch-free; scaling/sweep/adaptive.py uses it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

from scaling.core import design
from scaling.sweep.planned import PlannedRun

ALONE_TRIES = 4  # single runs planned on all threads (a probe each, the first time a shape is seen) before giving up
Pair = tuple[design.Candidate, list[PlannedRun]]
Cost = Callable[[list[PlannedRun], int], float]  # (runs, parallel workers) -> predicted seconds of their batch


@dataclass
class Choice:
    """The next batch: its candidates (scored, in the order chosen), the predicted seconds of their runs together on
    ``workers`` workers (``predicted``) and of each alone (``seconds``), ``threads`` per run (None: the preset's), the
    rule that chose it (``mode``: 'best', 'fits', 'alone' or 'none') and why, in words."""

    chosen: list[design.Candidate]
    predicted: float
    mode: str
    why: str
    threads: Optional[int] = None
    workers: int = 1
    seconds: list[float] = field(default_factory=list)
    alone: Optional[PlannedRun] = None  # mode 'alone': the run as planned at ``threads`` threads


def runs_of(chosen: Sequence[design.Candidate], pairs: Sequence[Pair]) -> list[PlannedRun]:
    """The planned runs of the chosen candidates, in order (a candidate chosen twice runs twice)."""
    return [r for c in chosen for r in planned_runs(c, pairs)]


def planned_runs(c: design.Candidate, pairs: Sequence[Pair]) -> list[PlannedRun]:
    return next(rs for cc, rs in pairs if cc.kind == c.kind and cc.budget == c.budget and cc.ns == c.ns)


def _names(chosen: Sequence[design.Candidate]) -> str:
    return ", ".join(f"{c.kind} at {c.budget:.3g} ({len(c.ns)} run(s))" for c in chosen)


def choose_within(
    f: design.Fit,
    pairs: Sequence[Pair],
    *,
    slots: int,
    jobs: int,
    left: float,
    cost: Cost,
    alone: Optional[Callable[[PlannedRun], Optional[PlannedRun]]] = None,
) -> Choice:
    """The next batch of at most ``slots`` runs (a new budget may fill a batch alone, as design.choose allows) whose
    predicted time fits ``left`` seconds, by the fallback order of this module's docstring. ``alone(run)`` plans a
    single run with all ``jobs`` threads (None where it cannot); without it, step 3 is skipped."""
    cands = [c for c, _ in pairs]

    def batch(chosen: list[design.Candidate], mode: str, why: str) -> Choice:
        t = cost(runs_of(chosen, pairs), jobs)
        secs = [cost(planned_runs(c, pairs), jobs) for c in chosen]
        return Choice(chosen, t, mode, why.format(t=t), threads=None, workers=jobs, seconds=secs)

    best = design.choose(f, cands, slots)
    if not best:
        return Choice([], 0.0, "none", "no candidate is expected to narrow the interval")
    t_best = cost(runs_of(best, pairs), jobs)
    if t_best <= left:
        return batch(best, "best", f"the best batch ({{t:.0f}} s predicted, {left:.0f} s left)")
    over = f"the best batch ({_names(best)}, {t_best:.0f} s predicted) would pass the {left:.0f} s left"
    # 2. the best batch among the candidates that fit on their own (each alone at most ``left``)
    own = {id(c): cost(planned_runs(c, pairs), jobs) for c in cands}
    fitting = [c for c in cands if own[id(c)] <= left]
    sub = design.choose(f, fitting, slots) if fitting else []
    while sub and cost(runs_of(sub, pairs), jobs) > left:  # candidates that fit alone may not fit together
        sub = sub[:-1]
    n_sub = len(runs_of(sub, pairs))
    if sub and n_sub >= min(jobs, slots):
        return batch(sub, "fits", over + ": the best-scoring runs that fit instead ({t:.0f} s predicted)")
    # 3. one run on every thread: the best-scoring single-run candidate whose run, so planned, fits
    if alone is not None and jobs > 1:
        singles = [c for c in design.score(f, [c for c in cands if len(c.ns) == 1]) if c.score > 0]
        # jobs threads are at most jobs times faster: only runs that could fit so are planned (each plan may probe)
        hopeful = [c for c in singles if cost(planned_runs(c, pairs), 1) / jobs <= left][:ALONE_TRIES]
        for c in hopeful:
            r = alone(planned_runs(c, pairs)[0])
            t = math.inf if r is None else cost([r], 1)
            if t <= left:
                idle = f"only {n_sub} run at one thread fits, which leaves a worker idle" if sub else "nothing fits"
                why = f"{over}; {idle}: the best-scoring single run that fits, on all {jobs} threads ({t:.0f} s)"
                return Choice([c], t, "alone", why, threads=jobs, workers=1, seconds=[t], alone=r)
    if sub:
        return batch(sub, "fits", over + ": the best-scoring run that fits instead ({t:.0f} s predicted)")
    useful = [c for c in cands if design.score(f, [c])[0].score > 0]
    quickest = min((own[id(c)] for c in useful), default=math.inf)
    why = f"{over}, and no run that would narrow the interval fits (the quickest takes {quickest:.0f} s)"
    return Choice([], t_best, "none", why)
