"""Early stop (issue 18, item 5): a real tiny run whose curve so far predicts, with confidence, an end far above the
finished runs of its budget is stopped and recorded as such; a run near them is not; the default never stops."""

import math

import numpy as np
import pytest

from scaling.config.schema import ConfigError, run_id, validate
from scaling.core import records
from scaling.core.curve_law import tissue_end
from scaling.train.entry import train
from support import tiny_cfg

BUDGET = 2.2e9  # 5e3 params at seq 32, batch 8: about 60 steps


def cfg_at(tmp_path, **kw):
    c = tiny_cfg(tmp_path, tokens=None, budget=BUDGET, eval_interval=2, eval_tokens=512, **kw)
    return c


def test_a_run_far_above_its_finished_neighbour_stops_and_says_so(tmp_path, default_corpus, monkeypatch):
    good = train(cfg_at(tmp_path))
    assert good.status == records.STATUS_COMPLETE and good.final_subset_val_loss is not None
    # the same model with a learning rate 1000x too small: its curve stays far above the good run's end
    bad_cfg = cfg_at(tmp_path, lr=3e-6, early_stop_frac=0.5)
    on_disk = []  # every summary.json the run leaves, read back after each (atomic) write: what a kill could leave

    def write_and_read_back(run_dir, summary, before_replace=None):
        real_write_summary(run_dir, summary, before_replace)
        on_disk.append(records.read_summary(run_dir))

    real_write_summary = records.write_summary
    monkeypatch.setattr(records, "write_summary", write_and_read_back)
    bad = train(bad_cfg)
    monkeypatch.undo()
    # the stop is one write: no final summary on disk ever carries the intermediate loss as a final loss
    final = [s for s in on_disk if s.status in records.FINAL_STATUSES]
    assert [s.status for s in final] == [records.STATUS_STOPPED]
    assert final[0].final_val_loss is None and final[0].final_subset_val_loss is None
    assert final[0].predicted_final_loss == bad.predicted_final_loss and final[0].stopped_step == bad.stopped_step
    assert bad.status == records.STATUS_STOPPED and "early stop" in bad.reason
    assert bad.final_val_loss is None and bad.stopped_step is not None
    assert 0.5 * bad.steps <= bad.stopped_step < bad.steps and bad.tokens_trained == bad.stopped_step * 256
    assert bad.predicted_final_loss_lo > 1.02 * good.final_subset_val_loss
    run_dir = tmp_path / "t" / run_id(bad_cfg)
    assert not (run_dir / records.CHECKPOINT_FILE).exists()
    assert records.read_summary(run_dir).status == records.STATUS_STOPPED
    assert len(records.read_metrics(run_dir)) == bad.stopped_step
    # final: a relaunch skips it
    again = train(bad_cfg)
    assert again.status == records.STATUS_STOPPED and again.stopped_step == bad.stopped_step
    # the sequential sweep's record of it: the FLOPs the stopped run did not spend
    from scaling.sweep.sequential import _stopped_beyond, early_stops

    rec = early_stops(tmp_path / "t", [good.run_id, bad.run_id, bad.run_id])  # a stage may list a run twice
    assert [s["run_id"] for s in rec["stopped"]] == [bad.run_id]
    assert rec["flops_saved"] == pytest.approx(bad.flops["chinchilla"] * (1 - bad.stopped_step / bad.steps))
    # a stopped run past an edge of the finished sizes brackets the minimum on that side: no size is added there
    n = bad.params_non_embedding
    assert _stopped_beyond(tmp_path / "t", [good.run_id, bad.run_id], "low", [2 * n, 4 * n])
    assert not _stopped_beyond(tmp_path / "t", [good.run_id, bad.run_id], "high", [n / 2, 2 * n])  # inside
    # a run near its neighbour (another seed) is not stopped, nor is any run with the default (off)
    near = train(cfg_at(tmp_path, seed=1, early_stop_frac=0.5))
    assert near.status == records.STATUS_COMPLETE
    off = train(cfg_at(tmp_path / "off", lr=3e-6))
    assert off.status == records.STATUS_COMPLETE


def test_the_extrapolated_end_of_an_exact_curve_is_its_end_with_a_tight_interval():
    from scaling.core.curve_law import TissueFit

    eta = np.r_[np.linspace(0, 1e-3, 20), 1e-3 * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * np.arange(180) / 180)))]
    law = TissueFit(L0=3.0, A=0.8, alpha=0.5, C=0.4, decay=0.999, rmse_rel=0.0, n_points=0)
    steps = np.arange(10, 201, 10)
    pred, lo, hi = tissue_end(eta, steps, law.predict(eta, steps), upto=120, n_boot=20)
    end = float(law.predict(eta, np.array([200]))[0])
    assert pred == pytest.approx(end, rel=1e-4) and lo <= end * (1 + 1e-4) and hi >= end * (1 - 1e-4)


@pytest.mark.parametrize(
    "field,value",
    [("early_stop_frac", 1.0), ("early_stop_frac", -0.1), ("early_stop_frac", 0.01), ("early_stop_margin", -1)],
)
def test_bad_early_stop_settings_name_the_field(tmp_path, field, value):
    with pytest.raises(ConfigError, match=f"train.{field}"):
        validate(tiny_cfg(tmp_path, **{field: value}))


def test_early_stop_settings_leave_the_run_id_alone(tmp_path):
    assert run_id(tiny_cfg(tmp_path)) == run_id(tiny_cfg(tmp_path, early_stop_frac=0.5, early_stop_margin=0.1))
    assert math.isinf(
        __import__("scaling.train.callbacks.early_stop", fromlist=["x"]).neighbours_best(tmp_path / "t" / "x", 1e9, "x")
    )


def test_the_sweep_counts_only_complete_runs_as_data_but_every_final_run_as_done(tmp_path):
    """A stopped run is final (a relaunch skips it) but no data point, even where its summary carries a finite loss (as
    an older trainer's two-write stop could leave it after a kill); nor is a diverged run's last loss."""
    from scaling.sweep.adaptive import read_done
    from scaling.train.rundir import finished  # the trainer's check before it trains a run: final ones are skipped

    def put(rid, status, loss):
        (tmp_path / rid).mkdir()
        records.write_summary(tmp_path / rid, records.RunSummary(rid, "t", status=status, final_val_loss=loss))

    put("complete", records.STATUS_COMPLETE, 3.0)
    put("stopped_with_loss", records.STATUS_STOPPED, 2.0)
    put("stopped", records.STATUS_STOPPED, None)
    put("diverged", records.STATUS_DIVERGED, 2.5)
    put("running", records.STATUS_RUNNING, 2.0)
    ids = ["complete", "stopped_with_loss", "stopped", "diverged", "running", "missing"]
    assert [s.run_id for s in read_done(tmp_path, ids)] == ["complete"]
    assert [rid for rid in ids if finished(tmp_path / rid, quiet=True)] == [
        "complete",
        "stopped_with_loss",
        "stopped",
        "diverged",
    ]


def test_a_wsd_run_decides_only_once_its_curve_has_seen_half_the_annealing_and_never_before(tmp_path, default_corpus):
    """Before a WSD cooldown the fitted points have no annealing area: the law would extrapolate the plateau and
    miss the cooldown's drop. The look defers until half the end's area is seen; a run that never gets there is
    not stopped and says why."""
    from scaling.core.curve_law import annealing_shares
    from scaling.train.callbacks.early_stop import MIN_ANNEAL_SHARE
    from scaling.train.lifecycle import resolve

    good = train(cfg_at(tmp_path, schedule="wsd"))
    assert good.status == records.STATUS_COMPLETE
    bad_cfg = cfg_at(tmp_path, schedule="wsd", lr=3e-6, early_stop_frac=0.5)
    p = resolve(bad_cfg).plan
    shares = annealing_shares(np.array([p.schedule.lr_at(i) for i in range(p.steps)]))
    first = int(np.argmax(shares >= MIN_ANNEAL_SHARE)) + 1  # the first step a decision may be made at
    assert first > 0.8 * p.steps  # inside the cooldown (the last 20% of the steps)
    assert annealing_shares(np.full(p.steps, 1e-3)).min() == 1.0  # a schedule that never decays: nothing to wait for
    bad = train(bad_cfg)
    assert bad.status == records.STATUS_STOPPED and first <= bad.stopped_step < bad.steps
    assert bad.early_stop_note is None  # it decided
    # a cooldown too short to reach half its area before the last evaluation: no decision, and the summary says why
    short = train(cfg_at(tmp_path, schedule="wsd", cooldown_frac=0.05, lr=3e-6, early_stop_frac=0.5))
    assert short.status == records.STATUS_COMPLETE and short.final_val_loss is not None
    last_eval = short.steps - 2  # evaluations every 2 steps; the final step's is no look
    assert short.early_stop_note.startswith(f"early stop: no decision at step {last_eval} of {short.steps}: ")
    assert "annealing area" in short.early_stop_note
