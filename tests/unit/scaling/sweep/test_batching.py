"""scaling/sweep/batching.py: when the best adaptive batch would not finish in the seconds left, the stage trains the
best-scoring runs that would (both workers busy), else the best single run on every thread, and stops only when no
run that would narrow the interval fits. Real fits (scaling.core.design) and real PlannedRun rows."""

import math
from dataclasses import replace

import numpy as np

from scaling.core import design
from scaling.sweep import batching
from scaling.sweep.plan import PlannedRun
from scaling.sweep.timing import wall_seconds

LADDER = [1.25e11 * 2 ** (k / 2) for k in range(4)]  # the fresh-clone sweep's ladder: 1.25e11 .. 3.54e11
NEXT = [5e11, 7.071e11]
STEP = 2 * math.log(2.5) / 4  # 5 sizes over 2.5x either side, as the default sweep
OVERHEAD = 10.0
THREADED_SPEEDUP = 1.6  # one run on two threads against one: what the threaded plan's probe would say (given here)


def _fit() -> design.Fit:
    rng = np.random.default_rng(3)
    runs = []
    for c in LADDER:
        mid = 1.6e4 * (c / 5e11) ** 0.8
        for n in mid * 2.5 ** np.linspace(-1, 1, 5):
            loss = 3.0 - 0.1 * math.log(c / 1e12) + 0.12 * math.log(n / mid) ** 2 + rng.normal(0, 0.02)
            runs.append(design.Run(c, float(n), loss))
    return design.fit(runs)


def _run(c: float, n: float, seconds: float) -> PlannedRun:
    return PlannedRun(c, f"{n:.3g}", {"budget": c, "size": f"{n:.3g}"}, f"N{n:.3g}_C{c:.3g}", round(n), 0, 0, 0, 0.0,
                      c, 0.5, seconds)  # fmt: skip


def _pairs(f: design.Fit) -> list[batching.Pair]:
    # a run's seconds in proportion to its FLOPs: 5e11 takes 45 s on one core (the fresh-clone sweep's ~118 s for 5)
    return [(c, [_run(c.budget, n, c.budget / 1.1e10) for n in c.ns]) for c in design.candidates(f, STEP, NEXT, 5)]


def _cost(runs: list[PlannedRun], workers: int) -> float:
    return wall_seconds(runs, workers) + OVERHEAD


def _alone(r: PlannedRun) -> PlannedRun:
    return replace(r, seconds=r.seconds / THREADED_SPEEDUP)


def test_the_best_batch_is_kept_when_it_fits():
    f = _fit()
    pairs = _pairs(f)
    best = design.choose(f, [c for c, _ in pairs], 2)
    got = batching.choose_within(f, pairs, slots=2, jobs=2, left=1e4, cost=_cost, alone=_alone)
    assert got.mode == "best" and got.chosen == best and got.threads is None
    assert got.predicted == _cost(batching.runs_of(best, pairs), 2) and "best batch" in got.why


def test_a_batch_that_does_not_fit_gives_way_to_the_best_runs_that_do():
    f = _fit()
    pairs = _pairs(f)
    left = 85.0  # what the fresh-clone sweep's adaptive stage had left after its first batch
    best = design.choose(f, [c for c, _ in pairs], 2)
    # the old rule: the best batch (a new budget of 5 runs) would pass the time left, so the stage stopped here
    assert best[0].kind == "budget" and _cost(batching.runs_of(best, pairs), 2) > left
    got = batching.choose_within(f, pairs, slots=2, jobs=2, left=left, cost=_cost, alone=_alone)
    runs = batching.runs_of(got.chosen, pairs)
    assert got.mode == "fits" and len(runs) == 2 and got.threads is None  # both workers busy
    assert got.predicted == _cost(runs, 2) <= left
    # the first is the best-scoring candidate among those that fit, the second the best given it
    fitting = [c for c, rs in pairs if _cost(rs, 2) <= left]
    assert got.chosen[0].score == design.score(f, fitting)[0].score > 0
    assert got.chosen == design.choose(f, fitting, 2)
    assert f"would pass the {left:.0f} s left" in got.why and len(got.seconds) == len(got.chosen)


def test_one_run_on_every_thread_when_no_run_fits_on_one():
    f = _fit()
    pairs = _pairs(f)
    quickest = min(_cost(rs, 2) for c, rs in pairs if len(rs) == 1)
    left = quickest - 1.0  # no run fits at one thread; the quickest fits on two
    got = batching.choose_within(f, pairs, slots=2, jobs=2, left=left, cost=_cost, alone=_alone)
    assert got.mode == "alone" and got.threads == 2 and len(got.chosen) == 1 and got.alone is not None
    assert got.predicted == _cost([got.alone], 1) <= left and "on all 2 threads" in got.why
    # without a threaded plan there is nothing to train, and the stage says why it stops
    none = batching.choose_within(f, pairs, slots=2, jobs=2, left=left, cost=_cost)
    assert none.mode == "none" and not none.chosen and "no run that would narrow the interval fits" in none.why


def test_a_batch_overhead_is_its_wall_time_less_its_runs_own_time_not_less_its_prediction():
    from scaling.sweep.adaptive import BATCH_OVERHEAD_SECONDS, batch_overhead

    assert batch_overhead([]) == BATCH_OVERHEAD_SECONDS  # nothing measured yet
    # a batch predicted exactly (its prediction holds the overhead): the overhead is still the 12 s outside its runs
    done = [{"wall_seconds": 100.0, "predicted_seconds": 100.0, "runs_seconds": 88.0}]
    assert batch_overhead(done) == 12.0
    done.append({"wall_seconds": 50.0, "predicted_seconds": 45.0, "runs_seconds": 42.0})
    assert batch_overhead(done) == 10.0
    # a batch without its runs' measured time (a plan written before it was recorded) is not evidence
    assert batch_overhead([{"wall_seconds": 100.0, "predicted_seconds": 100.0}]) == BATCH_OVERHEAD_SECONDS
    # nor is one replayed after a kill (no runs_seconds) or whose runs' time exceeds its wall time
    resumed = {"wall_seconds": 40.0, "runs_seconds": None, "resumed": True}
    assert batch_overhead(done[:1] + [resumed, {"wall_seconds": 40.0, "runs_seconds": 60.0}]) == 12.0
