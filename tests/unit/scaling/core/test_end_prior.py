"""The sweep prior's rule (scaling.core.end_prior): its end, its leave-one-out interval, and the pool it reads from
a sweep folder."""

import math

import numpy as np
import pytest

from scaling.core import end_prior


def test_an_exact_power_of_length_is_predicted_exactly_with_a_zero_width_interval():
    lengths = np.array([100, 150, 230, 400, 600])
    ratios = 0.9 * (lengths / 100.0) ** 0.02
    end, lo, hi = end_prior.end_interval(4.0, ratios, 300, lengths)
    assert end == pytest.approx(4.0 * 0.9 * 3.0**0.02, rel=1e-9)
    assert lo == pytest.approx(end, rel=1e-9) and hi == pytest.approx(end, rel=1e-9)
    assert np.allclose(end_prior.loo_log_errors(ratios, lengths), 0.0, atol=1e-12)


def test_the_interval_is_t_times_the_rms_of_the_leave_one_out_errors():
    ratios = [0.95, 0.96, 0.97]  # one length: each left-out run is predicted by the median of the other two
    e = end_prior.loo_log_errors(ratios, [200, 200, 200])
    assert e == pytest.approx([math.log(0.95 / 0.965), math.log(0.96 / 0.96), math.log(0.97 / 0.955)])
    end, lo, hi = end_prior.end_interval(3.0, ratios, 200, [200, 200, 200])
    half = 2.919986 * math.sqrt(np.mean(np.square(e)))  # Student's t, 95th percentile, 2 degrees of freedom
    assert end == pytest.approx(3.0 * 0.96) and lo == pytest.approx(end * math.exp(-half), rel=1e-5)
    assert hi == pytest.approx(end * math.exp(half), rel=1e-5)


def test_too_small_a_pool_and_bad_input_are_refused():
    with pytest.raises(ValueError, match="an interval needs 3"):
        end_prior.end_interval(3.0, [0.95, 0.96], 200, [200, 200])
    with pytest.raises(ValueError, match="no finished run"):
        end_prior.predict_end(3.0, [math.nan, -1.0])
    with pytest.raises(ValueError, match="same length"):
        end_prior.predict_end(3.0, [0.95, 0.96], 200, [200])
    with pytest.raises(ValueError, match="coverage"):
        end_prior.end_interval(3.0, [0.95, 0.96, 0.97], coverage=1.0)


def test_the_level_is_the_mean_training_loss_of_the_window_before_the_cut():
    steps = np.arange(1, 201)
    loss = 5.0 - 0.01 * steps
    assert end_prior.level(steps, loss, 200, 0.5) == pytest.approx(np.mean(loss[90:100]))
    with pytest.raises(ValueError, match="no training loss"):
        end_prior.level(steps[:50], loss[:50], 200, 0.5)


def test_the_schedule_key_separates_what_changes_the_ratio_with_the_schemas_defaults():
    from scaling.config.schema import EARLY_STOP_MIN_FRAC, TrainConfig

    t = TrainConfig()
    assert end_prior.schedule_key({}) == ("cosine", t.warmup_frac, t.final_lr_frac, t.eval_tokens)
    assert end_prior.schedule_key({"schedule": "wsd"}) == (
        "wsd",
        t.warmup_frac,
        t.final_lr_frac,
        t.eval_tokens,
        t.cooldown_frac,
        t.cooldown_shape,
    )
    assert end_prior.schedule_key({"final_lr_frac": 0.0}) != end_prior.schedule_key({})
    assert end_prior.schedule_key({"eval_tokens": 4096}) != end_prior.schedule_key({})  # ends on another subset
    assert EARLY_STOP_MIN_FRAC == end_prior.WINDOW  # the config refuses a look before the prior's window


def test_a_three_run_pool_predicts_and_measures_its_errors_by_one_rule():
    """With 3 runs the trend would be fitted on all 3 but each left-out error taken from the median of 2: the end
    and the interval would come from two rules. Both are the median's."""
    lengths, ratios = [100, 130, 200], [0.95, 0.955, 0.97]
    assert end_prior.predict_ratio(ratios, 400, lengths) != pytest.approx(np.median(ratios))  # the trend, alone
    end, _, _ = end_prior.end_interval(4.0, ratios, 400, lengths)
    assert end == pytest.approx(4.0 * np.median(ratios))
    four = [100, 130, 200, 260], [0.95, 0.955, 0.97, 0.975]  # one more run: the trend in both
    end4, _, _ = end_prior.end_interval(4.0, four[1], 400, four[0])
    assert end4 == pytest.approx(4.0 * end_prior.predict_ratio(four[1], 400, four[0]))


def test_the_cut_of_a_look_at_step_s_is_s_whatever_the_float_rounding():
    steps = np.arange(1, 1001)
    for n in (29, 49, 57, 98, 113, 199, 1000):
        for s in range(2, n):
            loss = np.where(steps == s, 1.0, 0.0)  # only step s itself is 1: a window of one step must hold it
            assert end_prior.level(steps[:n], loss[:n], n, s / n, window=0.5 / n) == 1.0, (s, n)
