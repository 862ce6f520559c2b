"""The per-run loss-curve laws (issue 18): exact recovery on synthetic curves, transfer between schedules, the
end-point interval, a real tiny run's curve and logged rates, and the published curves of Luo et al. 2025."""

import numpy as np
import pytest

from analysis.curves import areas, predict, published
from analysis.curves import schedule as sc
from analysis.curves.multipower import MultiPowerFit, fit_multipower
from analysis.curves.tissue import TissueFit, fit_tissue

TISSUE = TissueFit(L0=3.0, A=0.8, alpha=0.5, C=0.4, decay=0.999, rmse_rel=0.0, n_points=0)
MPL = MultiPowerFit(L0=3.0, A=0.8, alpha=0.5, B=300.0, C=2.0, beta=0.6, gamma=0.6, rmse_rel=0.0, n_points=0)


def test_the_areas_are_the_papers_sums_on_a_hand_checked_schedule():
    eta = np.array([1.0, 2.0, 2.0, 1.0, 0.5])  # peak at update 2; decreases 1.0 at update 4, 0.5 at 5
    assert areas.forward_area(eta, np.array([1, 3, 5])).tolist() == [1.0, 5.0, 6.5]
    # m_4 = 1.0, m_5 = 0.5·1.0 + 0.5 = 1.0 with lambda = 0.5: S2(5) = 2.0; warmup's increase is no annealing
    assert areas.annealing_area(eta, np.array([3, 4, 5]), decay=0.5).tolist() == [0.0, 1.0, 2.0]


def test_tissue_recovers_its_parameters_from_an_exact_wsd_curve():
    eta = sc.wsd(3e-3, 1000, 800)
    steps = np.arange(60, 1001, 10)
    fit = fit_tissue(eta, steps, TISSUE.predict(eta, steps))
    for k, v in TISSUE.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-5), k


def test_multipower_recovers_its_parameters_from_an_exact_wsd_curve():
    eta = sc.wsd(3e-3, 1000, 800)
    steps = np.arange(60, 1001, 10)
    fit = fit_multipower((eta, steps, MPL.predict(eta, steps)))
    for k, v in MPL.params.items():
        assert fit.params[k] == pytest.approx(v, rel=1e-4), k


@pytest.mark.parametrize("law", predict.LAWS)
def test_a_fit_on_half_a_run_predicts_its_end_and_another_schedule(law):
    truth = TISSUE if law == "tissue" else MPL
    eta = sc.cosine(3e-3, 1000)
    steps = np.arange(20, 1001, 20)
    loss = truth.predict(eta, steps)
    # (a) the end of the run from its first half: a cosine run anneals from the start, so the half shows the law's
    # annealing term (the first half of a WSD run, at constant rate, cannot: its C needs other curves)
    assert predict.final_from_prefix(law, eta, steps, loss, 0.5) == pytest.approx(loss[-1], rel=1e-3)
    # (b) the whole run fitted, a cosine run of twice the steps and a WSD run predicted
    fit = predict.fit_curve(law, eta, steps, loss)
    longer = sc.cosine(3e-3, 2000)
    assert predict.transfer(fit, longer)[0] == pytest.approx(truth.predict(longer, np.array([2000]))[0], rel=1e-3)
    other = sc.wsd(3e-3, 1000, 700)
    assert predict.transfer(fit, other)[0] == pytest.approx(truth.predict(other, np.array([1000]))[0], rel=1e-3)


def test_the_smoothed_end_point_of_a_noisy_curve_has_an_interval_around_the_truth():
    eta = sc.cosine(3e-3, 1000)
    steps = np.arange(10, 1001, 10)
    clean = TISSUE.predict(eta, steps)
    noisy = clean * (1 + 0.01 * np.random.default_rng(1).standard_normal(len(steps)))
    point, lo, hi = predict.smoothed_end("tissue", eta, steps, noisy, n_boot=60)
    assert lo < clean[-1] < hi and lo < point < hi
    assert hi - lo < 0.03 * clean[-1]  # steadier than one noisy point (its own 90% band is ±1.6%)


def test_bad_input_names_the_field_and_range():
    eta = sc.cosine(3e-3, 100)
    with pytest.raises(ValueError, match="law="):
        predict.fit_curve("chinchilla", eta, np.arange(10, 101), np.ones(91))
    with pytest.raises(ValueError, match="frac="):
        predict.final_from_prefix("tissue", eta, np.arange(10, 101), np.ones(91), 1.5)
    with pytest.raises(ValueError, match=r"steps: must lie in \[1, 100\]"):
        areas.forward_area(eta, np.array([0, 5]))
    with pytest.raises(ValueError, match="cooldown_start="):
        sc.wsd(3e-3, 100, 100)


def test_a_real_runs_logged_rates_are_every_step_and_its_config_rebuilds_them(tmp_path, default_corpus):
    from scaling.core import records
    from scaling.train.entry import train
    from support import tiny_cfg

    cfg = tiny_cfg(tmp_path, tokens=60 * 256, schedule="wsd", cooldown_frac=0.3, eval_interval=2)
    s = train(cfg)
    run_dir = tmp_path / "t" / s.run_id
    m = records.read_metrics(run_dir)
    assert m["step"].tolist() == list(range(1, s.steps + 1)) and m["lr"].notna().all()
    logged = sc.run_rates(run_dir)
    rebuilt = sc.run_rates(run_dir, m.drop(columns=["lr"]))  # an older run without the column
    assert np.allclose(logged, rebuilt, rtol=1e-12)
    # one measure on the whole curve: the final step logs the subset's loss beside the whole split's
    eta, steps, loss = sc.subset_curve(run_dir)
    whole = sc.run_curve(run_dir)[2]
    assert steps[-1] == s.steps and loss[-1] == m["subset_val_loss"].iloc[-1] == s.final_subset_val_loss
    assert np.array_equal(loss[:-1], whole[:-1]) and loss[-1] != whole[-1]
    assert sc.final_offset(run_dir) == pytest.approx(s.final_val_loss - s.final_subset_val_loss)
    # the law describes the real curve after warmup to a few percent, and its end from three quarters of it
    fit = predict.fit_curve("tissue", eta, steps, loss)
    assert fit.rmse_rel < 0.03
    pred = predict.final_from_prefix("tissue", eta, steps, loss, 0.75)
    assert pred == pytest.approx(loss[-1], rel=0.05)
    # an older run without the column still loads; its final point (another measure) is left out of the curve
    m.drop(columns=["subset_val_loss"]).to_parquet(run_dir / records.METRICS_FILE, index=False)
    assert records.read_metrics(run_dir)["subset_val_loss"].isna().all()
    assert np.array_equal(sc.subset_curve(run_dir)[1], steps[:-1])


@pytest.mark.skipif(not published.FIXTURE.exists(), reason="published curves fixture absent")
def test_on_published_curves_a_fit_on_three_schedules_predicts_six_others_near_the_authors_error():
    from analysis.curves.tissue import fit_tissue_curves

    data = published.load()
    fit = fit_tissue_curves([data[("25M", c)] for c in published.TRAIN])
    errs = []
    for c in published.TEST:
        eta, steps, loss = data[("25M", c)]
        errs.append(np.mean(np.abs(fit.predict(eta, steps) / loss - 1)))
    assert np.mean(errs) < 1.5 * published.AUTHORS_TEST_PREDE["25M"]


@pytest.mark.parametrize("law", predict.LAWS)
def test_a_huber_fit_on_log_residuals_recovers_an_exact_curve_and_shrugs_off_a_few_wild_points(law):
    truth = TISSUE if law == "tissue" else MPL
    eta = sc.cosine(3e-3, 1000)
    steps = np.arange(20, 1001, 20)
    loss = truth.predict(eta, steps)
    end = float(loss[-1])
    assert predict.final_from_prefix(law, eta, steps, loss, 0.6, huber=1e-3) == pytest.approx(end, rel=1e-3)
    wild = loss.copy()
    wild[[5, 12, 20]] *= 1.08  # three evaluations 8% high (a noisy subset, a hiccup)
    ls = abs(predict.final_from_prefix(law, eta, steps, wild, 0.6) / end - 1)
    hub = abs(predict.final_from_prefix(law, eta, steps, wild, 0.6, huber=1e-3) / end - 1)
    assert hub < 0.002 and hub < ls / 3
    with pytest.raises(ValueError, match="must be > 0"):
        predict.fit_curve(law, eta, steps, loss, huber=0.0)
