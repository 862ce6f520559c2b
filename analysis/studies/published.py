"""Our fits of published sweeps against the authors' own: Approach 2's exponent a of N_opt ∝ C^a, with its
within-budget bootstrap interval, on each of the eight IsoFLOP sweeps of Porian et al. 2024 stored in
``tests/data/porian2024/`` (see the NOTICE there), beside the exponent the authors report and the exponent of the
parabola through every run of a budget (the estimator Chinchilla used):

    python -m analysis.studies.published [--resamples 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from analysis.data.table import load_table
from analysis.fits.approach2 import fit_approach2
from analysis.uncertainty.resampling import bootstrap

FOLDER = Path(__file__).resolve().parents[2] / "tests" / "data" / "porian2024"
RECIPES = ("base-long-kaplan", "base-short-kaplan", "base-short-chinchilla", "tuned-short-const")
# the authors' exponent a ("basic" fit of their fit_results) for each dataset, in RECIPES' order (NOTICE)
AUTHORS_A = {"rw": (0.701, 0.604, 0.571, 0.497), "owt2": (0.700, 0.602, 0.569, 0.518)}
DATASETS = {"rw": "RefinedWeb", "owt2": "OpenWebText2"}


def exponents(resamples: int = 200, seed: int = 0, level: float = 0.9) -> list[dict]:
    """One row a sweep: dataset, recipe, runs, the authors' a, ours with its interval, the parabola's."""
    rows = []
    for ds, authors in AUTHORS_A.items():
        for recipe, a_auth in zip(RECIPES, authors):
            t = load_table(FOLDER / f"{ds}_{recipe}.csv")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                full = fit_approach2(t)
                b = bootstrap(fit_approach2, t, n_resamples=resamples, seed=seed, strata_col="budget", level=level)
                parabola = fit_approach2(t, estimator="parabola").a
            lo, hi = b.interval("a")
            rows.append(
                dict(
                    data=DATASETS[ds],
                    recipe=recipe,
                    runs=len(t),
                    authors=a_auth,
                    a=full.a,
                    lo=lo,
                    hi=hi,
                    parabola=parabola,
                )
            )
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.studies.published", description=__doc__.split("\n\n")[0])
    ap.add_argument("--resamples", type=int, default=200, help="within-budget bootstrap resamples (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.resamples < 2:
        print(f"error: --resamples={a.resamples} must be >= 2", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print("| data | recipe | runs | authors' a | ours: a [90%] | parabola through all runs |")
    print("|---|---|---|---|---|---|")
    for r in exponents(a.resamples, a.seed):
        print(
            f"| {r['data']} | {r['recipe']} | {r['runs']} | {r['authors']:.3f} | "
            f"{r['a']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | {r['parabola']:.3f} |",
            flush=True,
        )
    print(f"{a.resamples} resamples a sweep, seed {a.seed}: {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
