"""Closed forms both sides share: the power law, Chinchilla's compute-optimal allocation, the IsoFLOP vertex.

Torch-free and numpy-light: each function computes with whatever it is given (Python floats stay floats, numpy
arrays stay arrays), so the planner (``scaling.sweep``), the learning-rate rule (``scaling.config.lr_rule``) and the
fits (``analysis``) get the same numbers from one expression.

References
- Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (Chinchilla), arXiv:2203.15556, §3.3 eq. 4
  and Appendix D.2: under C = 6ND, L(N, D) = E + A/N^alpha + B/D^beta is lowest at
  N_opt = G (C/6)^a, D_opt = G^-1 (C/6)^b, with G = (alpha A / (beta B))^(1/(alpha+beta)), a = beta/(alpha+beta),
  b = alpha/(alpha+beta).
- Hoffmann et al. 2022 §3.2 (Approach 2): the IsoFLOP minimum as the vertex of a parabola of loss in ln N.
"""

from __future__ import annotations

import math

import numpy as np

# ---------------------------------------------------------------------------------------------------------------
# power laws: y = coef * x^exponent


def power_law(x, coef, exponent):
    """y = coef * x**exponent (x a float or an array; computed in the type given)."""
    return coef * x**exponent


def power_law_inverse(y, coef, exponent):
    """The x at which coef * x**exponent = y: (y / coef)**(1 / exponent)."""
    return (y / coef) ** (1.0 / exponent)


def power_product(coef: float, terms) -> float:
    """coef * prod(x**a for (x, a) in terms): a power law in several variables (a learning-rate rule)."""
    value = coef
    for x, a in terms:
        value *= x**a
    return value


def fit_power_law(x, y) -> tuple[float, float]:
    """(coef, exponent) of y = coef * x^exponent by least squares of ln y on ln x (``numpy.polyfit``, degree 1).
    The caller chooses which points are usable (finite, positive); at least 2 distinct x are needed."""
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(intercept)), float(slope)


# ---------------------------------------------------------------------------------------------------------------
# Chinchilla's compute-optimal allocation (Hoffmann et al. 2022 §3.3 eq. 4, Appendix D.2)


def chinchilla_exponents(alpha, beta) -> tuple[float, float]:
    """(a, b) = (beta/(alpha+beta), alpha/(alpha+beta)): N_opt ∝ C^a, D_opt ∝ C^b (Hoffmann et al. 2022 eq. 4)."""
    return beta / (alpha + beta), alpha / (alpha + beta)


def chinchilla_g(A, B, alpha, beta):
    """G = (alpha A / (beta B))^(1/(alpha+beta)) (Hoffmann et al. 2022 eq. 4, Appendix D.2)."""
    return (alpha * A / (beta * B)) ** (1.0 / (alpha + beta))


def chinchilla_log_g(log_A, log_B, alpha, beta) -> float:
    """ln G from ln A and ln B, finite where A = e^log_A overflows (a degenerate fit)."""
    return (math.log(alpha) + log_A - math.log(beta) - log_B) / (alpha + beta)


def chinchilla_optimum(C, A, B, alpha, beta):
    """(N_opt, D_opt) = (G (C/6)^a, (C/6)^(1-a) / G) under C = 6ND (Hoffmann et al. 2022 eq. 4)."""
    G = chinchilla_g(A, B, alpha, beta)
    a, _ = chinchilla_exponents(alpha, beta)
    return G * (C / 6.0) ** a, (C / 6.0) ** (1.0 - a) / G


def chinchilla_log_optimum(log_c6, log_A, log_B, alpha, beta):
    """(ln N_opt, ln D_opt) = (ln G + a ln(C/6), b ln(C/6) - ln G) from log_c6 = ln(C/6): the same optimum in logs,
    finite where A or B overflow."""
    log_g = chinchilla_log_g(log_A, log_B, alpha, beta)
    a, b = chinchilla_exponents(alpha, beta)
    return log_g + a * log_c6, b * log_c6 - log_g


# ---------------------------------------------------------------------------------------------------------------
# the IsoFLOP minimum: the vertex of a parabola of loss in x = ln N (Hoffmann et al. 2022 §3.2)


def parabola_vertex(x_ref, slope, curvature, loss_ref=None):
    """Vertex (x, loss) of a parabola given at one point x_ref: its slope there and its x^2 coefficient
    ``curvature`` (> 0 for a minimum): x = x_ref - slope / (2 curvature), loss = loss_ref - slope^2/(4 curvature)
    (loss None when loss_ref is None).

    For a least-squares parabola q2 (x - m)^2 + q1 (x - m) + q0 centred on m: x_ref = m, slope = q1, loss_ref = q0.
    For the parabola through three points, the slope at the midpoint of two of them is their secant slope."""
    x = x_ref - slope / (2 * curvature)
    return x, (None if loss_ref is None else loss_ref - slope * slope / (4 * curvature))
