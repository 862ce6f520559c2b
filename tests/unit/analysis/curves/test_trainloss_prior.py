"""The training-loss curve and the sweep prior on a run's end (issue 18, item 3a; RESULTS.md "Loss-curve laws")."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from analysis.curves import predict, prior, trainloss
from analysis.curves import schedule as sc
from analysis.curves.tissue import TissueFit


def test_binned_shifts_to_the_laws_step_and_averages_whole_bins_only():
    eta = np.full(10, 1e-3)
    steps = np.arange(1, 11)  # metrics steps; the loss at metrics step s is the law's point at s - 1
    loss = steps.astype(float)
    _, s, y = trainloss.binned(eta, steps, loss, n_bins=4)  # bins of ceil(10 / 4) = 3 law steps: 1-3, 4-6, 7-9
    assert s.tolist() == [2, 5, 8]
    assert y.tolist() == [3.0, 6.0, 9.0]
    # a lost row leaves its bin out; a non-finite loss is dropped like one
    _, s, _ = trainloss.binned(eta, np.delete(steps, 4), np.delete(loss, 4), n_bins=4)
    assert s.tolist() == [2, 8]
    loss[7] = np.nan
    assert trainloss.binned(eta, steps, loss, n_bins=4)[1].tolist() == [2, 5]
    with pytest.raises(ValueError, match="n_bins"):
        trainloss.binned(eta, steps, loss, n_bins=0)
    with pytest.raises(ValueError, match="same length"):
        trainloss.binned(eta, steps, loss[:-1])


def _law() -> TissueFit:
    return TissueFit(L0=3.0, A=1.5, alpha=0.6, C=0.4, decay=0.99, rmse_rel=0.0, n_points=0)


def test_a_law_fitted_to_a_noisy_training_curve_predicts_the_validation_end_through_the_measured_offset():
    eta = sc.cosine(1e-2, 2000)
    law, offset = _law(), 1.02  # validation reads 2% above training
    metrics_steps = np.arange(1, 2001)
    rng = np.random.default_rng(0)
    clean = law.predict(eta, np.maximum(metrics_steps - 1, 1))
    train = clean * (1 + 0.03 * rng.standard_normal(len(clean)))  # ~3% per step, as a small batch's loss
    v_steps = np.arange(125, 2001, 125)  # 16 evaluations
    val = offset * law.predict(eta, v_steps)
    fit = predict.fit_curve("tissue", *trainloss.binned(eta, metrics_steps, train))
    r = trainloss.val_ratio(fit, eta, v_steps, val)
    assert r == pytest.approx(offset, rel=2e-3)
    assert fit.predict(eta, np.array([2000]))[0] * r == pytest.approx(val[-1], rel=0.01)  # the noise: ~0.2-0.5%
    exact = predict.fit_curve("tissue", *trainloss.binned(eta, metrics_steps, clean))  # bins: no visible bias
    assert exact.predict(eta, np.array([2000]))[0] == pytest.approx(val[-1] / offset, rel=2e-4)
    # the offset from the points before a cut only, none before it: a clear error
    assert trainloss.val_ratio(fit, eta, v_steps, val, upto=1000) == pytest.approx(offset, rel=3e-3)
    with pytest.raises(ValueError, match="no validation point"):
        trainloss.val_ratio(fit, eta, v_steps, val, upto=100)


def test_the_level_is_the_mean_training_loss_of_the_window_before_the_cut():
    steps = np.arange(1, 101)
    loss = steps.astype(float)
    assert prior.level(steps, loss, 100, 0.5, window=0.05) == pytest.approx(np.mean([46, 47, 48, 49, 50]))
    with pytest.raises(ValueError, match="frac"):
        prior.level(steps, loss, 100, 0.0)
    with pytest.raises(ValueError, match="window"):
        prior.level(steps, loss, 100, 0.25, window=0.5)
    with pytest.raises(ValueError, match="no training loss"):
        prior.level(steps[:10], loss[:10], 100, 0.5)


def test_the_prior_takes_the_ratios_trend_in_run_length_and_falls_back_to_their_median():
    t = np.array([800, 1600, 3200, 6400])
    r = 0.95 * (t / 1000.0) ** 0.01  # longer runs drop less after a given share
    assert prior.predict_end(4.0, r, 2400, t) == pytest.approx(4.0 * 0.95 * 2.4**0.01, rel=1e-12)
    assert prior.predict_end(4.0, r) == pytest.approx(4.0 * np.median(r))
    # too few runs, or all of one length: the median
    assert prior.predict_end(4.0, r[:2], 2400, t[:2]) == pytest.approx(4.0 * np.median(r[:2]))
    assert prior.predict_end(4.0, r, 2400, [1000] * 4) == pytest.approx(4.0 * np.median(r))
    with pytest.raises(ValueError, match="no finished run"):
        prior.predict_end(4.0, [])
    with pytest.raises(ValueError, match="same length"):
        prior.predict_end(4.0, r, 2400, t[:3])


def test_the_schedule_key_separates_what_changes_the_ratio(tmp_path):
    def key(**train):
        d = tmp_path / str(len(list(tmp_path.iterdir())))
        d.mkdir()
        (d / "config.yaml").write_text(yaml.safe_dump({"train": train}))
        return prior.schedule_key(d)

    assert key(schedule="cosine") == key() == ("cosine", 0.05, 0.1, 16384)
    assert key(schedule="cosine", final_lr_frac=0.0) != key()
    assert key(schedule="wsd") == ("wsd", 0.05, 0.1, 16384, 0.2, "linear") != key(schedule="wsd", cooldown_frac=0.1)


def test_on_a_real_run_the_training_curve_tracks_its_validation_points(tmp_path, default_corpus):
    from scaling.core import records
    from scaling.train.entry import train
    from support import tiny_cfg

    s = train(tiny_cfg(tmp_path, tokens=200 * 256, eval_interval=25))
    run_dir = tmp_path / "t" / s.run_id
    m = records.read_metrics(run_dir)
    eta, steps, loss = trainloss.train_curve(run_dir, n_bins=50)  # 200 updates: bins of 4
    assert len(eta) == s.steps == 200 and steps.tolist() == list(range(2, 200, 4))[:49]
    assert loss[0] == pytest.approx(m["train_loss"].iloc[1:5].mean())
    # under one epoch the training loss is a held-out loss too: the validation points sit within a few percent
    fit = predict.fit_curve("tissue", eta, steps, loss)
    assert trainloss.val_ratio(fit, *sc.subset_curve(run_dir)) == pytest.approx(1.0, abs=0.1)
    # the run's end over its training level at 50%: the sweep prior's ratio
    level = prior.run_level(run_dir, 0.5)
    assert level == pytest.approx(m["train_loss"].iloc[90:100].mean())
    assert prior.end_ratio(run_dir, 0.5) == pytest.approx(s.final_subset_val_loss / level)


def test_the_harness_study_predicts_each_end_from_the_other_runs_ratios_only(tmp_path, default_corpus, capsys):
    from analysis.curves import study
    from scaling.train.entry import train
    from support import tiny_cfg

    for tokens in (160, 240):
        train(tiny_cfg(tmp_path, tokens=tokens * 256, eval_interval=20))
    root = tmp_path / "t"
    runs = study._runs(root)
    a, b = (s["_dir"] for s, _ in runs)
    # leave-one-out: run a's end from run b's ratio alone (one other run: its ratio, no trend)
    errs = study.from_sweep_prior(runs, 0.5)
    want = prior.run_level(a, 0.5) * prior.end_ratio(b, 0.5) / sc.subset_curve(a)[2][-1] - 1.0
    assert errs[0] == pytest.approx(abs(want), rel=1e-12)
    # a held-out pool that holds the run itself still never uses its own ratio
    assert study.from_sweep_prior(runs[:1], 0.5, prior_runs=runs) == [errs[0]]
    assert study.from_sweep_prior(runs[:1], 0.5) == []  # no other run of its schedule
    # the same prediction in one call, for a run and the sweep's finished runs (itself among them: left out)
    end = prior.end_from_runs(a, 0.5, [a, b])
    assert abs(end / sc.subset_curve(a)[2][-1] - 1.0) == pytest.approx(errs[0], rel=1e-12)
    with pytest.raises(ValueError, match="no other run"):
        prior.end_from_runs(a, 0.5, [a])
    study.main(["harness", str(root)])
    out = capsys.readouterr().out
    assert "fitted to the binned training loss" in out and "sweep prior" in out
    assert "tissue (train loss): median end error" in out  # 160 -> 240 steps of one size and batch
