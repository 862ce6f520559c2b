"""Calibrate one law's bootstrap on a sweep's own design and print the table (issue 20 item 4), with progress.

    OMP_NUM_THREADS=1 python scripts/calibrate_law.py <sweep> <cache folder> {approach3,kaplan} [--sims 100]
        [--resamples 100]

The same ``analysis.uncertainty.law_calibration.calibrate_law`` call as ``python -m analysis.studies
lawcalibration`` (which calibrates both laws at the report's settings, 100 x 100, for the report's cache), one law at
a time and at any size, printing a line every 10 simulated sweeps.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.pipeline import CalibratedQuantities, fit_functions, load_sweep  # noqa: E402
from analysis.pipeline.inputs import default_budgets  # noqa: E402
from analysis.uncertainty.law_calibration import calibrate_law  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path)
    p.add_argument("cache", type=Path)
    p.add_argument("law", choices=("approach3", "kaplan"))
    p.add_argument("--sims", type=int, default=100)
    p.add_argument("--resamples", type=int, default=100)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    runs, _, _ = load_sweep(args.sweep, "chinchilla", "non_embedding")
    fit_fn = fit_functions()[args.law][0]
    fit = fit_fn(runs)
    cal = calibrate_law(
        args.law,
        fit,
        runs,
        CalibratedQuantities(default_budgets(runs)),
        fit_fn=fit_fn,
        n_sims=args.sims,
        n_resamples=args.resamples,
        cache_dir=args.cache,
        progress=lambda m: print(m, flush=True),
    )
    print(f"carried: {cal.carried}; {cal.n_sims} simulated sweeps x {cal.n_resamples} resamples, {cal.seconds:.0f} s")
    print(cal.table.to_string())
    print("factors:", {k: round(v, 3) for k, v in cal.factors.items()})


if __name__ == "__main__":
    main()
