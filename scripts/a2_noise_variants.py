"""Does Approach 2's calibration simulate the right heavy tail? The percalibration study's true sweeps (same seeds
and draws), each calibrated several times with a different jump rate in the simulated noise, so the variants'
coverages are paired on the same sweeps (issue 20).

    OMP_NUM_THREADS=1 python scripts/a2_noise_variants.py --setting cpu --seed 101 --sweeps 300 \
        --variants base nojump prior60 --csv /tmp/cpu_101.csv

Variants of the simulated jump rate p (k of n runs flagged stalled by the gate): "base", the report's
(k + 1) / (n + 20); "nojump", k / n (no prior: a clean sweep simulates no jumps); "priorW", (k + 1) / (n + W).
Prints per variant and quantity (a, N_opt at 10x and 100x the largest budget): the carried interval's coverage, its
s.e., median width (hi - lo for a, ln(hi/lo) for N_opt), median factor, the plain t interval's coverage on the same
sweeps and the coverage the calibration gives it (since stop 29 the fast double bootstrap's prediction), and the
calibration's choice.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def variant_noise_model(variant: str, base):
    """``sim_noise.noise_model`` with the jump rate of ``variant``."""

    def model(runs, n_flagged=0, jump_lo=0.15, jump_hi=0.25):
        m = base(runs, n_flagged, jump_lo, jump_hi)
        if variant == "base":
            return m
        if variant == "nojump":
            return replace(m, jump_rate=n_flagged / max(m.n_runs, 1))
        if variant.startswith("prior"):
            return replace(m, jump_rate=(n_flagged + 1) / (m.n_runs + float(variant[5:])))
        raise SystemExit(f"--variants: {variant!r}; allowed: base, nojump, prior<W> (e.g. prior60)")

    return model


def main() -> None:
    from analysis.studies.calibrated import STUDY_SETTINGS, true_sweep
    from analysis.uncertainty import sim_design
    from analysis.uncertainty.calibration import calibrate_approach2
    from analysis.uncertainty.intervals import isoflop_power_law_interval
    from analysis.uncertainty.sim_noise import noise_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--setting", choices=sorted(STUDY_SETTINGS), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sweeps", type=int, default=100)
    p.add_argument("--sims", type=int, default=400, help="simulated sweeps a calibration")
    p.add_argument("--variants", nargs="+", default=["base", "nojump"])
    p.add_argument("--csv", default=None, help="write every sweep's rows here (rewritten every 10 sweeps)")
    args = p.parse_args()
    for v in args.variants:
        variant_noise_model(v, noise_model)(pd.DataFrame({"budget": [], "N": [], "loss": []}))  # refuse early
    setting = STUDY_SETTINGS[args.setting]
    rows = []
    for i in range(args.sweeps):
        rng = np.random.default_rng([args.seed, 20, i])  # the percalibration study's true sweep i
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept, flagged, a2, law, targets, truth = true_sweep(setting, rng)
            t_iv = isoflop_power_law_interval(kept, targets, method=a2.estimator, scheme="t")
            k = int((flagged["check"] == "stalled").sum())
            for v in args.variants:
                sim_design.noise_model = variant_noise_model(v, noise_model)
                try:
                    cal = calibrate_approach2(kept, targets, a2=a2, law=law, n_flagged=k, n_sims=args.sims, runs_sims=0)
                finally:
                    sim_design.noise_model = noise_model
                iv = cal.apply(t_iv)
                for q, label in zip(truth, ("a", "10x", "100x")):
                    lo, hi = iv.interval(q)
                    tlo, thi = t_iv.interval(q)
                    width = (hi - lo) if q == "a" else (math.log(hi / lo) if lo > 0 and hi > 0 else np.nan)
                    rows.append(
                        dict(
                            sweep=i,
                            variant=v,
                            quantity=label,
                            covered=bool(lo <= truth[q] <= hi),
                            t_covered=bool(tlo <= truth[q] <= thi),
                            width=width,
                            carried=cal.carried,
                            factor=cal.factors.get(q, np.nan),
                            t_simulated=cal.figures("t", q)[0],
                            n_flagged=k,
                            jump_rate=cal.noise.jump_rate,
                        )
                    )
        if args.csv and (i + 1) % 10 == 0:
            pd.DataFrame(rows).to_csv(args.csv, index=False)
    d = pd.DataFrame(rows)
    if args.csv:
        d.to_csv(args.csv, index=False)
    g = d.groupby(["variant", "quantity"], sort=False).agg(
        coverage=("covered", "mean"),
        n=("covered", "size"),
        median_width=("width", "median"),
        median_factor=("factor", "median"),
        t_coverage=("t_covered", "mean"),
        t_simulated=("t_simulated", "mean"),
        jump_rate=("jump_rate", "mean"),
    )
    g.insert(2, "se", np.sqrt(g["coverage"] * (1 - g["coverage"]) / g["n"]))
    print(f"{args.setting}, seed {args.seed}, {args.sweeps} true sweeps, {args.sims} simulated a calibration")
    print(g.round(4).to_string())
    print(d.drop_duplicates(["sweep", "variant"]).groupby("variant", sort=False)["carried"].value_counts().to_string())


if __name__ == "__main__":
    main()
