"""Time ``python -m analysis report`` section by section on a synthetic 45-run sweep (issue 19 item 5).

    OMP_NUM_THREADS=1 python scripts/bench_report.py [--sweep DIR] [--out DIR] [--budgets 9] [--sizes 5]

Writes (unless ``--sweep`` names one) a sweep like the default CPU sweep, 9 IsoFLOP budgets over 16x with 5 sizes
each (45 runs), through tests/synthetic_sweep.py, exactly as the
trainer writes run folders; then writes the report and prints each section's wall time and the headline intervals
(Approach 2's a and N_opt at 10x, Approach 3's and Kaplan's N_opt at 10x), so two versions can be compared. Timings
are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from analysis.pipeline import analyse, fit_intervals, qname  # noqa: E402
from analysis.report.figures import render_early  # noqa: E402
from analysis.report.markdown import writable_dir, write_analysis  # noqa: E402
from analysis.sections import Sections, progress_to_stderr  # noqa: E402
from tests import synthetic_sweep  # noqa: E402


def write_design(root: Path, n_budgets: int, n_sizes: int, noise: float, seed: int) -> Path:
    """9 budgets over 16x (1e13 x 2^(k/2)) x 5 sizes nearest each budget's optimum: 45 runs, each its own folder
    (run ids carry the budget to 3 figures: ``write_sweep``'s one-figure ids would merge 1e13 and 1.41e13)."""
    rng = np.random.default_rng(seed)
    for k in range(n_budgets):
        budget = float(f"{1e13 * 2 ** (k / 2):.3g}")
        for n_layer, d_model in synthetic_sweep.sizes_for_budget(budget, n_sizes):
            synthetic_sweep.write_run(
                root, "bench_report", (n_layer, d_model), budget, noise=noise, rng=rng, seed=seed,
                run_id=f"L{n_layer}_d{d_model}_C{budget:.2e}".replace("+", ""),
            )  # fmt: skip
    return root


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", type=Path, default=None, help="an existing sweep (default: write a synthetic one)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: a fresh temporary one)")
    p.add_argument("--budgets", type=int, default=9)
    p.add_argument("--sizes", type=int, default=5)
    p.add_argument("--noise", type=float, default=0.01, help="log-normal loss noise of the synthetic runs")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic runs")
    p.add_argument("--boot-seed", type=int, default=0, help="the report's bootstrap seed")
    p.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="worker processes (default: every core); 1 makes the CPU column the whole CPU time, which shared "
        "cores do not inflate as they inflate wall time",
    )
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    sweep = args.sweep or write_design(tmp / "sweep", args.budgets, args.sizes, args.noise, args.seed)
    out = args.out or tmp / "report"
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; sweep {sweep}"
    )
    warnings.filterwarnings("ignore", message="run '.*' excluded")  # the synthetic sweep's five broken runs
    sections = Sections(progress_to_stderr)
    t0 = time.perf_counter()
    out = writable_dir(out)
    an = analyse(  # as write_report does
        sweep,
        seed=args.boot_seed,
        sections=sections,
        calibration_cache=out,
        n_jobs=args.jobs,
        figures_beside=render_early,
    )
    write_analysis(an, out)
    total = time.perf_counter() - t0
    cpu = sum(sections.cpu_seconds.values())
    print(f"report: {total:.1f} s wall, {cpu:.1f} s CPU in this process (wall, CPU per section below)")
    for name, s in sorted(sections.seconds.items(), key=lambda kv: -kv[1]):
        print(f"  {s:7.1f} s  {sections.cpu_seconds[name]:7.1f} s  {name}")
    # headline intervals, so a faster version can be checked against a slower one
    b = an.budgets[0]
    for key in ("approach2", "approach3", "kaplan"):
        iv = fit_intervals(an, key)
        fit = an.allocators.get(key)
        if fit is None:
            continue
        n = float(np.asarray(fit.compute_optimal(b).N_opt))
        lo, hi = iv.get(qname("N_opt", b), (np.nan, np.nan))
        line = f"{key:>10}: N_opt@{b:.1e} = {n:.4g} [{lo:.4g}, {hi:.4g}]"
        if "a" in iv:
            line += f"; a [{iv['a'][0]:.4f}, {iv['a'][1]:.4f}]"
        print(line)


if __name__ == "__main__":
    main()
