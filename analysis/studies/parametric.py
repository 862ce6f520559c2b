"""Does Approach 3's or Kaplan's single-loop interval hold against a known truth?
``python -m analysis.studies a3calibration [--law kaplan]``.

For each setting of ``percalibration`` (``analysis.studies.calibrated.STUDY_SETTINGS``), draw true sweeps from a known
law, pass each through the quality gate, fit the law (Approach 3: small grid + warm start, as the bootstrap refits;
Kaplan: ``fit_kaplan``) and carry ``analysis.uncertainty.parametric_check``'s interval (estimate ± the simulated
half-width), computed from the sweep's own fit and noise model, never from the truth. Against the law's true a and
N_opt at 10x and 100x the largest budget: its coverage and median width, beside the run bootstrap's (percentile, runs
resampled: what the report carries without it).

Kaplan's form fitted to a Chinchilla truth is misspecified, so its coverage of the Chinchilla truth says nothing of its
interval: with ``--law kaplan`` each setting's truth is a Kaplan law, the one fitted once to the setting's noiseless
Chinchilla losses on its design (``KaplanTruth``), and the true sweeps are drawn from it with the setting's design,
noise and outliers.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.studies.accuracy import LAWS
from analysis.studies.calibrated import STUDY_SETTINGS, summary


@dataclass(frozen=True)
class KaplanTruth:
    """A setting (``Setting`` or ``OutlierSetting``) whose true losses come from the Kaplan law ``law`` (a
    ``KaplanJointLaw``) instead of its own law: the same design, log-normal noise and jumps."""

    setting: Any
    law: Any

    @property
    def name(self) -> str:
        return f"{getattr(self.setting, 'name', '')}, truth: Kaplan fitted to its noiseless losses"

    @classmethod
    def of(cls, setting, seed: int = 0) -> KaplanTruth:
        """The Kaplan law fitted once to ``setting``'s noiseless losses on one draw of its design, by least squares (the
        truth of every measurement so far; the misspecification residuals are no noise to be robust against)."""
        from analysis.fits.kaplan import fit_kaplan

        base = getattr(setting, "base", setting)
        df = base.design(np.random.default_rng(seed))
        df["C"] = 6.0 * df["N"] * df["D"]
        df["loss"] = LAWS[base.law].predict(df["N"].to_numpy(), df["D"].to_numpy())
        return cls(setting, fit_kaplan(df, huber=None).law)

    def draw(self, rng: np.random.Generator) -> pd.DataFrame:
        base = getattr(self.setting, "base", self.setting)
        df = base.design(rng)
        df["C"] = 6.0 * df["N"] * df["D"]
        df["loss_true"] = self.law.predict(df["N"].to_numpy(), df["D"].to_numpy())
        df["loss"] = df["loss_true"] * np.exp(base.noise * rng.standard_normal(len(df)))
        rate = float(getattr(self.setting, "jump_rate", 0.0))
        if rate > 0:
            jump = rng.random(len(df)) < rate
            df["loss"] = df["loss"] + jump * rng.uniform(self.setting.jump_lo, self.setting.jump_hi, len(df))
        df.attrs.update(flops_convention="6n", params_convention="synthetic")
        return df


def one_sweep(
    setting, rng, n_sims: int, n_resamples: int, factors=(10.0, 100.0), with_single: bool = True
) -> list[dict]:
    """One true sweep's intervals (method, quantity, lo, hi, truth, covered, width); ``setting`` a
    ``KaplanTruth`` fits and judges Kaplan's law, any other Approach 3."""
    from analysis.data.quality import quality_gate
    from analysis.fits.approach3 import fit_approach3
    from analysis.fits.kaplan import fit_kaplan
    from analysis.pipeline import CalibratedQuantities, qname
    from analysis.uncertainty.parametric_check import calibrated_half_widths, half_widths
    from analysis.uncertainty.resampling import bootstrap
    from analysis.uncertainty.sim_noise import noise_model

    df = setting.draw(rng)
    df["run_id"] = [f"run-{i:03d}" for i in range(len(df))]
    kept, flagged = quality_gate(df)
    kept = kept.reset_index(drop=True)
    kaplan = isinstance(setting, KaplanTruth)
    with_single = with_single and not kaplan  # the plain single loop (noise about parabolas) is Approach 3's
    fit = fit_kaplan(kept) if kaplan else fit_approach3(kept, grid="small")
    c_max = float(kept["budget"].max())
    q = CalibratedQuantities([c_max * f for f in factors])
    law_true = setting.law if kaplan else LAWS[setting.law]
    truth, est = q(law_true), q(fit)
    label = {"a": "a", **{qname("N_opt", c_max * f): f"N_opt@{f:g}x" for f in factors}}
    t0 = time.perf_counter()
    seed_single = int(rng.integers(1 << 30))
    h: dict[str, float] = {}
    if with_single:  # the plain single loop as the report showed it before (noise in nats about parabolas)
        noise = noise_model(kept, int((flagged["check"] == "stalled").sum()))
        h, _ = half_widths(fit, kept, q, noise, n_sims=n_sims, seed=seed_single)
    seconds = time.perf_counter() - t0
    fd = calibrated_half_widths(
        fit,
        kept,
        q,
        n_flagged=int((flagged["check"] == "stalled").sum()),
        n_sims=n_sims,
        seed=int(rng.integers(1 << 30)),
    )
    seconds_fd = time.perf_counter() - t0 - seconds
    ivs: dict[str, dict[str, tuple[float, float]]] = {
        **({"single loop": {}} if with_single else {}),
        "single loop, law noise": {},
        "fast double (carried)": {},
        "run bootstrap": {},
    }
    for name, hw in (
        ("single loop", h),
        ("single loop, law noise", fd.single_loop),
        ("fast double (carried)", fd.half_widths),
    ):
        if name not in ivs:
            continue
        for k, v in est.items():
            ivs[name][k] = (v - hw[k], v + hw[k]) if k == "a" else (v * math.exp(-hw[k]), v * math.exp(hw[k]))
    if n_resamples:
        kw: dict[str, Any] = dict(n_resamples=n_resamples, seed=int(rng.integers(1 << 30)), quantities=q, result=fit)
        b = bootstrap(fit_kaplan if kaplan else fit_approach3, kept, n_jobs=1, **kw)
        ivs["run bootstrap"] = {k: b.interval(k) for k in est}
    rows = []
    for method, iv in ivs.items():
        for k, (lo, hi) in iv.items():
            width = (hi - lo) if k == "a" else (math.log(hi / lo) if lo > 0 and hi > 0 else np.nan)
            covered = bool(lo <= truth[k] <= hi)
            rows.append(
                dict(method=method, quantity=label[k], lo=lo, hi=hi, truth=truth[k], covered=covered, width=width)
                | dict(seconds=seconds, seconds_fd=seconds_fd, n_sims=fd.n_sims, level=fd.levels.get(k, np.nan))
            )
    return rows


def add_parser(sub) -> None:
    c = sub.add_parser(
        "a3calibration", help="coverage of Approach 3's (or Kaplan's) single-loop interval against a known truth"
    )
    c.add_argument(
        "--law",
        choices=("approach3", "kaplan"),
        default="approach3",
        help="the law fitted and judged; kaplan: true sweeps drawn from the Kaplan law fitted once to each "
        "setting's noiseless truth on its design (Kaplan fitted to a Chinchilla truth is misspecified)",
    )
    c.add_argument("--settings", nargs="+", choices=sorted(STUDY_SETTINGS), default=sorted(STUDY_SETTINGS))
    c.add_argument("--sweeps", type=int, default=100, help="true sweeps a setting")
    c.add_argument("--sims", type=int, default=200, help="simulated sweeps a single-loop interval")
    c.add_argument("--resamples", type=int, default=100, help="run-bootstrap resamples a sweep (0: none)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument(
        "--no-single",
        action="store_true",
        help="leave out the plain single loop (noise about parabolas, what the report showed before); the same "
        "true sweeps and seeds as with it",
    )


def run(args) -> None:
    for name in args.settings:
        t0 = time.perf_counter()
        s = STUDY_SETTINGS[name]
        if args.law == "kaplan":
            s = KaplanTruth.of(s, args.seed)
            print(f"{name}: true Kaplan law {s.law}", flush=True)
        rows = []
        for i in range(args.sweeps):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    new = one_sweep(
                        s,
                        np.random.default_rng([args.seed, 21, i]),
                        args.sims,
                        args.resamples,
                        with_single=not args.no_single,
                    )
                except Exception:  # noqa: BLE001 - a true sweep the law cannot fit: counted below
                    continue
            rows += [dict(sweep=i, **r) for r in new]
        detail = pd.DataFrame(rows)
        secs = detail.drop_duplicates("sweep")["seconds"].median()
        secs_fd = detail.drop_duplicates("sweep")["seconds_fd"].median()
        lv = detail[detail["method"] == "fast double (carried)"].groupby("quantity")["level"].median().round(3)
        print(
            f"\n{name}: {getattr(s, 'name', name)}; {detail['sweep'].nunique()} of {args.sweeps} true sweeps fitted, "
            f"seed {args.seed}, {args.sims} simulated sweeps an interval (median {secs:.2f} s single loop, "
            f"{secs_fd:.2f} s fast double; its median level {lv.to_dict()}); {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        print(f"{'method':<22} {'quantity':<10} {'coverage':>8} {'± se':>6} {'median width':>12}")
        for r in summary(detail).itertuples():
            print(f"{r.method:<22} {r.quantity:<10} {r.coverage:8.1%} {r.se:6.1%} {r.median_width:12.3f}", flush=True)
