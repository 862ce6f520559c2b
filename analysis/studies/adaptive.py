"""Simulation study: the adaptive sweep (a shorter ladder, then runs chosen by expected narrowing per FLOP) against the
ladder-only sweep of the same total FLOPs, on synthetic truth with the noise measured on the real CPU sweep.

    python -m analysis.studies.adaptive                      # 200 sweeps each, seed 0: the table in RESULTS.md
    python -m analysis.studies.adaptive --sweeps 50 --seed 1 --json out.json

Truth: L(N, D) = E + A/N^alpha + B/D^beta with C = 6ND, alpha 0.3, beta 0.9 (so N_opt ∝ C^0.75, as the CPU sweep
measures), N_opt(1e12) = 2e4, and the IsoFLOP curvature in ln N near the minimum about 0.12 nats (the CPU sweep's).
Noise: each run's loss gets N(0, sd) (sd 0.03: two seeds of a point differ by 0.02-0.05 nats) and one run in 20 ends
0.2 nats high (the outliers the quality gate drops). The ladder-only sweep: 9 budgets x sqrt(2) from 1e11 (16x), 5
sizes a budget over 6x (spread 2.5) centred on N_opt times a recentring error (lognormal, sd 0.3), one size more past
an edge minimum. The adaptive sweep: the first ``ladder`` of those budgets, then batches of 2 runs from
scaling.core.design.choose until the ladder-only sweep's FLOPs are spent (candidates that would pass them are left
out). Both are fitted by the same estimator (scaling.core.design.fit: gate, pooled repeats, parabola per budget, line
with delta-method variances, Student-t 90% interval) at the same target, 10x the ladder-only sweep's largest budget.
Besides each interval's width and coverage it prints the width a 90% interval centred on the estimate would need (2 x
the 90th percentile of |ln(N_pred/N_true)|): the design's accuracy, whatever its interval claims. ``--sparse`` and
``--min-bias`` switch on the two scorer variants tried for issue 19 (RESULTS.md); the row "ladder, no shared misfit"
is the ladder fitted without ``--min-bias`` (the same as "ladder" when it is 0). The oracle bound for this study:
analysis/studies/adaptive_oracle.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

import numpy as np

from scaling.core import design

ALPHA, BETA, E = 0.3, 0.9, 3.0
DESIGNS = ("ladder", "adaptive", "ladder, no shared misfit")
N_REF, C_REF, CURVATURE = 2e4, 1e12, 0.12


@dataclass(frozen=True)
class Truth:
    A: float
    B: float
    a: float = BETA / (ALPHA + BETA)

    @staticmethod
    def cpu_like() -> "Truth":
        # at the optimum alpha A N^-alpha = beta B D^-beta = K, and d2L/d(ln N)^2 = K (alpha + beta) = 2 x curvature
        k = 2 * CURVATURE / (ALPHA + BETA)
        d_ref = C_REF / (6 * N_REF)
        return Truth(k / ALPHA * N_REF**ALPHA, k / BETA * d_ref**BETA)

    def loss(self, c, n):
        return E + self.A * n**-ALPHA + self.B * (c / (6 * n)) ** -BETA

    def n_opt(self, c: float) -> float:
        return N_REF * (c / C_REF) ** self.a


def _noisy(truth: Truth, rng, c: float, ns, sd: float, outlier_rate: float, outlier_nats: float) -> list[design.Run]:
    ns = np.asarray(ns, float)
    loss = truth.loss(c, ns) + rng.normal(0, sd, len(ns)) + outlier_nats * (rng.random(len(ns)) < outlier_rate)
    return [design.Run(c, float(n), float(v)) for n, v in zip(ns, loss)]


def ladder_runs(truth, rng, budgets, *, points, spread, jitter, sd, outlier_rate, outlier_nats) -> list[design.Run]:
    runs: list[design.Run] = []
    for c in budgets:
        centre = truth.n_opt(c) * math.exp(rng.normal(0, jitter))
        ns = centre * spread ** np.linspace(-1, 1, points)
        got = _noisy(truth, rng, c, ns, sd, outlier_rate, outlier_nats)
        best = int(np.argmin([r.loss for r in got]))
        if best in (0, points - 1):  # an edge minimum: one size more past it, as the sequential sweep adds
            step = 2 * math.log(spread) / (points - 1)
            got += _noisy(truth, rng, c, [ns[best] * math.exp(step if best else -step)], sd, outlier_rate, outlier_nats)
        runs += got
    return runs


def adaptive_runs(
    truth,
    rng,
    runs,
    ladder,
    flops_left,
    target,
    *,
    points,
    spread,
    sd,
    outlier_rate,
    outlier_nats,
    sparse=False,
    fit_kw=None,
):
    fit_kw = fit_kw or {}
    runs = list(runs)
    step = 2 * math.log(spread) / (points - 1)
    rung = ladder[1] / ladder[0]
    while flops_left > 0:
        f = design.fit(runs, target=target, **fit_kw)
        top = max(r.budget for r in runs)
        nxt = [top * rung, top * rung**2]
        cands = [c for c in design.candidates(f, step, nxt, points, sparse) if c.flops <= flops_left]
        batch = design.choose(f, cands, 2)
        if not batch:
            break
        taken = 0
        for c in batch:
            if c.flops > flops_left:  # a batch's later choice may not fit what its earlier ones left: never more FLOPs
                continue
            runs += _noisy(truth, rng, c.budget, c.ns, sd, outlier_rate, outlier_nats)
            flops_left -= c.flops
            taken += 1
        if not taken:
            break
    return runs


def one(truth, rng, a) -> dict:
    rung = math.sqrt(2)
    budgets = [a.c_lo * rung**k for k in range(a.budgets)]
    target = 10 * budgets[-1]
    kw = dict(points=a.points, spread=a.spread, sd=a.sd, outlier_rate=a.outlier_rate, outlier_nats=a.outlier_nats)
    full = ladder_runs(truth, rng, budgets, jitter=a.jitter, **kw)
    short = ladder_runs(truth, rng, budgets[: a.ladder], jitter=a.jitter, **kw)
    spent = sum(r.budget for r in full)
    fit_kw = dict(min_tau=a.min_tau, min_bias=a.min_bias)
    adapt = adaptive_runs(
        truth, rng, short, budgets, spent - sum(r.budget for r in short), target, sparse=a.sparse, fit_kw=fit_kw, **kw
    )
    out = {}
    for name, rs, kw_fit in (
        ("ladder", full, fit_kw),
        ("adaptive", adapt, fit_kw),
        ("ladder, no shared misfit", full, dict(fit_kw, min_bias=0.0)),  # the ladder's interval as before the term
    ):
        f = design.fit(rs, target=target, **kw_fit)
        iv = f.interval()
        ok = iv.get("n_opt_lo") is not None
        true_n, true_a = truth.n_opt(target), truth.a
        out[name] = {
            "width": iv["width"] if ok else math.inf,
            "a_width": iv["a_width"] if ok else math.inf,
            "covered": bool(ok and iv["n_opt_lo"] <= true_n <= iv["n_opt_hi"]),
            "a_covered": bool(ok and iv["a_lo"] <= true_a <= iv["a_hi"]),
            "err": abs(math.log(iv["n_opt"] / true_n)) if iv.get("n_opt") else math.inf,
            "flops": sum(r.budget for r in rs),
            "runs": len(rs),
            "budgets": len({r.budget for r in rs}),
            "top": max(r.budget for r in rs),
        }
    return out


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for name in DESIGNS:
        r = [x[name] for x in rows]
        w = np.array([x["width"] for x in r])
        out[name] = {
            "median width of ln N_opt(target) (ratio hi/lo)": float(np.exp(np.median(w))),
            "coverage N_opt (90% nominal)": float(np.mean([x["covered"] for x in r])),
            "median width of a": float(np.median([x["a_width"] for x in r])),
            "coverage a": float(np.mean([x["a_covered"] for x in r])),
            "median |ln(N_pred/N_true)|": float(np.median([x["err"] for x in r])),
            # the width a 90% interval about the estimate needs: what the design's accuracy allows, whatever the
            # estimator's interval says
            "2 x 90th percentile of |ln(N_pred/N_true)|": 2 * float(np.quantile([x["err"] for x in r], 0.9)),
            "mean runs": float(np.mean([x["runs"] for x in r])),
            "mean budgets": float(np.mean([x["budgets"] for x in r])),
            "FLOPs / ladder FLOPs": float(np.mean([x["flops"] / y["ladder"]["flops"] for x, y in zip(r, rows)])),
            "no interval": int(np.sum(~np.isfinite(w))),
        }
    lw = np.array([x["ladder"]["width"] for x in rows])
    aw = np.array([x["adaptive"]["width"] for x in rows])
    ok = np.isfinite(lw) & np.isfinite(aw)
    out["median width ratio adaptive/ladder (paired)"] = float(np.median(aw[ok] / lw[ok]))
    lw0 = np.array([x["ladder, no shared misfit"]["width"] for x in rows])
    ok0 = np.isfinite(lw0) & np.isfinite(aw)
    out["median width ratio adaptive/ladder without the shared misfit (paired)"] = float(np.median(aw[ok0] / lw0[ok0]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.studies.adaptive", description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweeps", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budgets", type=int, default=9, help="ladder-only budgets (x sqrt 2 steps)")
    ap.add_argument("--ladder", type=int, default=5, help="budgets the adaptive sweep's ladder runs first")
    ap.add_argument("--c-lo", type=float, default=1e11)
    ap.add_argument("--points", type=int, default=5)
    ap.add_argument("--spread", type=float, default=2.5)
    ap.add_argument("--jitter", type=float, default=0.3, help="sd of ln(centre / N_opt) of a ladder budget")
    ap.add_argument("--sd", type=float, default=0.03, help="seed noise of one run (nats)")
    ap.add_argument("--outlier-rate", type=float, default=0.05)
    ap.add_argument("--outlier-nats", type=float, default=0.2)
    ap.add_argument("--min-tau", type=float, default=design.MIN_TAU, help="the vertices' least misfit (ln N)")
    ap.add_argument("--min-bias", type=float, default=design.MIN_BIAS, help="their least shared misfit (ln N)")
    ap.add_argument(
        "--sparse",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="new-budget candidates of 3 sizes too (off by default; it needs --min-bias 0.08 to cover: RESULTS.md)",
    )
    ap.add_argument("--json", help="write every sweep's figures and the summary here")
    a = ap.parse_args(argv)
    for name, v, ok in (
        ("--sweeps", a.sweeps, a.sweeps >= 1),
        ("--budgets", a.budgets, a.budgets >= 3),
        ("--ladder", a.ladder, 3 <= a.ladder <= a.budgets),
        ("--points", a.points, a.points >= 3),
        ("--sd", a.sd, a.sd > 0),
        ("--outlier-rate", a.outlier_rate, 0 <= a.outlier_rate < 1),
    ):
        if not ok:
            print(f"error: {name}={v}: out of range (see --help)", file=sys.stderr)
            return 2
    truth = Truth.cpu_like()
    rng = np.random.default_rng(a.seed)
    rows = []
    for i in range(a.sweeps):
        rows.append(one(truth, rng, a))
        if (i + 1) % 25 == 0:
            print(f"[study] {i + 1}/{a.sweeps} sweeps", file=sys.stderr, flush=True)
    s = summarise(rows)
    for name in DESIGNS:
        print(f"{name}: " + "; ".join(f"{k} {v:.3g}" for k, v in s[name].items()))
    for k, v in s.items():
        if k.startswith("median width ratio"):
            print(f"{k}: {v:.3f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump({"args": vars(a), "summary": s, "sweeps": rows}, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
