"""CPU time of the compute multiplier's two calibrations side by side on one real pair: Approach 3's
(``analysis.compare.calibration``, without the shared law) and Approach 2's (``calibration_approach2``), each from
scratch (no cache) on the same fitted sweeps, with ``time.process_time``. Prints one line a repeat.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/multiplier_calibration_time.py SWEEP_A SWEEP_B [TARGET [N_BOOT]]

N_BOOT (default 1000, compare's) only sets the bootstrap of the compare that gives the fits; the calibrations draw
their own resamples. Sweeps may be folders or published tables (the Porian CSVs).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np

from analysis.compare import compare
from analysis.compare.calibration import calibrate_multiplier
from analysis.compare.calibration_approach2 import calibrate_multiplier_approach2


def main(a: str, b: str, target: float = 1e13, n_boot: int = 1000, repeats: int = 2) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cmp = compare(a, b, targets=[target], law="approach2", calibrate_sims=0, n_boot=n_boot)
        f2, f3 = cmp.frontiers["approach2"], cmp.frontiers["approach3"]
        C = cmp.pairs["approach2"][0].table["C"].to_numpy(float)
        truth = np.log(cmp.pairs["approach3"][0].table["M"].to_numpy(float))
        fl = tuple(r.attrs.get("n_flagged", 0) for r in cmp.runs)
        for rep in range(repeats):
            t = time.process_time()
            calibrate_multiplier(cmp.runs[0], cmp.runs[1], f3[0].fit, f3[1].fit, C, cmp.targets, n_flagged=fl, seed=rep)
            a3 = time.process_time() - t
            t = time.process_time()
            calibrate_multiplier_approach2(
                *cmp.runs,
                f3[0].fit,
                f3[1].fit,
                f2[0].fit,
                f2[1].fit,
                C,
                cmp.targets,
                n_flagged=fl,
                seed=rep,
                truth=truth,
            )
            a2 = time.process_time() - t
            print(f"repeat {rep}: CPU s, Approach 3's calibration (no shared law) {a3:.1f}, Approach 2's {a2:.1f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(float(x) for x in sys.argv[3:4]), *(int(x) for x in sys.argv[4:5]))
