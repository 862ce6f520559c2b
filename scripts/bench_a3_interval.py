"""Time Approach 3's in-report interval on the 45-run bench sweep, the plain single loop (what the report ran
before) against the fast double bootstrap (what it carries now), side by side in one process (issue 20 item 4).

    OMP_NUM_THREADS=1 python scripts/bench_a3_interval.py [--sweep DIR] [--repeat 3]

Prints each one's wall time per repeat and the half-widths; timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", type=Path, default=None, help="a sweep folder (default: the bench's 45-run sweep)")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    from analysis.data.load import load_runs
    from analysis.fits.approach3 import fit_approach3
    from analysis.pipeline import CalibratedQuantities
    from analysis.uncertainty.law_calibration import single_loop
    from analysis.uncertainty.parametric_check import half_widths
    from analysis.uncertainty.sim_noise import noise_model
    from scripts.bench_report import write_design

    sweep = args.sweep or write_design(Path(tempfile.mkdtemp()) / "bench", 9, 5, 0.01, 0)
    runs = load_runs(sweep)
    fit = fit_approach3(runs)
    q = CalibratedQuantities([float(runs["budget"].max()) * 10])
    print(f"{sweep}: {len(runs)} runs")
    for r in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        h, _ = half_widths(fit, runs, q, noise_model(runs), n_sims=200, seed=0)
        t1, c1 = time.perf_counter(), time.process_time()
        cal = single_loop("approach3", fit, runs, q, n_sims=200, seed=0)
        t2, c2 = time.perf_counter(), time.process_time()
        print(
            f"repeat {r}: wall / CPU single loop {t1 - t0:.2f} / {c1 - c0:.2f} s, fast double {t2 - t1:.2f} / "
            f"{c2 - c1:.2f} s (CPU +{(c2 - c1) - (c1 - c0):.2f} s); "
            f"half-widths single {h}, fast double {cal.half_widths} at levels {cal.levels}",
            flush=True,
        )


if __name__ == "__main__":
    main()
