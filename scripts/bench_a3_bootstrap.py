"""Approach 3's batched bootstrap refits, side by side on one sweep: the whole small grid on every resample against
init alone with the grid checked on a share (``fit_approach3_resamples(..., check=)``, what the report runs), and how
often the grid beats init alone. Prints CPU seconds and the 5%/95% quantiles of a and ln N_opt at 10x and 100x the
largest budget. RESULTS.md, "Report time, fourth round".

    OMP_NUM_THREADS=1 python scripts/bench_a3_bootstrap.py <sweep> [<sweep> ...] [--resamples 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.data.load import load_runs  # noqa: E402
from analysis.data.quality import quality_gate  # noqa: E402
from analysis.fits import approach3 as a3  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweeps", nargs="+", type=Path)
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    for path in args.sweeps:
        kept, _ = quality_gate(load_runs(path))
        kept = kept.reset_index(drop=True)
        fit = a3.fit_approach3(kept)
        rng = np.random.default_rng(args.seed)
        res = [rng.integers(0, len(kept), len(kept)) for _ in range(args.resamples)]
        c_max = float(kept["budget"].max())
        print(f"{path}: {len(kept)} runs, {args.resamples} resamples")
        f = {}
        for name, kw in (
            ("whole grid", dict(grid="small")),
            ("init alone", dict(grid=np.empty((0, 5)))),
            (f"checked {a3.BOOTSTRAP_CHECK:g}", dict(grid="small", check=a3.BOOTSTRAP_CHECK)),
        ):
            t = time.process_time()
            out = a3.fit_approach3_resamples(kept, res, init=fit, n_threads=1, **kw)  # type: ignore[arg-type]
            secs = time.process_time() - t
            q = np.array([[r.a, *(np.log(r.compute_optimal(k * c_max).N_opt) for k in (10, 100))] for r in out], float)
            f[name] = np.array([r.huber_loss for r in out])
            qs = "; ".join(
                f"{lab} [{lo:.4f}, {hi:.4f}]"
                for lab, (lo, hi) in zip(("a", "ln N 10x", "ln N 100x"), np.nanquantile(q, [0.05, 0.95], axis=0).T)
            )
            print(f"  {name:<13} {secs:6.2f} s CPU, starts used {out[0].n_starts:2d}; {qs}", flush=True)
        gap = (f["init alone"] - f["whole grid"]) / f["whole grid"]
        lower = np.sort(gap[gap > a3.CHECK_RTOL])[::-1]
        print(f"  the grid lower than init alone on {len(lower)} resamples (relative: {np.round(lower[:6], 6)})")


if __name__ == "__main__":
    main()
