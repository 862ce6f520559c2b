"""Benchmark of the Approach 3 fit and its bootstrap: ``python -m analysis.studies.bench``.

Draws ~250 runs from Chinchilla's law (10 IsoFLOP budgets x 25 sizes, 1% noise), then times
1. fit_approach3 with the full 4,500-start grid (aim: under 5 s on 2 cores), and
2. a 1,000-resample bootstrap of it, resamples warm-started from the full-data optimum plus the small grid
   (aim: under 60 s on 2 cores),
3. Approach 2 with the default IsoFLOP minimum estimator (``analysis.fits.minima``): every budget's minimum, the
   default Student-t interval of N_opt ∝ C^a (``analysis.uncertainty.intervals``) and a 1,000-resample bootstrap over
   whole budgets (the "hierarchical" scheme, which also re-estimates every minimum, is not timed here: ~87 s wall,
   40 s CPU for 1,000 resamples on this sweep, on 2 busy cores),
and prints the figures with the recovered parameters and intervals beside the truth. Timings are printed, never
asserted: the speed targets are checked by reading this output.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from analysis.fits.approach3 import fit_approach3
from analysis.fits.minima import DEFAULT_ESTIMATOR, estimate_minimum
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs
from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name
from analysis.uncertainty.resampling import bootstrap


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m analysis.studies.bench", description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, default=10, help="IsoFLOP budgets, log-spaced over 1e17..1e21")
    p.add_argument("--per-budget", type=int, default=25, help="model sizes a budget")
    p.add_argument("--noise", type=float, default=0.01, help="multiplicative log-normal noise on the loss")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of the full-grid fit")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (0 skips the bootstrap)")
    p.add_argument(
        "--a2-resamples",
        type=int,
        default=1000,
        help="resamples of the Approach 2 budgets-and-runs bootstrap (0 skips it)",
    )
    p.add_argument("--n-jobs", type=int, default=None, help="bootstrap threads (default: every core)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    law = CHINCHILLA
    df = synthetic_runs(
        law,
        budgets=np.geomspace(1e17, 1e21, args.budgets),
        n_per_budget=args.per_budget,
        noise=args.noise,
        seed=args.seed,
    )
    print(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"data: {len(df)} runs from {law.name} (E {law.E}, A {law.A}, B {law.B}, alpha {law.alpha}, "
        f"beta {law.beta}), {args.budgets} budgets x {args.per_budget} sizes, noise {args.noise:.1%}"
    )

    times, cpu = [], []
    for _ in range(max(1, args.repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        r = fit_approach3(df)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(
        f"\nApproach 3, full grid ({r.n_starts} starts, {r.n_points} points): wall median "
        f"{statistics.median(times):.2f} s, min {min(times):.2f} s over {len(times)} runs (aim < 5 s); "
        f"CPU median {statistics.median(cpu):.2f} s"
    )
    print(f"  {r!r}")
    truth = dict(zip(("E", "A", "B", "alpha", "beta"), law.params)) | {"a": law.a}
    got = dict(zip(("E", "A", "B", "alpha", "beta"), r.params)) | {"a": r.a}
    print("  " + ", ".join(f"{k} {got[k]:.4g} (true {truth[k]:.4g})" for k in truth))

    if args.resamples:
        n_jobs = args.n_jobs or os.cpu_count() or 1
        t0, c0 = time.perf_counter(), time.process_time()
        b = bootstrap(fit_approach3, df, n_resamples=args.resamples, seed=args.seed, budget=1e21, n_jobs=n_jobs)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"\nBootstrap of Approach 3, {args.resamples} resamples on {n_jobs} threads, each resample started "
            f"from the full-data optimum + the 32-start small grid: wall {dt:.1f} s including the full-data fit "
            f"(aim < 60 s), CPU {dc:.1f} s; {b.n_failed} failed"
        )
        truth_q = {**truth, "N_opt": law.compute_optimal(1e21).N_opt, "D_opt": law.compute_optimal(1e21).D_opt}
        for row in b.intervals.itertuples():
            t = truth_q.get(row.quantity)
            mark = "" if t is None else f"   true {t:.4g} {'inside' if row.lo <= t <= row.hi else 'OUTSIDE'}"
            print(f"  {row.quantity:>16}: {row.estimate:.4g}  90% [{row.lo:.4g}, {row.hi:.4g}]{mark}")

    if args.a2_resamples:
        groups = [(np.log(g["N"].to_numpy()), g["loss"].to_numpy()) for _, g in df.groupby("budget")]
        t0 = time.perf_counter()
        for x, y in groups:
            estimate_minimum(x, y, DEFAULT_ESTIMATOR)
        dt = time.perf_counter() - t0
        print(f"\nApproach 2 minima by {DEFAULT_ESTIMATOR!r}: {len(groups)} budgets in {dt * 1e3:.1f} ms")
        for scheme in ("t", "budgets"):
            t0, c0 = time.perf_counter(), time.process_time()
            a2 = isoflop_power_law_interval(df, [1e21], scheme=scheme, n_resamples=args.a2_resamples, seed=args.seed)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            lo, hi = a2.interval(n_opt_name(1e21))
            alo, ahi = a2.interval("a")
            what = "Student-t interval" if scheme == "t" else f"bootstrap {scheme!r}, {args.a2_resamples} resamples"
            print(
                f"Approach 2 {what}: wall {dt:.2f} s, "
                f"CPU {dc:.1f} s; a {a2.a:.4f} [{alo:.4f}, {ahi:.4f}] (true {law.a:.4f}), N_opt(1e21) "
                f"{a2.n_opt(1e21):.4g} [{lo:.4g}, {hi:.4g}] (true {law.compute_optimal(1e21).N_opt:.4g})"
            )


if __name__ == "__main__":
    main()
