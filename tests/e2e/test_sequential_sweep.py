"""The sequential sweep (scaling/sweep/sequential.py): minima from a budget's runs, the law refitted through them, sizes
past an edge, and a real sweep whose prior is far off: the edge minimum gets more sizes, the next budget is
recentred, everything is recorded, and a rerun trains nothing."""

import json
import math
import os

import pytest

from scaling.core import records
from scaling.sweep import plan as planner
from scaling.sweep import presets, priors
from scaling.sweep import sequential as seq
from support import REPO, run_cli


def test_minimum_is_the_parabola_vertex_in_ln_n_and_an_edge_is_not_bracketed():
    ns = [1e3, 2e3, 4e3, 8e3, 16e3]
    true = 3e3
    losses = [3.0 + 0.2 * (math.log(n) - math.log(true)) ** 2 for n in ns]
    m = seq.iso_minimum(ns, losses)
    assert m.edge is None and m.n == pytest.approx(true, rel=1e-9) and m.loss == pytest.approx(3.0, abs=1e-12)
    # unordered input, a NaN (a run without a loss) ignored
    m2 = seq.iso_minimum(ns[::-1] + [5e3], losses[::-1] + [math.nan])
    assert m2.n == pytest.approx(true, rel=1e-9)
    low = seq.iso_minimum(ns, [3.0 + 0.01 * k for k in range(5)])
    high = seq.iso_minimum(ns, [3.0 - 0.01 * k for k in range(5)])
    assert (low.edge, low.n) == ("low", 1e3) and (high.edge, high.n) == ("high", 16e3)
    with pytest.raises(ValueError, match="no finite losses"):
        seq.iso_minimum(ns, [math.nan] * 5)


def test_law_through_minima_fits_the_slope_only_over_a_wide_enough_range():
    prior = priors.Prior("p", 1e12, 2e4, 0.75, "test")
    # two minima 2x apart: the prior's slope is kept, the intercept moves to the minima
    two = [(1e11, 3e3), (2e11, 3e3 * 2**0.75)]
    p2 = seq.refit_prior(prior, two)
    assert p2.a == 0.75 and p2.n_opt(1e11) == pytest.approx(3e3, rel=1e-9)
    # minima spanning 8x on an exact power law of slope 0.5: recovered
    exact = [(c, 5e3 * (c / 1e11) ** 0.5) for c in (1e11, 2e11, 4e11, 8e11)]
    p3 = seq.refit_prior(prior, exact)
    assert p3.a == pytest.approx(0.5, abs=1e-9) and p3.n_opt(4e11) == pytest.approx(1e4, rel=1e-9)
    # a wild slope is clamped
    wild = [(1e11, 1e3), (8e11, 1e6)]
    assert seq.refit_prior(prior, wild).a == seq.SLOPE_BOUNDS[1]
    assert seq.refit_prior(prior, []) is prior


def test_sizes_past_an_edge_are_new_family_shapes_beyond_it(default_corpus):
    base, _, _ = presets.compose_preset("isoflop_cpu")
    cat = planner.family_sizes(base)
    ns = [n for _, n in cat]
    sampled = ns[3:8]
    step = math.log(2.5) / 2
    lo = seq.beyond("low", sampled, cat, step, 2)
    hi = seq.beyond("high", sampled, cat, step, 2)
    n_of = dict(cat)
    # at the small end the shapes are far apart (N ~ d^2 with d a multiple of 8): the next two shapes down
    assert [n_of[t] for t in lo] == [ns[2], ns[1]]
    # at the large end they are dense: each new size about one step (x1.58) past the last, none already sampled
    up = [max(sampled)] + [n_of[t] for t in hi]
    assert len(hi) == 2 and all(b > a and 0.5 * step < math.log(b / a) < 1.5 * step for a, b in zip(up, up[1:]))
    assert seq.beyond("low", ns[:3], cat, 0.5, 2) == []  # nothing below the family's smallest shape


@pytest.mark.slow
def test_a_sequential_sweep_extends_an_edge_minimum_recentres_and_resumes(tmp_path, default_corpus):
    # a prior ~5x too large (the tiny preset's minimum at 6e10 FLOPs is near N = 6k): the first budget's smallest
    # size is its best, so sizes are added below it
    prior = tmp_path / "far.json"
    prior.write_text(json.dumps({"C0": 6e10, "N0": 4e4, "a": 0.5, "name": "far"}))
    args = [
        "-m",
        "scaling.sweep.sequential",
        "--preset",
        "isoflop_tiny",
        "--budgets",
        "6e10,1.2e11",
        "--points",
        "3",
        "--spread",
        "1.5",
        "--extend",
        "2",
        "--prior",
        str(prior),
        "--probe-seconds",
        "0.02",
        "--batch-rule",
        "512",
        "--adaptive",
        "0",  # the ladder alone (tests/e2e/test_adaptive_sweep.py covers the adaptive stage)
        f"results_dir={tmp_path}",
        "train.final_eval_tokens=4096",
    ]
    r = run_cli(args, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "isoflop_tiny"
    doc = json.loads((out / "plan.json").read_text())
    assert doc["mode"] == "sequential" and [s["budget"] for s in doc["stages"]] == [6e10, 1.2e11]
    first, second = doc["stages"]
    assert first["extensions"] >= 1 and len(first["run_ids"]) == 3 + first["extensions"], first
    assert first["minimum"]["n"] < 2.5e4  # below every size the far prior sampled
    # the second budget is centred on the first budget's measured minimum (times 2^a), not on the far prior
    assert second["centre"] == pytest.approx(first["minimum"]["n"] * 2**0.5, rel=1e-6)
    assert doc["actual_wall_seconds"] > 0 and doc["predicted_wall_seconds"] > 0
    ran = first["run_ids"] + second["run_ids"]
    assert all(records.read_summary(out / rid).status == records.STATUS_COMPLETE for rid in ran)
    assert json.loads((out / "prior.json").read_text())["name"] == "sequential"
    # the final preset holds every run, with the tokens per step the stages trained with
    _, params, _ = presets.compose_preset("sweep", sweeps_dir=out)
    assert len(presets.preset_points(params)) == len(ran)
    # a rerun recomputes the same stages from the same summaries and trains nothing
    stamps = {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in ran}
    r = run_cli(args, cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    doc2 = json.loads((out / "plan.json").read_text())
    assert [s["run_ids"] for s in doc2["stages"]] == [s["run_ids"] for s in doc["stages"]]
    assert {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in ran} == stamps
    # the report says which budgets ran, the stages and the measured wall time
    from analysis.pipeline import Analysis, read_plan
    from analysis.report.sweep_sections import plan_section

    an = Analysis(
        source=str(out),
        runs=None,
        curves=None,
        scan=None,
        budgets=(),
        c_range=(1, 2),
        n_boot=0,
        seed=0,
        level=0.9,
        sweep_plan=read_plan(out),
    )
    text = plan_section(an)
    assert "6e10" in text and "1.2e11" in text, text
    assert "measured" in text and "bracketed" in text


def test_bad_arguments_are_refused_before_anything_trains(tmp_path):
    for extra, msg in (
        (["--points", "2"], "--points=2: must be >= 3"),
        (["--extend", "-1"], "--extend=-1"),
        (["--spread", "1"], "--spread=1.0: must be > 1"),
        (["--adaptive", "1"], "--adaptive=1.0: must be in [0, 1)"),
        (["--target", "-1"], "--target=-1.0: must be a positive number of FLOPs"),
        (["--report-seconds", "900"], "--report-seconds=900.0: must be in [0, --minutes * 60)"),
        (["--early-stop", "1"], "--early-stop=1.0: must be 0 (off) or in [0.05, 1)"),
        (["--early-stop", "0.01"], "--early-stop=0.01: must be 0 (off) or in [0.05, 1)"),
    ):
        r = run_cli(["-m", "scaling.sweep.sequential", "--dry-run", *extra, f"results_dir={tmp_path}"], cwd=REPO)
        assert r.returncode == 2 and msg in r.stderr, r.stderr[-2000:]
    assert not any(tmp_path.iterdir())
