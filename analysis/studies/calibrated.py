"""Does the per-sweep calibration hold against a known truth? ``python -m analysis.studies percalibration``.

Issue 20 item 3: for each setting (the calibration study's designs, and designs with the heavy tail of real runs),
draw "true" sweeps from a known law, pass each through the quality gate as ``analysis.load_runs`` does, and then do
what the report does, from the sweep's own fits and never from the truth: fit Approach 2 (the report's 'auto'
minima) and Approach 3 (the generator's shape), run ``analysis.uncertainty.calibration.calibrate_approach2``, and
carry its interval. Measured against the law's true a and N_opt at 10x and 100x the largest budget: the coverage of
the carried interval, its median width, and the same for the interval the report carried before (the run bootstrap,
resampling runs within each budget, ``isoflop_power_law_interval`` scheme "runs") and for the plain t interval.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.studies.accuracy import CALIBRATION_SETTINGS, LAWS, Setting
from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name


@dataclass(frozen=True)
class OutlierSetting:
    """A ``Setting`` whose runs, with probability ``jump_rate`` each, end U(jump_lo, jump_hi) nats high (a run that
    stalled, as about one in twenty real CPU runs does), before the quality gate."""

    base: Setting
    jump_rate: float = 0.05
    jump_lo: float = 0.15
    jump_hi: float = 0.25

    @property
    def name(self) -> str:
        return f"{self.base.name} + {self.jump_rate:.0%} jumps {self.jump_lo:g}-{self.jump_hi:g}"

    def __getattr__(self, k):  # the design's fields (law, c_hi, ...) are the base setting's
        return getattr(self.base, k)

    def draw(self, rng: np.random.Generator) -> pd.DataFrame:
        df = self.base.draw(rng)
        jump = rng.random(len(df)) < self.jump_rate
        df["loss"] = df["loss"] + jump * rng.uniform(self.jump_lo, self.jump_hi, len(df))
        df["jumped"] = jump
        return df


# The default CPU sweep of issue 19: 9 budgets over 16x, 5 sizes a budget over 6x, recentred on each budget's
# minimum (jitter), seeds 0.02-0.05 nats apart (0.6% of a loss near 4 is 0.025 nats), one run in twenty ~0.2 high.
CPU45 = Setting(
    "cpu45",
    "chinchilla",
    noise=0.006,
    n_budgets=9,
    c_lo=1e17,
    c_hi=1.6e18,
    n_per_budget=5,
    span=2.5,
    offset=1.0,
    drift=0.0,
    jitter=0.2,
)
# The same design noisier and off centre (a guess 1.3x high drifting by 0.1), with twice the stalled runs.
CPU45_ROUGH = Setting(
    "cpu45 rough",
    "chinchilla",
    noise=0.01,
    n_budgets=9,
    c_lo=1e17,
    c_hi=1.6e18,
    n_per_budget=5,
    span=2.5,
    offset=1.3,
    drift=0.1,
    jitter=0.3,
)
STUDY_SETTINGS = {
    **CALIBRATION_SETTINGS,
    "cpu45-outliers": OutlierSetting(CPU45, jump_rate=0.05),
    "cpu45-rough-outliers": OutlierSetting(CPU45_ROUGH, jump_rate=0.10),
    "default-outliers": OutlierSetting(CALIBRATION_SETTINGS["default"], jump_rate=0.05),
}


def true_sweep(setting, rng, factors=(10.0, 100.0), grid="small"):
    """One true sweep of ``setting`` as the study sees it: (kept runs of the budgets Approach 2 used, the gate's
    flagged runs, the Approach 2 fit, the Approach 3 fit or None, the targets ``factors`` x the largest budget, the
    truth {"a", N_opt name: value})."""
    from analysis.data.quality import quality_gate
    from analysis.fits.approach2 import fit_approach2
    from analysis.fits.approach3 import fit_approach3

    df = setting.draw(rng)
    df["run_id"] = [f"run-{i:03d}" for i in range(len(df))]
    kept, flagged = quality_gate(df)
    kept = kept.reset_index(drop=True)
    a2 = fit_approach2(kept)
    used = a2.per_budget.loc[a2.per_budget["used"], "budget"].to_numpy()
    kept = kept[np.isin(kept["budget"], used)].reset_index(drop=True)
    try:
        law = fit_approach3(kept, grid=grid)
    except Exception:  # noqa: BLE001 - no parametric fit: the calibration's parabola generator
        law = None
    c_max = float(kept["budget"].max())
    targets = [c_max * f for f in factors]
    law_true = LAWS[setting.law]
    truth = {"a": law_true.a, **{n_opt_name(t): float(law_true.compute_optimal(t).N_opt) for t in targets}}
    return kept, flagged, a2, law, targets, truth


def one_sweep(
    setting, rng, factors=(10.0, 100.0), n_sims: int = 200, runs_resamples: int = 100, grid="small"
) -> list[dict]:
    """One true sweep: the rows (method, quantity, lo, hi, truth, covered, width) for the calibrated interval
    ("carried"), the plain t interval and the run bootstrap, plus the calibration's choice and time."""
    from analysis.uncertainty.calibration import calibrate_approach2

    kept, flagged, a2, law, targets, truth = true_sweep(setting, rng, factors, grid)
    cal = calibrate_approach2(
        kept, targets, a2=a2, law=law, n_flagged=int((flagged["check"] == "stalled").sum()), n_sims=n_sims, runs_sims=0
    )
    t = isoflop_power_law_interval(kept, targets, method=a2.estimator, scheme="t")
    runs = isoflop_power_law_interval(
        kept, targets, method=a2.estimator, scheme="runs", n_resamples=runs_resamples, seed=int(rng.integers(1 << 30))
    )
    label = {"a": "a", **{n_opt_name(t): f"N_opt@{f:g}x" for t, f in zip(targets, factors)}}
    rows = []
    for method, iv in (("carried", cal.apply(t)), ("t", t), ("runs (before)", runs)):
        for q, true in truth.items():
            lo, hi = iv.interval(q)
            width = (hi - lo) if q == "a" else (math.log(hi / lo) if lo > 0 and hi > 0 else np.nan)
            rows.append(
                dict(
                    method=method,
                    quantity=label[q],
                    lo=lo,
                    hi=hi,
                    truth=true,
                    covered=bool(lo <= true <= hi),
                    width=width,
                    carried=cal.carried,
                    factor=cal.factors.get(q, np.nan),
                    seconds=cal.seconds,
                    n_flagged=len(flagged),
                )
            )
    return rows


def study(
    setting, n_sweeps: int, seed: int, n_sims: int = 200, runs_resamples: int = 100, csv: str | None = None
) -> pd.DataFrame:
    rows = []
    for i in range(n_sweeps):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new = [
                dict(sweep=i, **r)
                for r in one_sweep(
                    setting, np.random.default_rng([seed, 20, i]), n_sims=n_sims, runs_resamples=runs_resamples
                )
            ]
        rows.extend(new)
        if csv:
            pd.DataFrame(new).to_csv(csv, mode="w" if i == 0 else "a", header=i == 0, index=False)
    return pd.DataFrame(rows)


def summary(detail: pd.DataFrame) -> pd.DataFrame:
    """Per (method, quantity): coverage, its binomial s.e., median width (ln(hi/lo) for N_opt, hi - lo for a)."""
    g = detail.groupby(["method", "quantity"], sort=False)
    out = g.agg(coverage=("covered", "mean"), n=("covered", "size"), median_width=("width", "median"))
    out["se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n"])
    return out.reset_index()


def add_parser(sub) -> None:
    c = sub.add_parser("percalibration", help="coverage of the per-sweep calibrated interval against a known truth")
    c.add_argument("--settings", nargs="+", choices=sorted(STUDY_SETTINGS), default=sorted(STUDY_SETTINGS))
    c.add_argument("--sweeps", type=int, default=200, help="true sweeps a setting")
    c.add_argument("--sims", type=int, default=200, help="simulated sweeps a calibration")
    c.add_argument("--resamples", type=int, default=100, help="run-bootstrap resamples a sweep")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--csv", default=None, help="also write every sweep's intervals to <csv>.<setting>.csv")


def run(args) -> None:
    for name in args.settings:
        t0 = time.perf_counter()
        s = STUDY_SETTINGS[name]
        csv = f"{args.csv}.{name}.csv" if args.csv else None
        detail = study(s, args.sweeps, args.seed, n_sims=args.sims, runs_resamples=args.resamples, csv=csv)
        carried = detail.drop_duplicates("sweep")["carried"].value_counts().to_dict()
        secs = detail.drop_duplicates("sweep")["seconds"].median()
        print(
            f"\n{name}: {getattr(s, 'name', name)}; {args.sweeps} true sweeps, seed {args.seed}, {args.sims} "
            f"simulations a calibration; carried {carried}; calibration median {secs:.2f} s; "
            f"{time.perf_counter() - t0:.0f} s"
        )
        print(f"{'method':<14} {'quantity':<10} {'coverage':>8} {'± se':>6} {'median width':>12}")
        for r in summary(detail).itertuples():
            print(f"{r.method:<14} {r.quantity:<10} {r.coverage:8.1%} {r.se:6.1%} {r.median_width:12.3f}")
