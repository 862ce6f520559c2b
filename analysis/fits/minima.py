"""Estimators of one IsoFLOP budget's minimum of loss against ln N, and a bootstrap of it over the budget's runs.

Approach 2 (Hoffmann et al. 2022 §3.2) needs, per compute budget, the model size N at which the loss is lowest.
Chinchilla fitted one parabola in ln N through every run of a budget. Real IsoFLOP curves are not parabolas: under
L = E + A/N^α + B/D^β with D = C/(6N) the curve in x = ln N is E + A e^(-αx) + B' e^(βx), a sum of two exponentials,
which is asymmetric whenever α ≠ β; a parabola through points sampled off centre then lands off the true minimum,
and by an amount that changes with the budget when the sampling drifts, which biases the exponent a of N_opt ∝ C^a.
The estimators here, by name (``ESTIMATORS``):

- ``"parabola"``: a quadratic through all points (the estimator Approach 2 used before the synthetic study chose
  the spline).
- ``"local_parabola"``: a quadratic through the ``LOCAL_POINTS`` distinct sizes nearest the minimum, re-centred on
  its own vertex until the window stops moving.
- ``"cubic"``: a cubic polynomial in ln N through all points; its one local minimum. The cubic term absorbs the
  curve's skew, the main source of the parabola's bias.
- ``"akima"``: Akima's interpolant of the loss in ln N (Akima 1970, J. ACM 17(4)), minimised on the sampled range.
- ``"spline"``: a cubic smoothing spline whose smoothing is chosen by generalised cross-validation (Craven & Wahba
  1979; ``scipy.interpolate.make_smoothing_spline``), minimised on the sampled range.
- ``"auto"`` (the default): the spline for a budget with at least ``AUTO_SPLINE_SIZES`` distinct sizes, the local
  parabola below that; the result's ``method`` names the one used.

``DEFAULT_ESTIMATOR`` follows the accuracy study in ``analysis/studies/accuracy.py`` (``python -m analysis.studies
estimators``): bias and spread of a over synthetic sweeps with asymmetric curves and off-centre drifting sampling.
With many sizes a budget the spline is the least biased; with few it follows the noise, hence ``"auto"``. The
measured figures are in analysis/README.md ("IsoFLOP minimum estimator" and "Measured").

Edge rule (no budget is ever dropped): a minimum at or beyond the smallest or largest sampled N is returned with
``at_edge=True``. The polynomial estimators extrapolate: ``"parabola"`` and ``"local_parabola"`` return their vertex
wherever it lies (as Chinchilla's parabola did); ``"cubic"``, ``"akima"`` and ``"spline"`` cannot be trusted outside
the data, so their minimum is the lowest point of the fitted curve on the sampled range, which is then an end of it.
A curve with no minimum (a parabola opening downward) falls back to the lowest observed point, curvature NaN. A
budget with too few sizes for the method (cubic 4, spline 5) gets the parabola, named in ``method``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import Akima1DInterpolator, make_smoothing_spline
from scipy.optimize import minimize_scalar

from scaling.core.forms import parabola_vertex

LOCAL_POINTS = 7  # distinct sizes in the local parabola's window
AUTO_SPLINE_SIZES = 9  # "auto": the spline from this many distinct sizes in a budget, the local parabola below
_MIN_DISTINCT = {"parabola": 3, "local_parabola": 3, "cubic": 4, "akima": 3, "spline": 5, "auto": 3}
MIN_BOOT_FRACTION = 0.25  # a within-budget bootstrap with fewer usable resamples than this gives no interval

LOG_FLOAT_MAX = float(np.log(np.finfo(float).max))  # 709.78: a minimum at |ln N| beyond it is 0 or inf in floats


@dataclass(frozen=True)
class IsoflopMinimum:
    """One budget's estimated minimum of loss against ln N."""

    log_n: float  # natural log of N at the estimated minimum
    loss: float  # estimated loss at the minimum
    at_edge: bool  # minimum at or beyond the smallest/largest sampled N (kept, flagged; never dropped)
    method: str
    n_points: int  # points the estimator used
    curvature: float  # second derivative of loss in ln N at the minimum (nan if not defined)

    @property
    def N(self) -> float:
        return math.exp(self.log_n)


ESTIMATORS: tuple[str, ...] = tuple(_MIN_DISTINCT)
DEFAULT_ESTIMATOR: str = "auto"


def resolve(method: str, n_distinct: int) -> str:
    """The estimator ``method`` means for a budget of ``n_distinct`` sizes ("auto" chooses; others are themselves)."""
    if method == "auto":
        return "spline" if n_distinct >= AUTO_SPLINE_SIZES else "local_parabola"
    return method


def _check(log_n, loss, method: str) -> tuple[np.ndarray, np.ndarray]:
    if method not in _MIN_DISTINCT:
        raise ValueError(f"estimate_minimum: method={method!r}; allowed: {', '.join(ESTIMATORS)}")
    x, y = np.asarray(log_n, dtype=float).ravel(), np.asarray(loss, dtype=float).ravel()
    if x.size != y.size:
        raise ValueError(f"estimate_minimum: log_n has {x.size} values and loss {y.size}; they must match")
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        raise ValueError(
            f"estimate_minimum: {int(bad.sum())} non-finite value(s) in log_n or loss, e.g. at index "
            f"{int(np.flatnonzero(bad)[0])}; every value must be finite"
        )
    if np.unique(x).size < 3:
        raise ValueError(f"estimate_minimum: a minimum needs at least 3 distinct N, got {np.unique(x).size}")
    return x, y


def _collapse(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct sizes (sorted), the mean loss at each and how many runs it has (repeated seeds, resamples)."""
    xu, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    return xu, np.bincount(inv, weights=y) / counts, counts


def _at_edge(xo: float, x: np.ndarray) -> bool:
    return bool(xo <= x.min() or xo >= x.max())


def _lowest_point(x, y, method, n) -> IsoflopMinimum:
    xu, yu, _ = _collapse(x, y)
    i = int(np.argmin(yu))
    return IsoflopMinimum(float(xu[i]), float(yu[i]), _at_edge(xu[i], x), method, n, float("nan"))


def _quadratic(x, y, method, x_range) -> IsoflopMinimum:
    """Least-squares parabola; centring on the mean keeps the fit well conditioned
    (as the other polynomial fits here do)."""
    xm = x.mean()
    q2, q1, q0 = np.polyfit(x - xm, y, 2)
    if not q2 > 0:
        return _lowest_point(x, y, method, x.size)
    xo, lo = parabola_vertex(xm, q1, q2, q0)
    return IsoflopMinimum(float(xo), float(lo), _at_edge(xo, x_range), method, int(x.size), float(2 * q2))


def _local_parabola(x, y) -> IsoflopMinimum:
    xu, yu, _ = _collapse(x, y)
    k = min(LOCAL_POINTS, xu.size)
    centre = int(np.argmin(yu))
    start = None
    for _ in range(8):
        new = int(np.clip(centre - k // 2, 0, xu.size - k))
        if new == start:
            break
        start = new
        keep = (x >= xu[start]) & (x <= xu[start + k - 1])
        m = _quadratic(x[keep], y[keep], "local_parabola", x)
        if math.isnan(m.curvature):  # the window's parabola opens downward: no minimum to move towards
            return _lowest_point(x, y, "local_parabola", int(keep.sum()))
        centre = int(np.argmin(np.abs(xu - m.log_n)))
    return m


def _on_range(f, xu: np.ndarray, method: str, n: int, d2=None) -> IsoflopMinimum:
    """Minimum of a fitted curve f on [xu.min(), xu.max()]: a fine grid, then a bounded 1-d search around it."""
    grid = np.linspace(xu[0], xu[-1], 64 * xu.size + 1)
    fg = f(grid)
    i = int(np.argmin(fg))
    if 0 < i < grid.size - 1:
        r = minimize_scalar(f, bounds=(grid[i - 1], grid[i + 1]), method="bounded", options={"xatol": 1e-10})
        xo, lo = (float(r.x), float(r.fun)) if r.fun <= fg[i] else (float(grid[i]), float(fg[i]))
        curv = float(d2(xo)) if d2 is not None else float("nan")
        return IsoflopMinimum(xo, lo, _at_edge(xo, xu), method, n, curv)
    return IsoflopMinimum(float(grid[i]), float(fg[i]), True, method, n, float("nan"))


def _cubic(x, y) -> IsoflopMinimum:
    xm = x.mean()
    c = np.polyfit(x - xm, y, 3)
    p, d2 = np.poly1d(c), np.poly1d(c).deriv(2)
    xu = np.unique(x)
    m = _on_range(lambda t: p(t - xm), xu, "cubic", int(x.size), lambda t: d2(t - xm))
    return m


def _akima(x, y) -> IsoflopMinimum:
    xu, yu, _ = _collapse(x, y)
    f = Akima1DInterpolator(xu, yu)
    return _on_range(f, xu, "akima", int(x.size), lambda t: f(t, 2))


def _spline(x, y) -> IsoflopMinimum:
    xu, yu, counts = _collapse(x, y)
    f = make_smoothing_spline(xu, yu, w=counts.astype(float))
    return _on_range(f, xu, "spline", int(x.size), lambda t: f(t, 2))


def estimate_minimum(log_n: np.ndarray, loss: np.ndarray, method: str = DEFAULT_ESTIMATOR) -> IsoflopMinimum:
    """The minimum of one budget's loss against ``log_n`` (natural log of N) by ``method`` (one of ``ESTIMATORS``).

    Runs with the same N (repeated seeds) are all used: least squares weighs each run, the interpolants go through
    the mean loss at each N. A budget with fewer distinct N than the method needs (cubic 4, spline 5) gets the
    parabola instead, and the result's ``method`` says so, so that no budget is lost. Raises ValueError when the
    arrays differ in length, hold a non-finite value, or have fewer than 3 distinct N.
    """
    x, y = _check(log_n, loss, method)
    method = resolve(method, np.unique(x).size)
    if np.unique(x).size < _MIN_DISTINCT[method]:
        method = "parabola"  # too few sizes for the method: the parabola, recorded in .method, rather than nothing
    if method == "parabola":
        return _quadratic(x, y, "parabola", x)
    if method == "local_parabola":
        return _local_parabola(x, y)
    if method == "cubic":
        return _cubic(x, y)
    if method == "akima":
        return _akima(x, y)
    return _spline(x, y)


def lowest_run(method: str, curvature: float) -> bool:
    """Whether a minimum is the budget's lowest run because the polynomial estimator's curve opened downward
    (``_lowest_point``): no fitted curve passes through it, so none should be drawn or read as its curvature."""
    return method in ("parabola", "local_parabola") and not math.isfinite(curvature)


def estimator_curve(log_n: np.ndarray, loss: np.ndarray, method: str = DEFAULT_ESTIMATOR):
    """(the curve of loss against ln N that ``method`` minimises, as a function of ln N; the method actually used).
    Defined on the sampled range for the interpolants; the polynomials extend beyond it. The local parabola's curve
    is its final window's quadratic. Falls back to the parabola on too few sizes, as ``estimate_minimum`` does."""
    x, y = _check(log_n, loss, method)
    method = resolve(method, np.unique(x).size)
    if np.unique(x).size < _MIN_DISTINCT[method]:
        method = "parabola"
    if method == "parabola":
        return np.poly1d(np.polyfit(x, y, 2)), method
    if method == "cubic":
        return np.poly1d(np.polyfit(x, y, 3)), method
    xu, yu, counts = _collapse(x, y)
    if method == "akima":
        return Akima1DInterpolator(xu, yu), method
    if method == "spline":
        return make_smoothing_spline(xu, yu, w=counts.astype(float)), method
    m = _local_parabola(x, y)  # local parabola: the window nearest its vertex
    order = np.argsort(np.abs(xu - m.log_n))[:LOCAL_POINTS]
    return np.poly1d(np.polyfit(xu[order], yu[order], 2, w=np.sqrt(counts[order]))), method


@dataclass(frozen=True)
class MinimumInterval:
    """A within-budget bootstrap of one budget's minimum: ``estimate`` on all runs, the ``level`` percentile
    interval [lo, hi] of log_n over resamples of the budget's runs, and every resample's log_n (NaN where it had
    too few distinct N for the method)."""

    estimate: IsoflopMinimum
    lo: float
    hi: float
    level: float
    n_resamples: int
    n_failed: int
    samples: np.ndarray

    @property
    def N_interval(self) -> tuple[float, float]:
        return math.exp(self.lo), math.exp(self.hi)


def bootstrap_minimum(
    log_n: np.ndarray,
    loss: np.ndarray,
    method: str = DEFAULT_ESTIMATOR,
    *,
    n_resamples: int = 200,
    level: float = 0.9,
    seed: int = 0,
) -> MinimumInterval:
    """Percentile bootstrap of one budget's minimum: resample the budget's runs with replacement (each resample
    keeps the run count), re-estimate by ``method``, and report the ``level`` interval of log_n. Resamples with
    fewer distinct N than the method needs (rather than a fallback to the parabola, which would mix estimators)
    count as failed (NaN) and are left out of the interval; with fewer than ``MIN_BOOT_FRACTION`` of them usable
    the interval is NaN (a budget with one run per size and a method that needs every size would otherwise keep
    only the permutations of its runs, all giving the same minimum: an interval of zero width that means nothing).
    "auto" resolves once, on the budget's own sizes, so every resample uses the same estimator."""
    if not (isinstance(n_resamples, int) and n_resamples >= 2):
        raise ValueError(f"bootstrap_minimum: n_resamples={n_resamples!r}; must be an integer >= 2")
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_minimum: level={level!r}; must be in (0, 1)")
    x, y = _check(log_n, loss, method)
    method = resolve(method, np.unique(x).size)
    est = estimate_minimum(x, y, method)
    rng = np.random.default_rng(seed)
    need = _MIN_DISTINCT[method]
    samples = np.full(n_resamples, np.nan)
    for r in range(n_resamples):
        idx = rng.integers(0, x.size, x.size)
        if np.unique(x[idx]).size >= need:
            samples[r] = estimate_minimum(x[idx], y[idx], method).log_n
    ok = samples[np.isfinite(samples)]
    enough = ok.size >= max(2, MIN_BOOT_FRACTION * n_resamples)
    lo, hi = np.quantile(ok, [(1 - level) / 2, (1 + level) / 2]) if enough else (np.nan, np.nan)
    return MinimumInterval(est, float(lo), float(hi), level, n_resamples, int(n_resamples - ok.size), samples)
