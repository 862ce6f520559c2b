"""Early stop by the sweep prior (issue 18): in a sweep folder with enough finished runs of its schedule, written by
the real trainer, a run's end at the look is the prior's (its training loss x the pool's end ratio) with the pool's
leave-one-out interval, and the summary names the predictor; with too few, the Tissue law decides as before."""

import numpy as np
import pytest

from scaling.config.schema import run_id
from scaling.core import end_prior, records
from scaling.train.entry import train
from support import tiny_cfg

BUDGET = 2.2e9  # 5e3 params at seq 32, batch 8: about 60 steps


def cfg_at(tmp_path, **kw):
    return tiny_cfg(tmp_path, tokens=None, budget=BUDGET, eval_interval=2, eval_tokens=512, **kw)


def test_with_three_finished_runs_of_its_schedule_the_sweep_prior_decides(tmp_path, default_corpus):
    good = [train(cfg_at(tmp_path, seed=s)) for s in range(3)]
    assert all(g.status == records.STATUS_COMPLETE for g in good)
    best = min(g.final_subset_val_loss for g in good)
    bad_cfg = cfg_at(tmp_path, lr=3e-6, early_stop_frac=0.5)
    bad = train(bad_cfg)
    assert bad.status == records.STATUS_STOPPED
    assert "by the sweep prior (3 finished runs of its schedule)" in bad.reason
    # it looks at the first evaluation from half the run, before Tissue's gate (half the annealing area seen)
    from scaling.core.curve_law import annealing_shares, decision_ready
    from scaling.train.lifecycle import resolve

    plan = resolve(bad_cfg).plan
    shares = annealing_shares(np.array([plan.schedule.lr_at(i) for i in range(plan.steps)]))
    assert bad.stopped_step == next(s for s in range(2, plan.steps, 2) if s >= 0.5 * plan.steps)
    assert not decision_ready(shares, bad.stopped_step, plan.steps, 0.5)  # Tissue would have waited
    # the prediction is the core rule's, from the stopped run's own metrics and the three finished runs on disk
    folder, rid = tmp_path / "t", run_id(bad_cfg)
    frac = bad.stopped_step / bad.steps
    ratios, lengths, ids = end_prior.read_pool(folder, end_prior.config_schedule_key(folder / rid), frac, (rid,))
    assert sorted(ids) == sorted(g.run_id for g in good)
    m = records.read_metrics(folder / rid)
    lv = end_prior.level(m["step"].to_numpy(), m["train_loss"].to_numpy(), bad.steps, frac)
    pred, lo, hi = end_prior.end_interval(lv, ratios, bad.steps, lengths)
    assert (bad.predicted_final_loss, bad.predicted_final_loss_lo, bad.predicted_final_loss_hi) == pytest.approx(
        (pred, lo, hi), rel=1e-12
    )
    assert lo > 1.02 * best and lo <= pred <= hi
    # a run near the finished ones trains on, and its note says who decided and what it predicted
    near = train(cfg_at(tmp_path, seed=3, early_stop_frac=0.5))
    assert near.status == records.STATUS_COMPLETE and near.final_val_loss is not None
    assert near.early_stop_note.startswith("early stop: decided at step ")
    assert "by the sweep prior (3 finished runs of its schedule)" in near.early_stop_note
    lo, hi = (float(x) for x in near.early_stop_note.split("[90%: ")[1].split("]")[0].split(", "))
    assert lo < hi and lo <= 1.02 * best  # not stopped: its low end within the margin of the best run


def test_too_few_finished_runs_of_the_schedule_fall_back_to_the_tissue_law(tmp_path, default_corpus):
    cosine = train(cfg_at(tmp_path))  # one cosine run, and two WSD runs: another schedule, no part of the pool
    train(cfg_at(tmp_path, schedule="wsd", seed=1))
    train(cfg_at(tmp_path, schedule="wsd", seed=2))
    folder = tmp_path / "t"
    key = end_prior.config_schedule_key(folder / cosine.run_id)
    assert len(end_prior.read_pool(folder, key, 0.5)[0]) == 1
    bad = train(cfg_at(tmp_path, lr=3e-6, early_stop_frac=0.5))
    assert bad.status == records.STATUS_STOPPED and "by the Tissue law" in bad.reason
    assert np.isfinite(bad.predicted_final_loss_lo)
