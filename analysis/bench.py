"""Benchmark of the Approach 3 fit and its bootstrap: ``python -m analysis.bench``.

Draws ~250 runs from Chinchilla's law (10 IsoFLOP budgets x 25 sizes, 1% noise), then times
1. fit_approach3 with the full 4,500-start grid (aim: under 5 s on 2 cores), and
2. a 1,000-resample bootstrap of it, resamples warm-started from the full-data optimum plus the small grid
   (aim: under 60 s on 2 cores),
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
from analysis.synthetic import CHINCHILLA, synthetic_runs
from analysis.uncertainty import bootstrap


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m analysis.bench", description=__doc__.splitlines()[0])
    p.add_argument("--budgets", type=int, default=10, help="IsoFLOP budgets, log-spaced over 1e17..1e21")
    p.add_argument("--per-budget", type=int, default=25, help="model sizes a budget")
    p.add_argument("--noise", type=float, default=0.01, help="multiplicative log-normal noise on the loss")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats of the full-grid fit")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (0 skips the bootstrap)")
    p.add_argument("--n-jobs", type=int, default=None, help="bootstrap threads (default: every core)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    law = CHINCHILLA
    df = synthetic_runs(law, budgets=np.geomspace(1e17, 1e21, args.budgets), n_per_budget=args.per_budget,
                        noise=args.noise, seed=args.seed)
    print(f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, numpy {np.__version__}")
    print(f"data: {len(df)} runs from {law.name} (E {law.E}, A {law.A}, B {law.B}, alpha {law.alpha}, "
          f"beta {law.beta}), {args.budgets} budgets x {args.per_budget} sizes, noise {args.noise:.1%}")

    times, cpu = [], []
    for _ in range(max(1, args.repeats)):
        t0, c0 = time.perf_counter(), time.process_time()
        r = fit_approach3(df)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"\nApproach 3, full grid ({r.n_starts} starts, {r.n_points} points): wall median "
          f"{statistics.median(times):.2f} s, min {min(times):.2f} s over {len(times)} runs (aim < 5 s); "
          f"CPU median {statistics.median(cpu):.2f} s")
    print(f"  {r!r}")
    truth = dict(zip(("E", "A", "B", "alpha", "beta"), law.params)) | {"a": law.a}
    got = dict(zip(("E", "A", "B", "alpha", "beta"), r.params)) | {"a": r.a}
    print("  " + ", ".join(f"{k} {got[k]:.4g} (true {truth[k]:.4g})" for k in truth))

    if args.resamples:
        n_jobs = args.n_jobs or os.cpu_count() or 1
        t0, c0 = time.perf_counter(), time.process_time()
        b = bootstrap(fit_approach3, df, n_resamples=args.resamples, seed=args.seed, budget=1e21, n_jobs=n_jobs)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        print(f"\nBootstrap of Approach 3, {args.resamples} resamples on {n_jobs} threads, each resample started "
              f"from the full-data optimum + the 32-start small grid: wall {dt:.1f} s including the full-data fit "
              f"(aim < 60 s), CPU {dc:.1f} s; {b.n_failed} failed")
        truth_q = {**truth, "N_opt": law.compute_optimal(1e21).N_opt, "D_opt": law.compute_optimal(1e21).D_opt}
        for row in b.intervals.itertuples():
            t = truth_q.get(row.quantity)
            mark = "" if t is None else f"   true {t:.4g} {'inside' if row.lo <= t <= row.hi else 'OUTSIDE'}"
            print(f"  {row.quantity:>16}: {row.estimate:.4g}  90% [{row.lo:.4g}, {row.hi:.4g}]{mark}")


if __name__ == "__main__":
    main()
