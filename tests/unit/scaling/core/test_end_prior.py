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


def test_the_schedule_key_separates_what_changes_the_ratio():
    assert end_prior.schedule_key({}) == ("cosine", 0.05, 0.1)
    assert end_prior.schedule_key({"schedule": "wsd"}) == ("wsd", 0.05, 0.1, 0.2, "linear")
    assert end_prior.schedule_key({"final_lr_frac": 0.0}) != end_prior.schedule_key({})
