"""Where the next run teaches the fit most: Approach 2's N_opt at a target budget with a linearised interval, and the
expected narrowing of that interval per FLOP of a candidate run (a new size at a budget, a new budget, a repeat seed).

The model (Hoffmann et al. 2022 §3.2, Approach 2, with the delta method for its uncertainty):

1. Runs are grouped by budget C and size N; repeats of one (C, N) are averaged into one point of weight k (the number
   of runs), whose noise is sd^2 / k. ``sd`` is the sweep's own seed noise: pooled from the parabolas' residuals and
   the spread between repeats (``noise_sd``), or given.
2. Per budget with at least 3 sizes: loss = p0 + p1 x + p2 x^2 with x = ln N - centre (weighted least squares); the
   vertex x* = -p1 / (2 p2) is ln N_opt(C) if p2 > 0 and it lies inside the sampled sizes (bracketed). Its variance
   by the delta method: var(x*) = sd^2 g' (X'WX)^-1 g with g = dx*/dp = (0, -1/(2 p2), p1/(2 p2^2)).
3. A line ln N_opt = b + a (ln C - ln C_ref) through the bracketed vertices, weighted by 1/(var(x*) + tau^2), where
   tau^2 is the vertices' scatter about the line beyond their delta-method variance (a parabola is not the true
   curve, so each vertex has a bias no repeat removes; DerSimonian & Laird's method of moments, at least MIN_TAU^2);
   its covariance is
   (X'VX)^-1 times the Birge ratio max(1, chi2/(m-2)) left after tau^2. The interval of ln N_opt at the target
   budget is the Student-t (m-2 degrees of freedom) interval of the line there, its variance plus ``min_bias``^2 if
   given (the part of the vertices' bias they all share moves the line's level, and no number of budgets averages it
   away; 0 by default); the exponent a gets the same interval without that term.

Adding a candidate changes only the design (rows of X, weights), not the noise: its expected variance afterwards is
closed form, with the current coefficients, sd, tau^2 and Birge ratio held fixed. A new budget's vertex variance
uses the mean curvature of the bracketed budgets, centred on the line's N_opt there. The score of a candidate is
(width now - expected width after) / its FLOPs, where width is that of ln N_opt(target): N_opt at the target is what
a user asks a sweep for, and its interval holds both the exponent's and the level's uncertainty (a alone ignores the
level).

Torch-free (numpy; scipy for the t quantile): the sequential sweep (scaling/sweep/adaptive.py) chooses runs with it
and the simulation study (analysis/studies/adaptive.py) replays it on synthetic truth.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Iterable, Optional, Sequence

import numpy as np

DEFAULT_SD = 0.03  # nats: assumed seed noise while a sweep has too few residual degrees of freedom to measure its own
MIN_NOISE_DOF = 3
GATE_NATS = 0.15  # a run this far above its budget's parabola through the others is left out (analysis's quality gate)
EDGE_GATE_NATS = 0.25  # ... the smallest or largest size of a budget: an extrapolation, so more room
LEVEL = 0.9
# The least misfit of a vertex about the line, in ln N: a parabola's vertex on an asymmetric IsoFLOP curve moves with
# where the sizes sit, by a few per cent, however many seeds average its points. Without it, piling runs on cheap
# budgets looked free and the simulation study's 90% intervals covered 78-80%; with 0.05 (chosen on seed 2, reported
# on seeds 0 and 1: RESULTS.md, issue 19) they cover 92-95%.
MIN_TAU = 0.05
REPEATS_PER_BUDGET = 3  # repeat candidates: the noisiest sizes of each bracketed budget (largest |residual|)
# A new budget can also be offered as 3 sizes over the same span as ``points`` sizes (``candidates(sparse=True)``):
# each vertex carries at least MIN_TAU of misfit however many sizes it has, so more distinct budgets of 3 sizes look
# cheaper per unit of width. Off by default: in the simulation study (issue 19) it narrowed the stated interval of
# N_opt at the target by 15% but made the estimate itself less accurate (the width a 90% interval needs grew 10-15%)
# and needed MIN_BIAS 0.08 to cover 87-89%; the sweep does not use it.
SPARSE_POINTS = 3
# The least sd (ln N) of a misfit every vertex shares: a parabola on an asymmetric IsoFLOP curve puts its vertex off
# the true minimum by about the same amount at every budget sampled the same way (the curve's shape in ln N about its
# minimum is the same up to scale), so that part shifts the line's level, not its slope, and no number of budgets
# averages it away (MIN_TAU does, 1/m). Added to the variance of ln N_opt(target), not to a's. 0 by default: the
# ladder and the default adaptive design cover 90-95% without it (their vertices' offsets vary from budget to budget,
# which tau^2 holds); the sparse candidates need about 0.08 (seed 2 of the study: 0.05 covered 85%, 0.065 86.5%,
# 0.08 90%; RESULTS.md, issue 19).
MIN_BIAS = 0.0


@dataclass(frozen=True)
class Run:
    budget: float
    n: float
    loss: float


@dataclass
class Budget:
    """One budget's runs, repeats averaged: ln N per size (x), runs per size (k), mean loss (y), spread of seeds."""

    budget: float
    x: np.ndarray
    k: np.ndarray
    y: np.ndarray
    seed_sd: np.ndarray  # sd between the seeds of a size (nan with one run)
    centre: float = 0.0
    coef: Optional[np.ndarray] = None  # (p0, p1, p2) in x - centre
    vertex: Optional[float] = None  # ln N_opt(C) when bracketed
    var_unit: float = math.inf  # var(vertex) / sd^2

    @property
    def bracketed(self) -> bool:
        return self.vertex is not None


@dataclass
class Fit:
    budgets: list[Budget]
    sd: float
    sd_source: str
    target: float
    c_ref: float
    kept: list[Run]
    dropped: list[tuple[Run, str]]
    line: Optional[np.ndarray] = None  # (b, a): ln N_opt = b + a (ln C - ln c_ref)
    cov: Optional[np.ndarray] = None
    tau2: float = 0.0  # between-budget variance of the vertices about the line (the parabola's misfit), ln N^2
    bias2: float = MIN_BIAS**2  # variance of the misfit all vertices share (moves the line's level only), ln N^2
    birge: float = 1.0
    level: float = LEVEL

    @property
    def used(self) -> list[Budget]:
        return [b for b in self.budgets if b.bracketed]

    def ln_nopt(self, budget: float) -> float:
        assert self.line is not None
        return float(self.line[0] + self.line[1] * (math.log(budget) - math.log(self.c_ref)))

    def interval(self) -> dict:
        """N_opt at the target and a, each with its interval and width (ln units)."""
        if self.line is None:
            return {"target": self.target, "n_opt": None, "width": None, "a": None, "a_width": None}
        w, wa = widths(self)
        mid = self.ln_nopt(self.target)
        return {
            "target": self.target,
            "n_opt": math.exp(mid),
            "n_opt_lo": math.exp(mid - w / 2) if math.isfinite(w) else None,
            "n_opt_hi": math.exp(mid + w / 2) if math.isfinite(w) else None,
            "width": finite(w),
            "a": float(self.line[1]),
            "a_lo": float(self.line[1] - wa / 2) if math.isfinite(wa) else None,
            "a_hi": float(self.line[1] + wa / 2) if math.isfinite(wa) else None,
            "a_width": finite(wa),
            "budgets_used": len(self.used),
            "sd": self.sd,
            "sd_source": self.sd_source,
        }


def finite(x: float) -> Optional[float]:
    """x, or None where it is infinite (plan.json stays strict JSON)."""
    return float(x) if math.isfinite(x) else None


# ---------------------------------------------------------------------------------------------------------------
# runs -> points -> parabolas


def _parabola(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, np.ndarray]:
    c = float(np.average(x, weights=w))
    X = np.stack([np.ones_like(x), x - c, (x - c) ** 2], axis=1)
    WX = X * w[:, None]
    coef = np.linalg.solve(X.T @ WX, WX.T @ y)
    return c, coef


def gate(runs: Sequence[Run]) -> tuple[list[Run], list[tuple[Run, str]]]:
    """Leave out runs far above their budget's parabola through the other runs (worst first, then again): a run that
    ended ~0.2 nats high must not move a vertex. A smallest or largest size must also be that far above its nearest
    neighbour (as analysis/data/quality.py judges edges). Budgets whose other runs have < 3 sizes are not judged."""
    kept = list(runs)
    dropped: list[tuple[Run, str]] = []
    while True:
        worst: Optional[tuple[Run, float, float]] = None
        worst_excess = 0.0
        for c in {r.budget for r in kept}:
            rs = [r for r in kept if r.budget == c]
            if len(rs) < 4:
                continue
            xs = np.log([r.n for r in rs])
            ys = np.array([r.loss for r in rs])
            X = np.stack([np.ones_like(xs), xs - xs.mean(), (xs - xs.mean()) ** 2], axis=1)
            try:
                H = X @ np.linalg.solve(X.T @ X, X.T)
            except np.linalg.LinAlgError:
                continue
            h = np.diag(H)
            # the parabola through the other runs at each run, in closed form: y_i - r_i / (1 - h_ii)
            ref = ys - (ys - H @ ys) / np.maximum(1 - h, 1e-12)
            for i, r in enumerate(rs):
                xo = np.delete(xs, i)
                if len(set(np.round(xo, 9))) < 3 or 1 - h[i] < 1e-9:
                    continue
                limit, ri = GATE_NATS, float(ref[i])
                if xs[i] < xo.min() or xs[i] > xo.max():  # an extrapolation: also above its nearest neighbour
                    limit = EDGE_GATE_NATS
                    ri = max(ri, float(np.delete(ys, i)[int(np.argmin(np.abs(xo - xs[i])))]))
                excess = r.loss - ri - limit
                if excess > worst_excess:
                    worst, worst_excess = (r, r.loss - ri, limit), excess
        if worst is None:
            return kept, dropped
        r, above, limit = worst
        kept.remove(r)
        dropped.append((r, f"{above:.3f} nats above its budget's parabola through the other runs (> {limit:g})"))


def pool(runs: Iterable[Run]) -> list[Budget]:
    """Runs grouped by budget, repeats of one size averaged (``x`` ascending)."""
    by: dict[float, dict[float, list[float]]] = {}
    for r in runs:
        by.setdefault(float(r.budget), {}).setdefault(round(math.log(r.n), 9), []).append(float(r.loss))
    out = []
    for c in sorted(by):
        xs = sorted(by[c])
        ls = [by[c][x] for x in xs]
        sd = [float(np.std(v, ddof=1)) if len(v) > 1 else math.nan for v in ls]
        out.append(
            Budget(
                c, np.array(xs), np.array([len(v) for v in ls], float), np.array([np.mean(v) for v in ls]), np.array(sd)
            )
        )
    return out


def noise_sd(budgets: Sequence[Budget], kept: Sequence[Run]) -> tuple[float, int]:
    """The seed noise of one run (nats) and its degrees of freedom, pooled from each budget's parabola residuals
    (a point of k runs weighs k) and the spread between the repeats of a size."""
    ss, dof = 0.0, 0
    for b in budgets:
        if len(b.x) >= 4:
            c, coef = _parabola(b.x, b.y, b.k)
            r = b.y - (coef[0] + coef[1] * (b.x - c) + coef[2] * (b.x - c) ** 2)
            ss += float(np.sum(b.k * r**2))
            dof += len(b.x) - 3
    groups: dict[tuple[float, float], list[float]] = {}
    for r in kept:
        groups.setdefault((r.budget, round(math.log(r.n), 9)), []).append(r.loss)
    for v in groups.values():
        if len(v) > 1:
            ss += float(np.sum((np.array(v) - np.mean(v)) ** 2))
            dof += len(v) - 1
    return (math.sqrt(ss / dof) if dof else math.nan), dof


def _vertex(b: Budget) -> None:
    b.coef, b.vertex, b.var_unit = None, None, math.inf
    if len(b.x) < 3:
        return
    b.centre, b.coef = _parabola(b.x, b.y, b.k)
    p1, p2 = b.coef[1], b.coef[2]
    if p2 <= 0:
        return
    v = b.centre - p1 / (2 * p2)
    if not b.x.min() <= v <= b.x.max():
        return
    b.vertex = float(v)
    b.var_unit = _var_unit(b.x - b.centre, b.k, b.coef)


def _var_unit(dx: np.ndarray, k: np.ndarray, coef: np.ndarray) -> float:
    """var(vertex) / sd^2 of a parabola with coefficients ``coef`` sampled at dx (from its centre) with k runs each."""
    X = np.stack([np.ones_like(dx), dx, dx**2], axis=1)
    M = X.T @ (X * k[:, None])
    try:
        Minv = np.linalg.inv(M)
    except np.linalg.LinAlgError:
        return math.inf
    _, p1, p2 = coef
    g = np.array([0.0, -1.0 / (2 * p2), p1 / (2 * p2**2)])
    return float(g @ Minv @ g)


# ---------------------------------------------------------------------------------------------------------------
# the line through the vertices, its interval


@functools.lru_cache(maxsize=256)
def _t(level: float, dof: int) -> float:
    if dof < 1:
        return math.inf
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.5 + level / 2, dof))


def _line(
    us: np.ndarray, ys: np.ndarray, vs: np.ndarray, min_tau: float = 0.0
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The weighted line through the vertices: coefficients, covariance, the between-budget variance tau^2 (the
    method of moments of DerSimonian & Laird 1986, for a regression) and the Birge ratio left after it."""
    X = np.stack([np.ones_like(us), us], axis=1)

    def wls(v):
        W = 1.0 / v
        cov = np.linalg.inv(X.T @ (X * W[:, None]))
        coef = cov @ (X * W[:, None]).T @ ys
        return coef, cov, float(np.sum(W * (ys - X @ coef) ** 2)), W

    coef, cov, q, W = wls(vs)
    dof = len(us) - 2
    tau2 = min_tau**2
    if dof > 0:
        # E[Q] = dof + tau^2 (tr W - tr((X'WX)^-1 X'W^2 X)) for residuals of the weighted fit
        denom = float(np.sum(W) - np.trace(cov @ (X.T @ (X * (W**2)[:, None]))))
        tau2 = max(min_tau**2, (q - dof) / denom if denom > 0 else 0.0)
    if tau2 > 0:
        coef, cov, q, W = wls(vs + tau2)
    birge = max(1.0, q / dof) if dof > 0 else 1.0
    return coef, cov, tau2, birge


def fit(
    runs: Sequence[Run],
    target: Optional[float] = None,
    sd: Optional[float] = None,
    level: float = LEVEL,
    min_tau: float = MIN_TAU,
    min_bias: float = MIN_BIAS,
) -> Fit:
    """Gate, pool, a parabola per budget, the line through the bracketed vertices. ``target`` defaults to 10x the
    largest budget; ``sd`` to the sweep's own noise (``noise_sd``; ``DEFAULT_SD`` while it has < 3 dof); the vertices'
    misfit about the line is at least ``min_tau`` (ln N), their shared misfit ``min_bias`` (ln N)."""
    kept, dropped = gate(runs)
    budgets = pool(kept)
    if not budgets:
        raise ValueError("design.fit: no runs")
    if sd is None:
        s, dof = noise_sd(budgets, kept)
        sd, src = (s, f"measured ({dof} dof)") if dof >= MIN_NOISE_DOF and s > 0 else (DEFAULT_SD, "assumed")
    else:
        src = "given"
    for b in budgets:
        _vertex(b)
    largest = max(b.budget for b in budgets)
    f = Fit(budgets, float(sd), src, float(target or 10 * largest), largest, kept, dropped, level=level)
    f.bias2 = min_bias**2
    used = f.used
    if len(used) >= 2:
        us = np.log([b.budget / f.c_ref for b in used])
        f.line, f.cov, f.tau2, f.birge = _line(
            us, np.array([b.vertex for b in used]), sd**2 * np.array([b.var_unit for b in used]), min_tau
        )
    return f


def widths(f: Fit, var_units: Optional[dict[float, float]] = None) -> tuple[float, float]:
    """Interval widths (ln units) of ln N_opt(target) and of a, with the bracketed budgets' vertex variances (or
    ``var_units``: budget -> var/sd^2, which may name new budgets), the fit's sd, tau^2, shared misfit and Birge ratio
    held fixed."""
    vu = {b.budget: b.var_unit for b in f.used}
    if var_units:
        vu.update(var_units)
    if len(vu) < 2:
        return math.inf, math.inf
    cs = sorted(vu)
    us = np.log(np.array(cs) / f.c_ref)
    W = 1.0 / (f.sd**2 * np.array([vu[c] for c in cs]) + f.tau2)
    X = np.stack([np.ones_like(us), us], axis=1)
    try:
        cov = f.birge * np.linalg.inv(X.T @ (X * W[:, None]))
    except np.linalg.LinAlgError:
        return math.inf, math.inf
    h = np.array([1.0, math.log(f.target / f.c_ref)])
    q = _t(f.level, len(cs) - 2)
    var_level = max(float(h @ cov @ h), 0.0) + f.bias2  # a shared offset moves the level: every prediction
    return 2 * q * math.sqrt(var_level), 2 * q * math.sqrt(max(float(cov[1, 1]), 0.0))


# ---------------------------------------------------------------------------------------------------------------
# candidates and their scores


@dataclass
class Candidate:
    kind: str  # 'size' (a new size at a measured budget), 'budget' (a new budget), 'repeat' (another seed)
    budget: float
    ns: list[float]  # the sizes it trains, one run each
    reason: str
    flops: float = 0.0  # set by the caller from the planned runs (default: budget x runs)
    width_after: float = math.inf
    a_width_after: float = math.inf
    score: float = 0.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.flops:
            self.flops = self.budget * len(self.ns)


def mean_curvature(f: Fit) -> float:
    ps = [float(b.coef[2]) for b in f.used if b.coef is not None]
    return float(np.mean(ps)) if ps else math.nan


def var_units_after(f: Fit, additions: Sequence[tuple[float, float]]) -> dict[float, float]:
    """Each affected budget's var(vertex)/sd^2 after adding runs ``[(budget, N), ...]`` (a budget not bracketed yet
    needs >= 3 sizes among the additions and is centred on the line's N_opt there with the mean curvature)."""
    out: dict[float, float] = {}
    by_c: dict[float, list[float]] = {}
    for c, n in additions:
        by_c.setdefault(float(c), []).append(math.log(n))
    known = {b.budget: b for b in f.budgets}
    for c, xs in by_c.items():
        b = known.get(c)
        if b is not None and b.bracketed:
            assert b.coef is not None
            dx = np.concatenate([b.x, xs]) - b.centre
            k = np.concatenate([b.k, np.ones(len(xs))])
            out[c] = _var_unit(dx, k, b.coef)
        elif b is None and f.line is not None and len(set(np.round(xs, 9))) >= 3:
            p2 = mean_curvature(f)
            if p2 > 0:
                dx = np.array(xs) - f.ln_nopt(c)
                out[c] = _var_unit(dx, np.ones(len(xs)), np.array([0.0, 0.0, p2]))
    return out


def candidates(
    f: Fit, step: float, next_budgets: Sequence[float], points: int, sparse: bool = False
) -> list[Candidate]:
    """New sizes around each bracketed budget's vertex (the vertex, +-step/2, +-step), another seed of the
    ``REPEATS_PER_BUDGET`` noisiest sizes of each bracketed budget (largest |residual| from its parabola), and each
    of ``next_budgets`` as a whole new budget of ``points`` sizes ``step`` apart around the line's N_opt there and
    (``sparse``) of ``SPARSE_POINTS`` sizes over the same span (its two ends and its centre)."""
    out: list[Candidate] = []
    for b in f.used:
        assert b.vertex is not None and b.coef is not None
        for d in (-step, -step / 2, 0.0, step / 2, step):
            n = math.exp(b.vertex + d)
            out.append(
                Candidate(
                    "size",
                    b.budget,
                    [n],
                    f"a size near budget {b.budget:.3g}'s minimum "
                    f"(N_opt {math.exp(b.vertex):.3g}, offset {d:+.2f} in ln N)",
                )
            )
        resid = b.y - (b.coef[0] + b.coef[1] * (b.x - b.centre) + b.coef[2] * (b.x - b.centre) ** 2)
        for i in np.argsort(-np.abs(resid))[:REPEATS_PER_BUDGET]:
            out.append(
                Candidate(
                    "repeat",
                    b.budget,
                    [math.exp(b.x[i])],
                    f"another seed of N={math.exp(b.x[i]):.3g} at budget {b.budget:.3g} (residual "
                    f"{resid[i]:+.3f} nats, {int(b.k[i])} run(s) so far)",
                )
            )
    if f.line is not None:
        layouts = [(points, step)]
        if sparse and points > SPARSE_POINTS:
            layouts.append((SPARSE_POINTS, step * (points - 1) / (SPARSE_POINTS - 1)))
        for c in next_budgets:
            mid = f.ln_nopt(c)
            for p, st in layouts:
                ns = [math.exp(mid + st * (j - (p - 1) / 2)) for j in range(p)]
                out.append(
                    Candidate(
                        "budget",
                        c,
                        ns,
                        f"a new budget {c:.3g} ({p} sizes around N_opt {math.exp(mid):.3g}"
                        + (f", {math.exp(st):.2f}x apart)" if p != points else ")"),
                        extra={"layout": "sparse" if p != points else "full"},
                    )
                )
    return out


def score(f: Fit, cands: Sequence[Candidate], planned: Sequence[tuple[float, float]] = ()) -> list[Candidate]:
    """Each candidate's expected widths after it (with ``planned`` runs already added) and its score, best first.
    Score = (width now - width after) / FLOPs; with no finite interval yet, a candidate that makes one finite wins."""
    now, _ = widths(f, var_units_after(f, planned))
    out = []
    for c in cands:
        w, wa = widths(f, var_units_after(f, list(planned) + [(c.budget, n) for n in c.ns]))
        gain = (now - w) if math.isfinite(now) else (1e6 if math.isfinite(w) else 0.0)
        out.append(replace(c, width_after=w, a_width_after=wa, score=gain / c.flops))
    return sorted(out, key=lambda c: -c.score)


def choose(f: Fit, cands: Sequence[Candidate], slots: int) -> list[Candidate]:
    """A batch of about ``slots`` runs: the best candidate, then the best given it (its runs counted as planned), and
    so on (a candidate may come twice: another seed); one of more runs than the slots left gives way to the best
    that fits, and a new budget may fill a batch alone."""
    batch: list[Candidate] = []
    planned: list[tuple[float, float]] = []
    used = 0
    while used < slots:
        ranked = [c for c in score(f, cands, planned) if c.score > 0]
        if not ranked:
            break
        best = ranked[0]
        if used and used + len(best.ns) > slots:
            fits = [c for c in ranked if used + len(c.ns) <= slots]
            if not fits:
                break
            best = fits[0]
        batch.append(best)
        planned += [(best.budget, n) for n in best.ns]
        used += len(best.ns)
    return batch
