"""Chinchilla's Approach 3: the parametric law L(N, D) = E + A/N^alpha + B/D^beta fitted to every run
(Hoffmann et al. 2022 §3.3, Appendix D.2), optionally with E fixed by the user.

Fitted as Hoffmann et al. and Epoch AI did (Besiroglu et al. 2024, arXiv:2404.10102): Huber loss (delta 1e-3) on
LSE(a - alpha log N, b - beta log D, e) - log L, summed (not averaged: averaging stops L-BFGS early), L-BFGS from
a grid of starts, best kept. The result's ``law`` is an ``analysis.laws.forms.ParametricLaw``; ``refit_resamples``
refits bootstrap resamples all at once (``analysis.uncertainty.resampling.bootstrap`` asks the result for it).
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.data.columns import FitError, conventions, take, unique_index
from analysis.fits.lbfgs import FIRST, FTOL, GTOL, REFINE, STOP_MESSAGES, lbfgs_batch
from analysis.laws.forms import Allocation, ParametricLaw
from analysis.laws.protocol import Parameter
from analysis.numbers import short

# Parameter order of a start: the arguments of the LSE below.
GRID_COLUMNS = ("e", "a", "b", "alpha", "beta")
BOOTSTRAP_CHECK = 0.1  # share of bootstrap resamples also refitted from the whole grid (fit_approach3_resamples)
MIN_CHECKED = 20  # ... and at least this many
CHECK_RTOL = 1e-9  # a grid optimum lower than init's by more than this (relative) sends every resample to the grid


def approach3_grid(kind: str = "full") -> np.ndarray:
    """Starting points (rows of GRID_COLUMNS) for the Approach 3 fit.

    "full" is Hoffmann et al.'s grid (Appendix D.2), also used by Besiroglu et al.: alpha, beta in {0, 0.5, ..., 2},
    e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}: 5*5*5*6*6 = 4,500 starts. "small" (32 starts) is for
    refits that also start from a known optimum, such as bootstrap resamples.
    """
    if kind == "full":
        e, ab, ex = np.arange(-1.0, 1.01, 0.5), np.arange(0.0, 25.1, 5.0), np.arange(0.0, 2.01, 0.5)
    elif kind == "small":
        e, ab, ex = np.array([-0.5, 0.5]), np.array([5.0, 15.0]), np.array([0.5, 1.0])
    else:
        raise FitError(f"approach3_grid: kind={kind!r}; allowed: 'full', 'small' (or pass an array as grid=)")
    return np.array([(ei, ai, bi, al, be) for ei, ai, bi, al, be in itertools.product(e, ab, ab, ex, ex)])


def approach3_objective(
    theta: np.ndarray,
    logN: np.ndarray,
    logD: np.ndarray,
    logL: np.ndarray,
    delta: float = 1e-3,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Summed Huber loss and its gradient for S parameter vectors at once.

    theta is (S, 5) in GRID_COLUMNS order; for each row the objective is
    sum_i w_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) (Hoffmann et al. 2022 eq. 3),
    summed rather than averaged (Besiroglu et al. 2024 §2). ``weights`` (S, n), default 1, are how often each point
    occurs (a bootstrap resample). Returns f (S,) and grad (S, 5).
    """
    with np.errstate(over="ignore", invalid="ignore"):  # wild line-search trials give inf/nan f, which are rejected
        return _approach3_objective(np.atleast_2d(theta), logN, logD, logL, delta, weights)


def _approach3_objective(theta, logN, logD, logL, delta, weights):
    e, a, b, al, be = theta.T
    # Shift each row by the largest of its LSE arguments over the data. The largest of a - alpha*logN sits at an
    # end of the logN range, so the shift costs nothing per point and the exponentials cannot overflow.
    lnr, ldr = (logN.min(), logN.max()), (logD.min(), logD.max())
    m = np.maximum(np.maximum(a - np.minimum(al * lnr[0], al * lnr[1]), b - np.minimum(be * ldr[0], be * ldr[1])), e)
    e1 = np.multiply.outer(-al, logN)
    e1 += (a - m)[:, None]
    np.exp(e1, out=e1)
    e2 = np.multiply.outer(-be, logD)
    e2 += (b - m)[:, None]
    np.exp(e2, out=e2)
    e3 = np.exp(e - m)
    s = e1 + e2
    s += e3[:, None]
    np.maximum(s, 1e-300, out=s)  # only far outside any sensible region can every term underflow
    r = np.log(s)
    r += m[:, None] - logL
    c = np.clip(r, -delta, delta)  # Huber'(r)
    if weights is None:
        f = np.einsum("ij,ij->i", c, r) - 0.5 * np.einsum("ij,ij->i", c, c)  # Huber(r) = c (r - c/2)
    else:
        r -= 0.5 * c
        r *= c
        f = np.einsum("ij,ij->i", r, weights)
        c *= weights
    c /= s
    e1 *= c
    e2 *= c
    g = np.empty_like(theta, dtype=float)
    g[:, 0] = e3 * c.sum(1)
    g[:, 1] = e1.sum(1)
    g[:, 2] = e2.sum(1)
    g[:, 3] = -(e1 @ logN)
    g[:, 4] = -(e2 @ logD)
    return f, g


@dataclass(frozen=True)
class Approach3Result:
    """Approach 3: ``law``, L(N, D) = E + A/N^alpha + B/D^beta, with how it was fitted; ``huber_loss`` is the
    summed objective at the optimum. E, A, B, alpha, beta, a, b and G are the law's."""

    law: ParametricLaw
    huber_loss: float
    n_starts: int
    converged: bool
    n_points: int = 0
    delta: float = 1e-3
    message: str = ""
    n_iter: int = 0
    data: pd.DataFrame = field(default=None, repr=False, compare=False)
    columns: tuple[str, str, str] = ("N", "D", "loss")
    theta: tuple = field(default=(), repr=False, compare=False)  # (log E, log A, log B, alpha, beta) as fitted
    degenerate: bool = False  # an exponent outside [0.02, 3], or E, A or B out of floating range
    fixed_E: float | None = None  # E as fixed by the user (not fitted), or None
    resample_group: str | None = None

    E = property(lambda self: self.law.E)
    A = property(lambda self: self.law.A)
    B = property(lambda self: self.law.B)
    alpha = property(lambda self: self.law.alpha)
    beta = property(lambda self: self.law.beta)
    a = property(lambda self: self.law.a)
    b = property(lambda self: self.law.b)
    G = property(lambda self: self.law.G)
    flops_convention = property(lambda self: self.law.flops_convention)
    params_convention = property(lambda self: self.law.params_convention)

    @property
    def params(self) -> tuple[float, float, float, float, float]:
        return self.law.params

    @property
    def log_params(self) -> tuple[float, float, float, float, float]:
        """(log E, log A, log B, alpha, beta): the fitted coordinates, finite where A or B overflow."""
        if self.theta:
            e, la, lb, al, be = (float(v) for v in self.theta)
            return (e, la, lb, al, be)
        with np.errstate(divide="ignore"):
            return (float(np.log(self.E)), float(np.log(self.A)), float(np.log(self.B)), self.alpha, self.beta)

    def predict(self, N, D):
        """The loss L(N, D) (log-space, so finite where A or B overflow in a degenerate fit)."""
        return self.law.predict(N, D)

    def compute_optimal(self, C) -> Allocation:
        """Closed form under C = 6ND (Hoffmann et al. 2022 eq. 4). With another FLOP convention, C here is still
        6ND: pass 6 * N * D of the allocation you want, not that convention's FLOPs."""
        return self.law.compute_optimal(C)

    def residuals(self) -> pd.DataFrame:
        """The fitted data with the prediction and the log residual log L - log L_hat of each row."""
        n, d, y = self.columns
        out = self.data.copy()
        out["loss_pred"] = self.predict(out[n].to_numpy(float), out[d].to_numpy(float))
        out["resid_log"] = np.log(out[y].to_numpy(float)) - np.log(out["loss_pred"].to_numpy(float))
        return out

    def warm_start(self) -> dict[str, Any]:
        """Keyword arguments that refit resampled data from this optimum plus the small grid (used by bootstrap)."""
        return {"init": self, "grid": "small"}

    def refit_resamples(
        self, runs: pd.DataFrame, resamples: list[np.ndarray], *, n_threads: int | None = None
    ) -> list["Approach3Result"]:
        """This fit (same columns, delta and fixed E) repeated on every resample of ``runs`` (arrays of row
        positions) in one batched L-BFGS, each started from this optimum, the small grid checked on a share of them
        (``check``: ``fit_approach3_resamples``). ``bootstrap`` asks a result for this method instead of refitting
        resamples one by one."""
        n, d, y = self.columns
        return fit_approach3_resamples(
            runs,
            resamples,
            n_col=n,
            d_col=d,
            loss_col=y,
            delta=self.delta,
            grid="small",
            init=self,
            E=self.fixed_E,
            n_threads=n_threads,
            check=BOOTSTRAP_CHECK,
        )

    def default_quantities(self, budget: float | None = None) -> dict[str, float]:
        q = {"E": self.E, "A": self.A, "B": self.B, "alpha": self.alpha, "beta": self.beta, "a": self.a, "b": self.b}
        if budget is not None:
            al = self.compute_optimal(budget)
            q.update(N_opt=al.N_opt, D_opt=al.D_opt, tokens_per_param=al.tokens_per_param, loss=al.loss)
        return q

    def parameters(self) -> list[Parameter]:
        return [
            Parameter("E (irreducible loss)", self.E, "E", "loss"),
            Parameter("A", self.A, "A", "g"),
            Parameter("B", self.B, "B", "g"),
            Parameter("α", self.alpha, "alpha", "exp"),
            Parameter("β", self.beta, "beta", "exp"),
            Parameter("a = β/(α+β)", self.a, "a", "exp"),
            Parameter("b = α/(α+β)", self.b, "b", "exp"),
        ]

    def fit_summary(self) -> dict[str, Any]:
        out = {
            "converged": self.converged,
            "n_starts": self.n_starts,
            "huber_loss": self.huber_loss,
            "n_points": self.n_points,
        }
        if self.fixed_E is not None:
            out["fixed_E"] = self.fixed_E
        return out

    def __repr__(self) -> str:
        return (
            f"Approach3Result(E={short(self.E)}, A={short(self.A)}, B={short(self.B)}, alpha={self.alpha:.4f}, "
            f"beta={self.beta:.4f} | a={self.a:.4f}, b={self.b:.4f}, G={short(self.G)} | "
            f"huber={self.huber_loss:.4g} over {self.n_points} points, best of {self.n_starts} starts, "
            f"{'converged' if self.converged else 'NOT converged: ' + self.message}"
            f"{', DEGENERATE (the data do not pin every term)' if self.degenerate else ''}"
            f"{'' if self.fixed_E is None else ', E fixed by the user'} | "
            f"flops={self.flops_convention}, params={self.params_convention})"
        )


def _init_row(init) -> np.ndarray:
    if isinstance(init, Approach3Result):
        row = np.asarray(init.log_params, dtype=float)
        if not np.all(np.isfinite(row)):
            raise FitError(f"fit_approach3: init={init!r} has non-finite log parameters {row.tolist()}")
        return row
    if isinstance(init, dict):
        missing = [k for k in ("E", "A", "B", "alpha", "beta") if k not in init]
        if missing:
            raise FitError(f"fit_approach3: init is missing {missing}; give E, A, B, alpha, beta")
        init = (init["E"], init["A"], init["B"], init["alpha"], init["beta"])
    v = np.asarray(init, dtype=float).ravel()
    if v.size != 5 or not np.all(np.isfinite(v)) or np.any(v[:3] <= 0):
        raise FitError(f"fit_approach3: init={init!r}; expected (E, A, B, alpha, beta) with E, A, B > 0")
    return np.array([np.log(v[0]), np.log(v[1]), np.log(v[2]), v[3], v[4]])


def _approach3_starts(fn: str, grid, init) -> np.ndarray:
    if isinstance(grid, str):
        starts = approach3_grid(grid)
    elif isinstance(grid, pd.DataFrame):
        starts = grid[list(GRID_COLUMNS)].to_numpy(dtype=float)
    else:
        starts = np.asarray(grid, dtype=float)
    if starts.ndim != 2 or starts.shape[1] != 5 or not np.all(np.isfinite(starts)):
        raise FitError(
            f"{fn}: grid has shape {starts.shape}; expected finite (S, 5) starts in order "
            f"{GRID_COLUMNS}, or 'full' / 'small'"
        )
    if init is not None:
        starts = np.vstack([_init_row(init)[None, :], starts])
    return starts


def _log_fixed_e(E, fn: str) -> float | None:
    """log E of an irreducible loss fixed by the user, checked; None when E is fitted."""
    if E is None:
        return None
    if not (isinstance(E, (int, float)) and math.isfinite(E) and E > 0):
        raise FitError(
            f"{fn}: E={E!r}; must be a finite number > 0 (the irreducible loss in nats/token), or None to fit it"
        )
    return math.log(E)


def _free_starts(starts: np.ndarray, e: float | None) -> np.ndarray:
    """Starts in the coordinates L-BFGS moves: all five, or (a, b, alpha, beta) when e is fixed (duplicates dropped,
    the order kept: init stays first)."""
    if e is None:
        return starts
    _, first = np.unique(starts[:, 1:], axis=0, return_index=True)
    return starts[np.sort(first), 1:]


def _with_e(x: np.ndarray, e: float | None) -> np.ndarray:
    """Points back in GRID_COLUMNS order (the fixed e put back in front)."""
    return x if e is None else np.column_stack([np.full(len(x), e), x])


def _restrict(fun_grad, e: float | None):
    """The objective over the free coordinates: with e fixed, its gradient drops the e component."""
    if e is None:
        return fun_grad

    def fg(X, rows=None):
        f, g = fun_grad(_with_e(X, e), rows)
        return f, g[:, 1:]

    return fg


def _approach3_data(runs, fn, n_col, d_col, loss_col, delta):
    if not (isinstance(delta, (int, float)) and delta > 0):
        raise FitError(f"{fn}: delta={delta!r}; must be a number > 0")
    t = take(runs, fn, positive=("N", "D", "loss"), min_rows=5, N=n_col, D=d_col, loss=loss_col)
    return t, tuple(np.log(t[k].to_numpy()) for k in ("N", "D", "loss"))


def _approach3_result(
    theta, fval, converged, message, n_iter, n_starts, n_points, delta, runs, data, columns, fn, fixed_E=None
) -> Approach3Result:
    e, la, lb, alpha, beta = (float(v) for v in theta)
    with np.errstate(over="ignore", under="ignore"):
        E = float(np.exp(e))
    fc, pc = conventions(runs)
    law = ParametricLaw.from_logs(
        "approach3" + ("" if fixed_E is None else f"_E{fixed_E:g}"),
        E,
        la,
        lb,
        alpha,
        beta,
        source="fitted to this sweep",
        flops_convention=fc,
        params_convention=pc,
    )
    A, B = law.A, law.B
    degenerate = not (0.02 <= alpha <= 3 and 0.02 <= beta <= 3 and all(0 < v < np.inf for v in (E, A, B)))
    if degenerate and data is not None:  # (resample refits stay quiet: bootstrap counts them through the values)
        warnings.warn(
            f"{fn}: degenerate fit: E={E:.3g}, A={A:.3g}, B={B:.3g}, alpha={alpha:.3g}, beta={beta:.3g} "
            f"(log A={la:.3g}, log B={lb:.3g}); an exponent outside [0.02, 3] (a term that is constant or a "
            f"step over the data) or a coefficient out of floating range means the data do not constrain "
            f"that term (too few sizes or token counts, or too narrow a range)"
        )
    return Approach3Result(
        law=law,
        huber_loss=float(fval),
        n_starts=n_starts,
        converged=bool(converged),
        n_points=n_points,
        delta=float(delta),
        message=message,
        n_iter=int(n_iter),
        data=data,
        columns=columns,
        theta=(e, la, lb, alpha, beta),
        degenerate=degenerate,
        fixed_E=None if fixed_E is None else float(fixed_E),
    )


def fit_approach3(
    runs: pd.DataFrame,
    *,
    n_col: str = "N",
    d_col: str = "D",
    loss_col: str = "loss",
    delta: float = 1e-3,
    grid: str | np.ndarray = "full",
    init=None,
    n_polish: int = 3,
    n_threads: int | None = None,
    E: float | None = None,
) -> Approach3Result:
    """Chinchilla Approach 3 (Hoffmann et al. 2022 §3.3, Appendix D.2): fit L(N, D) = E + A/N^alpha + B/D^beta.

    Minimises sum_i Huber_delta(LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i) with A = e^a, B = e^b,
    E = e^e, by L-BFGS from every start of ``grid`` ("full": the paper's 4,500; "small": 32; or an (S, 5) array in
    GRID_COLUMNS order) plus ``init`` ((E, A, B, alpha, beta), a dict of those, or an Approach3Result), all starts
    at once on a vectorised objective with its analytic gradient (``lbfgs_batch``, stop tests as scipy's L-BFGS-B).
    The ``n_polish`` best distinct optima are then run on with a relative stop test (with the default absolute one,
    a summed Huber loss of ~1e-4 stops up to a few % above its minimum), and the best is kept; ``converged`` says
    whether that last run met its stop test. Large grids are split over ``n_threads`` threads (default: up to 2;
    numpy releases the GIL).

    ``E``: the irreducible loss, fixed instead of fitted (e.g. the entropy rate of a synthetic source, or a value
    the user trusts from a larger sweep); the other four parameters are fitted from the grid's distinct
    (a, b, alpha, beta) starts. The result records it as ``fixed_E``.
    """
    fn = "fit_approach3"
    runs = unique_index(runs)
    e_fixed = _log_fixed_e(E, fn)
    t, (logN, logD, logL) = _approach3_data(runs, fn, n_col, d_col, loss_col, delta)
    starts = _free_starts(_approach3_starts(fn, grid, init), e_fixed)

    fun_grad = _restrict(lambda X, rows=None: approach3_objective(X, logN, logD, logL, delta), e_fixed)

    n_threads = n_threads or min(2, os.cpu_count() or 1)
    chunks = np.array_split(starts, n_threads) if (n_threads > 1 and len(starts) >= 1000) else [starts]
    if len(chunks) > 1:
        with ThreadPoolExecutor(len(chunks)) as ex:
            parts = list(ex.map(lambda c: lbfgs_batch(fun_grad, c, **FIRST), chunks))
        x, f, status, nit = (np.concatenate(z) for z in zip(*parts))
    else:
        x, f, status, nit = lbfgs_batch(fun_grad, starts, **FIRST)

    # refine the best few distinct optima with a purely relative stop test (f_floor=0), keep the best
    order = [i for i in np.argsort(f) if np.isfinite(f[i])]
    if not order:
        raise FitError(f"{fn}: the objective is not finite at any start")
    picked: list[int] = []
    for i in order:
        if all(np.max(np.abs(x[i] - x[j])) > 1e-3 for j in picked):
            picked.append(i)
        if len(picked) >= max(1, n_polish):
            break
    x2, f2, st2, nit2 = lbfgs_batch(fun_grad, x[picked], **REFINE)
    j = int(np.argmin(np.where(np.isfinite(f2), f2, np.inf)))
    if not f2[j] <= f[picked[0]]:  # cannot happen (L-BFGS only descends); keep the first pass's best
        j, x2, f2, st2, nit2 = 0, x[picked[:1]], f[picked[:1]], status[picked[:1]], np.zeros(1, int)
    fval, th, conv = f2[j], _with_e(x2[j : j + 1], e_fixed)[0], st2[j] in (GTOL, FTOL)
    msg, n_iter = STOP_MESSAGES[st2[j]], int(nit[picked[j]] + nit2[j])
    return _approach3_result(
        th,
        fval,
        conv,
        "" if conv else msg,
        n_iter,
        len(starts),
        len(t),
        delta,
        runs,
        runs.loc[t.index],
        (n_col, d_col, loss_col),
        fn,
        fixed_E=E,
    )


def fit_approach3_resamples(
    runs: pd.DataFrame,
    resamples: list[np.ndarray],
    *,
    n_col: str = "N",
    d_col: str = "D",
    loss_col: str = "loss",
    delta: float = 1e-3,
    grid: str | np.ndarray = "small",
    init=None,
    n_threads: int | None = None,
    E: float | None = None,
    check: float | None = None,
) -> list[Approach3Result]:
    """Approach 3 refitted on many resamples of ``runs`` at once (what ``bootstrap`` uses for Approach 3).

    ``resamples`` are arrays of row positions. A resample's objective is the full data's with each point weighted
    by how often it was drawn, so every (resample, start) pair becomes one problem of a single ``lbfgs_batch``
    call: thousands of small fits share each vectorised evaluation instead of paying Python overhead one by one.
    Starts are ``grid`` plus ``init`` (usually the full-data optimum), and each resample's best start is refined
    with the relative stop test, as in ``fit_approach3``. The results carry no ``data``. Chunks of resamples run
    on ``n_threads`` threads (default: every core). ``E`` fixes the irreducible loss as in ``fit_approach3``.

    ``check`` (a share, with ``init``) refits every resample from ``init`` alone and runs the whole grid only on an
    evenly spaced ``check`` share of them (at least ``MIN_CHECKED``): if the grid finds a lower objective (by more
    than ``CHECK_RTOL``) on any of those, every resample is refitted from the whole grid, as without ``check``. A
    resample's optimum lies near the full data's: on the sweeps measured the grid found a lower one on 0-3 of 1000
    resamples (RESULTS.md), so the grid's 32 extra starts a resample, most of the bootstrap's time, go to the check.
    """
    fn = "fit_approach3_resamples"
    runs = unique_index(runs)
    e_fixed = _log_fixed_e(E, fn)
    t, (logN, logD, logL) = _approach3_data(runs, fn, n_col, d_col, loss_col, delta)
    starts = _free_starts(_approach3_starts(fn, grid, init), e_fixed)
    K, n = len(starts), len(t)
    pos = np.flatnonzero(runs.index.isin(t.index))  # positions of usable rows; resamples index runs by position
    remap = np.full(len(runs), -1)
    remap[pos] = np.arange(n)
    weights = np.zeros((len(resamples), n))
    for r, idx in enumerate(resamples):
        kept = remap[np.asarray(idx, dtype=int)]
        weights[r] = np.bincount(kept[kept >= 0], minlength=n)

    n_threads = n_threads or os.cpu_count() or 1

    def solve(block: np.ndarray, starts: np.ndarray):
        k_ = len(starts)
        W = np.repeat(weights[block], k_, axis=0)  # problem p = (resample block[p // k_], start p % k_)

        fun_grad = _restrict(lambda X, rows: approach3_objective(X, logN, logD, logL, delta, W[rows]), e_fixed)

        x, f, status, nit = lbfgs_batch(fun_grad, np.tile(starts, (len(block), 1)), **FIRST)
        k = np.argmin(np.where(np.isfinite(f), f, np.inf).reshape(len(block), k_), axis=1)
        p = np.arange(len(block)) * k_ + k  # each resample's best start, refined as in fit_approach3
        W1 = weights[block]
        refine = _restrict(lambda X, rows: approach3_objective(X, logN, logD, logL, delta, W1[rows]), e_fixed)
        x2, f2, st2, nit2 = lbfgs_batch(refine, x[p], **REFINE)
        total = nit[p] + nit2  # each resample's iterations over both passes
        if init is not None and k_ > 1:
            # init's first pass often stops early (its stop tests) above where its refinement ends: a start ahead
            # after the first pass can end in a worse optimum than init's, so init is refined too, the lower kept
            p0 = np.arange(len(block)) * k_  # _approach3_starts puts init first
            x3, f3, st3, nit3 = lbfgs_batch(refine, x[p0], **REFINE)
            with np.errstate(invalid="ignore"):
                take = np.isfinite(f3) & ~(f3 >= f2)
            x2, f2, st2 = np.where(take[:, None], x3, x2), np.where(take, f3, f2), np.where(take, st3, st2)
            total = np.where(take, nit[p0] + nit3, total)
        return _with_e(x2, e_fixed), f2, st2, total

    def solve_all(which: np.ndarray, starts: np.ndarray):
        per_block = max(1, int(1.2e6 // (len(starts) * n)))  # ~10 MB a temporary array
        blocks = [which[i : i + per_block] for i in range(0, len(which), per_block)]
        if n_threads > 1 and len(blocks) > 1:
            with ThreadPoolExecutor(min(n_threads, len(blocks))) as ex:
                parts = list(ex.map(solve, blocks, [starts] * len(blocks)))
        else:
            parts = [solve(b, starts) for b in blocks]
        return tuple(np.concatenate([part[j] for part in parts]) for j in range(4))

    R = len(resamples)
    every = np.arange(R)
    used = K
    if check is not None and init is not None and K > 1 and R > 0:
        x, f, status, nit = solve_all(every, starts[:1])  # _approach3_starts puts init first
        checked = np.unique(np.linspace(0, R - 1, min(R, max(MIN_CHECKED, math.ceil(check * R)))).round().astype(int))
        on_grid = solve_all(checked, starts)
        with np.errstate(invalid="ignore"):
            lower = np.isfinite(on_grid[1]) & ~(on_grid[1] >= f[checked] - CHECK_RTOL * np.abs(f[checked]))
        if lower.any():  # the grid found a lower optimum somewhere: every resample from the whole grid
            rest = np.setdiff1d(every, checked)
            x, f, status, nit = (np.empty_like(a) for a in (x, f, status, nit))
            x[checked], f[checked], status[checked], nit[checked] = on_grid
            if len(rest):
                x[rest], f[rest], status[rest], nit[rest] = solve_all(rest, starts)
        else:
            used = 1
    else:
        x, f, status, nit = solve_all(every, starts)
    out: list[Approach3Result] = []
    for i in range(len(f)):
        out.append(
            _approach3_result(
                x[i],
                f[i],
                status[i] in (GTOL, FTOL),
                STOP_MESSAGES.get(status[i], ""),
                nit[i],
                used,
                int(weights[len(out)].sum()),
                delta,
                runs,
                None,
                (n_col, d_col, loss_col),
                fn,
                fixed_E=E,
            )
        )
    return out
