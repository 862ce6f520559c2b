"""The shared closed forms (scaling/core/forms.py), each checked against a value worked by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scaling.core import forms


def test_power_law_and_its_inverse_are_exact_on_a_hand_value():
    assert forms.power_law(4.0, 3.0, 0.5) == 6.0
    assert forms.power_law_inverse(6.0, 3.0, 0.5) == pytest.approx(4.0, rel=1e-15)


def test_power_product_multiplies_each_variable_in_turn():
    assert forms.power_product(2.0, [(4.0, 0.5), (8.0, 1 / 3)]) == pytest.approx(8.0, rel=1e-15)
    assert forms.power_product(2.0, []) == 2.0


def test_fit_power_law_recovers_an_exact_law():
    x = np.array([1e3, 1e4, 1e5])
    coef, exponent = forms.fit_power_law(x, 0.5 * x**0.7)
    assert coef == pytest.approx(0.5, rel=1e-9) and exponent == pytest.approx(0.7, rel=1e-12)


def test_chinchilla_closed_form_matches_hoffmann_eq4_by_hand():
    # Hoffmann et al. 2022 Approach 3: A 406.4, B 410.7, alpha 0.34, beta 0.28
    a, b = forms.chinchilla_exponents(0.34, 0.28)
    assert (a, b) == pytest.approx((0.28 / 0.62, 0.34 / 0.62))
    G = forms.chinchilla_g(406.4, 410.7, 0.34, 0.28)
    assert G == pytest.approx((0.34 * 406.4 / (0.28 * 410.7)) ** (1 / 0.62))
    N, D = forms.chinchilla_optimum(6e21, 406.4, 410.7, 0.34, 0.28)
    assert N * D == pytest.approx(1e21)  # C = 6ND
    logN, logD = forms.chinchilla_log_optimum(math.log(1e21), math.log(406.4), math.log(410.7), 0.34, 0.28)
    assert (math.exp(logN), math.exp(logD)) == pytest.approx((N, D), rel=1e-12)


def test_parabola_vertex_of_a_known_parabola():
    # 2 (x - 1)^2 + 3 written at x_ref = 0: slope -4, curvature 2, value 5
    assert forms.parabola_vertex(0.0, -4.0, 2.0, 5.0) == (1.0, 3.0)
    assert forms.parabola_vertex(0.0, -4.0, 2.0) == (1.0, None)
