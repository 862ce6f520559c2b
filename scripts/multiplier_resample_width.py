"""How much narrower a percentile interval of M over R bootstrap resamples is than over compare's n_boot: the reason
the calibration's widening factor (fitted to R-resample intervals) is applied to the pair's first R resamples
(``analysis.compare.calibration.matched_interval``). Prints the widths ln(hi/lo) per compute value and the mean
ratio over disjoint blocks of R resamples.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/multiplier_resample_width.py
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from analysis.compare import compare
from analysis.compare.calibration import DEFAULT_RESAMPLES, matched_interval
from analysis.compare.study import law_with_multiplier
from analysis.studies.synthetic import CHINCHILLA, synthetic_runs

N_BOOT, R = 1000, DEFAULT_RESAMPLES


def main() -> None:
    b = law_with_multiplier(CHINCHILLA, 2.0, "b")
    runs = [
        synthetic_runs(law, budgets=(1e17, 1e18, 1e19), n_per_budget=5, noise=0.01, seed=s)
        for law, s in ((CHINCHILLA, 1), (b, 2))
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(
            *runs, n_boot=N_BOOT, grid="small", law="approach3", targets=[1e20], calibrate_sims=0, shared_test=False
        )
    fa, fb = cmp.frontiers["approach3"]
    tab = cmp.pairs["approach3"][0].table
    w_all = np.log(tab["M_hi"] / tab["M_lo"]).to_numpy()
    lo, hi = matched_interval(fa, fb, tab["C"], R, cmp.level)
    print("C", [f"{c:.1e}" for c in tab["C"]])
    print(f"width ln(hi/lo) over {N_BOOT}:", np.round(w_all, 4).tolist())
    print(f"width ln(hi/lo) over the first {R}:", np.round(np.log(hi / lo), 4).tolist())
    ratios = []
    for j in range(N_BOOT // R):
        a = dataclasses.replace(fa, boot_loss=fa.boot_loss[R * j :])
        bb = dataclasses.replace(fb, boot_loss=fb.boot_loss[R * j :])
        lo, hi = matched_interval(a, bb, tab["C"], R, cmp.level)
        ratios.append(np.log(hi / lo) / w_all)
    r = np.array(ratios)
    print(f"{len(r)} disjoint blocks of {R}: mean width ratio per C", np.round(r.mean(0), 3).tolist())
    print("overall mean ratio", round(float(r.mean()), 3))


if __name__ == "__main__":
    main()
