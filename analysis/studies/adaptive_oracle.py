"""The oracle bound for the adaptive-sweep study: at the ladder-only sweep's total FLOPs and with the truth known, how
narrow can the N_opt interval at the target be, for any design the candidate space holds (budgets on the sqrt(2)
ladder from its lowest up to two rungs past its top, sizes centred exactly on the true N_opt, any spread, repeats)?

    python -m analysis.studies.adaptive_oracle --sims 200 --seed 0

Two steps, on analysis/studies/adaptive.py's truth and noise:
1. Linearised (delta method): for every subset of the 11 budgets (>= 3), points a budget in {3, 5, 7}, spread in
   {1.8, 2.5, 3.5, 5}, repeats in {1, 2, 3} whose FLOPs fit the ladder's, the width of ln N_opt(target) that
   scaling.core.design.widths gives with the TRUE vertex variances (the true curve's parabola coefficients at the true
   sizes), the known seed sd, Birge ratio 1 and the estimator's misfit floors MIN_TAU and MIN_BIAS (it never goes
   below them), or none (the pure Fisher width: what the data could say if the parabola had no misfit at all); a
   design's linearised coverage counts the parabola's vertex bias, the same at every budget. The ladder's own design,
   centred exactly, is scored the same way, so the ratio best/ladder is the room any design choice has.
2. Monte Carlo: the best few linearised designs (and the ladder, centred exactly and with its recentring error) are
   simulated with the noise and outliers and fitted by the real estimator (scaling.core.design.fit): median width,
   coverage, median |ln(N_pred/N_true)|, so the bound is read at the coverage it actually has; and the width a 90%
   interval about the estimate would need (2 x the 90th percentile of |ln(N_pred/N_true)|), the bound on accuracy
   itself, whatever an estimator's interval says.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time

import numpy as np
from scipy.stats import t as student_t

from analysis.studies.adaptive import Truth, _noisy, ladder_runs
from scaling.core import design

RUNG = math.sqrt(2)
TOP_EXTRA = 2  # rungs past the ladder's top the candidate space reaches (the adaptive stage's next budgets)
POINTS = (3, 5, 7)
SPREADS = (1.5, 1.8, 2.0, 2.5, 3.0, 3.5, 5.0)
# the linearised widths: with the estimator's floors (the vertices' misfit MIN_TAU, their shared misfit MIN_BIAS) and
# without (the pure Fisher width: what the data could say if a parabola were the true curve)
FLOORS = (("floors", design.MIN_TAU, design.MIN_BIAS**2), ("fisher", 0.0, 0.0))
MIN_COVER = 0.88  # a design's linearised coverage, its constant vertex bias counted, must be at least this
REPEATS = (1, 2, 3)


def sizes(truth: Truth, c: float, points: int, spread: float) -> np.ndarray:
    return truth.n_opt(c) * spread ** np.linspace(-1, 1, points)


def var_units(truth: Truth, budgets, points: int, spread: float, repeats: int, sd: float) -> tuple[np.ndarray, float]:
    """Each budget's true var(vertex)/sd^2 for this layout, and the layout's vertex bias (ln N, the same at every
    budget: the curve's shape in ln N about its minimum is the same up to scale)."""
    runs = [design.Run(c, float(n), float(truth.loss(c, n))) for c in budgets for n in sizes(truth, c, points, spread)]
    f = design.fit(runs, sd=sd, min_tau=0.0)
    vu = np.array([b.var_unit / repeats for b in f.budgets])
    bias = float(np.mean([b.vertex - math.log(truth.n_opt(b.budget)) for b in f.budgets if b.vertex is not None]))
    return vu, bias


def width(us: np.ndarray, v: np.ndarray, u_target: float, bias2: float = 0.0, level: float = design.LEVEL) -> float:
    """Width of the weighted line's t interval at u_target (vertex variances v, shared misfit bias2, Birge ratio 1)."""
    X = np.stack([np.ones_like(us), us], axis=1)
    cov = np.linalg.inv(X.T @ (X / v[:, None]))
    h = np.array([1.0, u_target])
    return 2 * design._t(level, len(us) - 2) * math.sqrt(float(h @ cov @ h) + bias2)


def cover(w: float, bias: float, m: int, level: float = design.LEVEL) -> float:
    """The coverage of a t interval of width w (m budgets) whose centre sits ``bias`` off the truth: the parabola's
    vertex bias on this asymmetric curve is the same at every budget, so no amount of data removes it."""
    q = design._t(level, m - 2)
    sigma = w / (2 * q)
    return float(student_t.cdf(q - bias / sigma, m - 2) - student_t.cdf(-q - bias / sigma, m - 2))


def search(truth: Truth, a) -> tuple[list[dict], dict]:
    ladder = [a.c_lo * RUNG**k for k in range(a.budgets)]
    allc = [a.c_lo * RUNG**k for k in range(a.budgets + TOP_EXTRA)]
    target = 10 * ladder[-1]
    cap = a.points * sum(ladder)  # the ladder-only sweep's FLOPs (before its edge extras)
    us_all = np.log(np.array(allc) / ladder[-1])
    ut = math.log(target / ladder[-1])
    out = []
    lad = None
    for p, s, r in itertools.product(POINTS, SPREADS, REPEATS):
        vu, bias = var_units(truth, allc, p, s, r, a.sd)
        for m in range(3, len(allc) + 1):
            for sub in itertools.combinations(range(len(allc)), m):
                flops = p * r * sum(allc[i] for i in sub)
                if flops > cap * 1.0001:
                    continue
                idx = np.array(sub)
                row = {
                    "budgets": [int(i) for i in sub],
                    "points": p,
                    "spread": s,
                    "repeats": r,
                    "flops_ratio": flops / cap,
                    "bias": bias,
                }
                for name, tau, b2 in FLOORS:
                    w = width(us_all[idx], a.sd**2 * vu[idx] + tau**2, ut, b2)
                    row[f"width_{name}"] = w
                    row[f"cover_{name}"] = cover(w, bias, m)
                out.append(row)
        if (p, s, r) == (a.points, a.spread, 1):
            idx = np.arange(a.budgets)
            lad = {
                "budgets": list(range(a.budgets)),
                "points": p,
                "spread": s,
                "repeats": 1,
                "flops_ratio": 1.0,
                "bias": bias,
            }
            for name, tau, b2 in FLOORS:
                w = width(us_all[idx], a.sd**2 * vu[idx] + tau**2, ut, b2)
                lad[f"width_{name}"] = w
                lad[f"cover_{name}"] = cover(w, bias, a.budgets)
    assert lad is not None
    return out, lad


def simulate(truth: Truth, rng, a, d: dict, sims: int, jitter: float = 0.0) -> dict:
    allc = [a.c_lo * RUNG**k for k in range(a.budgets + TOP_EXTRA)]
    target = 10 * a.c_lo * RUNG ** (a.budgets - 1)
    true_n = truth.n_opt(target)
    w, cov, err = [], [], []
    for _ in range(sims):
        runs: list[design.Run] = []
        for i in d["budgets"]:
            c = allc[i]
            if jitter:
                runs += ladder_runs(
                    truth,
                    rng,
                    [c],
                    points=d["points"],
                    spread=d["spread"],
                    jitter=jitter,
                    sd=a.sd,
                    outlier_rate=a.outlier_rate,
                    outlier_nats=a.outlier_nats,
                )
                continue
            ns = np.repeat(sizes(truth, c, d["points"], d["spread"]), d["repeats"])
            runs += _noisy(truth, rng, c, ns, a.sd, a.outlier_rate, a.outlier_nats)
        iv = design.fit(runs, target=target).interval()
        ok = iv.get("n_opt_lo") is not None
        w.append(iv["width"] if ok else math.inf)
        cov.append(bool(ok and iv["n_opt_lo"] <= true_n <= iv["n_opt_hi"]))
        err.append(abs(math.log(iv["n_opt"] / true_n)) if iv.get("n_opt") else math.inf)
    return {
        "width": float(np.median(w)),
        "coverage": float(np.mean(cov)),
        "err": float(np.median(err)),
        "needed": 2 * float(np.quantile(err, design.LEVEL)),  # the width a 90% interval centred on the estimate needs
    }


def fmt(s: dict) -> str:
    w = s["width"]
    return (
        f"ln width {w:.3f} (x{math.exp(w):.2f}), coverage {s['coverage']:.1%}, |ln err| {s['err']:.3f}, "
        f"needed {s['needed']:.3f}"
    )


def label(d: dict) -> str:
    return f"budgets {d['budgets']} x {d['points']} sizes over {d['spread']:g}x-spread x {d['repeats']} seed(s)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.studies.adaptive_oracle", description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=200, help="simulated sweeps for each design in the Monte Carlo step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--best", type=int, default=24, help="layouts (points, spread, repeats) to simulate, best first")
    ap.add_argument("--budgets", type=int, default=9)
    ap.add_argument("--c-lo", type=float, default=1e11)
    ap.add_argument("--points", type=int, default=5)
    ap.add_argument("--spread", type=float, default=2.5)
    ap.add_argument("--jitter", type=float, default=0.3)
    ap.add_argument("--sd", type=float, default=0.03)
    ap.add_argument("--outlier-rate", type=float, default=0.05)
    ap.add_argument("--outlier-nats", type=float, default=0.2)
    a = ap.parse_args(argv)
    for name, v, ok in (("--sims", a.sims, a.sims >= 0), ("--best", a.best, a.best >= 0), ("--sd", a.sd, a.sd > 0)):
        if not ok:
            print(f"error: {name}={v}: out of range (see --help)", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    truth = Truth.cpu_like()
    rows, lad = search(truth, a)
    print(f"[oracle] {len(rows)} designs scored in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    key = "width_floors"
    for tau_key in (key, "width_fisher"):
        for what, pool in (
            ("any bias", rows),
            (
                f"linearised coverage >= {MIN_COVER:g}",
                [d for d in rows if d[tau_key.replace("width", "cover")] >= MIN_COVER],
            ),
        ):
            best = min(pool, key=lambda d: d[tau_key])
            print(
                f"linearised {tau_key} ({what}): ladder centred {lad[tau_key]:.3f}; best {best[tau_key]:.3f} "
                f"(ratio {best[tau_key] / lad[tau_key]:.3f}; FLOPs {best['flops_ratio']:.2f}x; "
                f"bias {best['bias']:+.3f}; "
                f"coverage {best[tau_key.replace('width', 'cover')]:.2f}): {label(best)}"
            )
    if a.sims:
        rng = np.random.default_rng(a.seed)
        sim_l = simulate(truth, rng, a, lad, a.sims, jitter=a.jitter)
        print(f"simulated ladder (recentring error {a.jitter:g}): {fmt(sim_l)}")
        sim_c = simulate(truth, rng, a, lad, a.sims)
        print(f"simulated ladder (centred exactly): {fmt(sim_c)}")
        # the linearised-best subset of budgets for each layout (points, spread, repeats), simulated
        per_layout: dict = {}
        for d in rows:
            k = (d["points"], d["spread"], d["repeats"])
            if k not in per_layout or d[key] < per_layout[k][key]:
                per_layout[k] = d
        sims = []
        for d in sorted(per_layout.values(), key=lambda d: d[key])[: a.best]:
            s = simulate(truth, rng, a, d, a.sims)
            sims.append((d, s))
            print(f"  linearised {d[key]:.3f}, bias {d['bias']:+.3f}: simulated {fmt(s)}: {label(d)}")
        ok = [x for x in sims if x[1]["coverage"] >= MIN_COVER]
        if ok:
            d, s = min(ok, key=lambda x: x[1]["width"])
            print(
                f"oracle bound (narrowest simulated with coverage >= {MIN_COVER:g}): {fmt(s)}; ln-width ratio to the "
                f"ladder {s['width'] / sim_l['width']:.3f}, to the ladder centred exactly "
                f"{s['width'] / sim_c['width']:.3f}: {label(d)}"
            )
        d, s = min(sims, key=lambda x: x[1]["needed"])
        print(
            f"oracle bound on accuracy (the least width a 90% interval about the estimate needs, 2 x the 90th "
            f"percentile of |ln(N_pred/N_true)|): {s['needed']:.3f} against the ladder's {sim_l['needed']:.3f} (ratio "
            f"{s['needed'] / sim_l['needed']:.3f}), centred exactly {sim_c['needed']:.3f}: {label(d)}"
        )
    print(f"[oracle] {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
