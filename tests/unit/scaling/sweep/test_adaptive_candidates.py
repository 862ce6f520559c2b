"""The adaptive stage's candidates as the trainer would run them (scaling/sweep/adaptive.py): a new budget is offered
whole (the ladder's sizes) and as 3 of those same planned runs (the smallest, the middle, the largest)."""

import math

from scaling.core import design
from scaling.sweep import plan as planner
from scaling.sweep.adaptive import Adaptive
from scaling.sweep.sequential import Sweep


def test_a_new_budget_comes_whole_and_as_its_ends_and_middle(tmp_path):
    base, _, jobs = planner.compose_preset("isoflop_tiny")
    base.results_dir = str(tmp_path)
    prior = planner.Prior("near", 6e10, 5e3, 0.75, "test")
    sw = Sweep(
        "isoflop_tiny", base, jobs, 10**9, prior, points=5, spread=2.5, extend=1, batch_rule="512",
        lr_rule="config", probe_seconds=0.02,
    )  # fmt: skip
    # a fitted line from exact parabolas at three budgets (the runs' sizes need not be family sizes for the fit)
    runs = []
    for c in (6e10, 8.5e10, 1.2e11):
        mid = 5e3 * (c / 6e10) ** 0.75
        runs += [design.Run(c, mid * 2.5**u, 3.0 + 0.12 * math.log(2.5**u) ** 2) for u in (-1, -0.5, 0, 0.5, 1)]
    f = design.fit(runs, sd=0.03)
    cands = Adaptive(sw, prior, budget_seconds=math.inf)._candidates(f, {"runs": []})
    new = [(c, rs) for c, rs in cands if c.kind == "budget"]
    full = [(c, rs) for c, rs in new if c.extra["layout"] == "full"]
    sparse = [(c, rs) for c, rs in new if c.extra["layout"] == "sparse"]
    assert full and len(full) == len(sparse)
    for (cf, rf), (cs, rs) in zip(full, sparse):
        ns = sorted(r.N for r in rf)
        assert cs.budget == cf.budget and [r.N for r in rs] == [ns[0], ns[len(ns) // 2], ns[-1]]
        assert cs.ns == [float(r.N) for r in rs] and cs.flops == sum(r.flops for r in rs) < cf.flops
