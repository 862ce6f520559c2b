"""CPU seconds of Kaplan's pieces of the report on the 45-run bench sweep, and its interval's half-widths (issue 20):
the fit, the batched refit of 1000 bootstrap resamples, and the fast double bootstrap of 200 simulated sweeps.

    OMP_NUM_THREADS=1 python scripts/bench_kaplan_interval.py [--sweep DIR] [--repeat 2]

Run it in two trees (before / after) to compare; timings are printed, never asserted.
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
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    warnings.simplefilter("ignore")
    import numpy as np

    from analysis.data.load import load_runs
    from analysis.fits.kaplan import fit_kaplan
    from analysis.pipeline import CalibratedQuantities
    from analysis.uncertainty.law_calibration import single_loop
    from scripts.bench_report import write_design

    sweep = args.sweep or write_design(Path(tempfile.mkdtemp()) / "bench", 9, 5, 0.01, 0)
    runs = load_runs(sweep)
    c_max = float(runs["budget"].max())
    q = CalibratedQuantities([c_max * 10, c_max * 100])
    for rep in range(args.repeat):
        t = time.process_time()
        fit = fit_kaplan(runs)
        t_fit = time.process_time() - t
        rng = np.random.default_rng(0)
        resamples = [rng.integers(0, len(runs), len(runs)) for _ in range(1000)]
        t = time.process_time()
        fit.refit_resamples(runs, resamples, with_l_c=True)
        t_boot = time.process_time() - t
        t = time.process_time()
        cal = single_loop("kaplan", fit, runs, q, n_sims=200, seed=0)
        t_fd = time.process_time() - t
        print(
            f"rep {rep}: CPU fit {t_fit:.2f} s, refit 1000 resamples {t_boot:.2f} s, fast double {t_fd:.2f} s; "
            f"estimates {q(fit)}; half-widths {cal.half_widths}",
            flush=True,
        )


if __name__ == "__main__":
    main()
