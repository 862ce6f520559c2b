"""The sweep's planner reads early-stopped runs as data points (issue 18, item 5): at their predicted end mapped onto
the final loss's measure by the folder's median subset -> final offset, the same loss the report's loader gives them
(scaling/core/stopped.py), marked as predicted and never retrained. A stopped run past the low edge of a budget's
complete runs brackets its minimum, in the sequential stages' minima and in the adaptive stage's fit alike."""

import math
import types
import warnings

import pytest

from scaling.core import records, stopped
from scaling.sweep.adaptive import Adaptive, read_done, read_points
from scaling.sweep.priors import Prior
from scaling.sweep.sequential import iso_minimum, stage_minimum
from scaling.train.rundir import finished


@pytest.fixture
def sweep(stopped_sweep):
    return stopped_sweep


def test_the_planner_reads_a_stopped_run_at_its_predicted_end_as_the_report_does(sweep):
    root, s = sweep
    ids = [s[k].run_id for k in ("good", "near", "bad")] + ["missing"]
    assert [x.run_id for x in read_done(root, ids)] == ids[:2]  # the runs that time the sweep: complete ones
    points = read_points(root, ids + ids)  # a stage may list a run twice: one point each
    assert [p.summary.run_id for p in points] == ids[:3]
    assert [p.predicted for p in points] == [False, False, True]
    offset = [x.final_val_loss - x.final_subset_val_loss for x in (s["good"], s["near"])]
    assert points[2].loss == pytest.approx(s["bad"].predicted_final_loss + (offset[0] + offset[1]) / 2)
    assert [p.loss for p in points[:2]] == [s["good"].final_val_loss, s["near"].final_val_loss]
    # the same losses the report's loader fits (analysis/data/load.py shares the rule)
    from analysis.data import load

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", load.RunExcludedWarning)
        df = load.load_runs(root, quality=False).set_index("run_id")
    assert {p.summary.run_id: p.loss for p in points} == pytest.approx(df["loss"].to_dict(), rel=1e-12)
    # final: the trainer skips it (a relaunch never retrains it)
    assert finished(root / s["bad"].run_id, quiet=True)


def test_a_stopped_run_with_nothing_to_map_it_by_is_no_data_point(sweep, tmp_path):
    import shutil

    root, s = sweep
    shutil.copytree(root / s["bad"].run_id, tmp_path / s["bad"].run_id)  # no complete run beside it
    assert read_points(tmp_path, [s["bad"].run_id]) == []
    m, points, note = stage_minimum(tmp_path, [s["bad"].run_id])
    assert m is None and points == [] and "1 run(s) of this budget are no data point" in note
    assert stopped.point_loss(s["bad"], None) is None and stopped.subset_offset([s["bad"]]) is None


# ---------------------------------------------------------------------------------------------------------------
# the case the live A/B met (RESULTS.md, issue 18): the run past a budget's low edge stopped early


OFFSET = 0.05  # final (whole split) minus subset loss of every complete run here
SIZES = [2e3, 4e3, 8e3, 16e3, 32e3]
LOSSES = [4.25, 4.05, 4.10, 4.20, 4.35]  # the smallest stopped early: alone, the others' best is their low edge


def _put(root, rid, budget, n, loss, stop=False):
    (root / rid).mkdir(parents=True)
    s = records.RunSummary(rid, root.name, budget=budget, params_non_embedding=int(n), steps=100)
    if stop:
        s.status, s.stopped_step, s.predicted_final_loss = records.STATUS_STOPPED, 60, loss - OFFSET
        s.predicted_final_loss_lo, s.predicted_final_loss_hi = loss - OFFSET - 0.02, loss - OFFSET + 0.02
    else:
        s.status, s.final_val_loss, s.final_subset_val_loss = records.STATUS_COMPLETE, loss, loss - OFFSET
    records.write_summary(root / rid, s)


def _budget(root, budget, scale=1.0, level=0.0):
    ids = []
    for i, (n, loss) in enumerate(zip(SIZES, LOSSES)):
        rid = f"N{n * scale:.3g}_C{budget:.3g}"
        _put(root, rid, budget, n * scale, loss - level, stop=i == 0)
        ids.append(rid)
    return ids


def test_a_stopped_run_past_the_low_edge_brackets_the_stage_minimum(tmp_path):
    ids = _budget(tmp_path, 1e11)
    done = read_done(tmp_path, ids)
    old = iso_minimum([x.params_non_embedding for x in done], [x.final_val_loss for x in done])
    assert old.edge == "low"  # complete runs only (the planner before): an edge, recentred on a wrong size
    m, points, note = stage_minimum(tmp_path, ids)
    assert m is not None and m.edge is None and 2e3 < m.n < 8e3
    assert [p.summary.run_id for p in points if p.predicted] == [ids[0]]
    assert points[0].loss == pytest.approx(LOSSES[0]) and "1 run(s) stopped early, read at their predicted end" in note


def test_the_adaptive_stage_fits_stopped_runs_as_points_and_offers_no_new_seed_of_them(tmp_path):
    ids = []
    for k, c in enumerate((1e11, 2e11, 4e11)):
        ids += _budget(tmp_path, c, scale=2 ** (0.5 * k), level=0.1 * k)
    sweep = types.SimpleNamespace(out=tmp_path, plan_path=tmp_path / "plan.json")
    stage = Adaptive(sweep, Prior("p", 1e11, 4e3, 0.5, "test"), budget_seconds=math.inf)
    doc = {"runs": [{"run_id": rid} for rid in ids]}
    f = stage._fit(doc)
    iv = f.interval()
    assert iv["budgets_used"] == 3 and iv["n_opt_lo"] is not None and 0.3 < iv["a"] < 0.7
    assert all(b.bracketed for b in f.budgets) and all(len(b.x) == 5 for b in f.budgets)
    assert stage._stopped_only(doc) == {(c, int(2e3 * 2 ** (0.5 * k))) for k, c in enumerate((1e11, 2e11, 4e11))}
    # the fit through the complete runs alone (the planner before): no budget bracketed, no interval
    from scaling.core import design

    only = design.fit(
        [design.Run(x.budget, x.params_non_embedding, x.final_val_loss) for x in read_done(tmp_path, ids)]
    )
    assert not any(b.bracketed for b in only.budgets) and only.interval()["n_opt"] is None
