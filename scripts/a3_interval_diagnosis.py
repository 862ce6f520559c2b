"""Why does Approach 3's carried interval (the studentized fast double) cover more or less than 90% on a study
design? The a3calibration study's true sweeps (same seeds), each with the fast double's internals kept (issue 20).

    OMP_NUM_THREADS=1 python scripts/a3_interval_diagnosis.py --setting cpu45-outliers --seed 21 --sweeps 200

Prints, per design: the carried interval's coverage and median width (a, ln N_opt at 10x / 100x), the same
studentized by a 3-MAD-clipped rms instead of the median-based scale, the real noise estimate against the true noise
beside the simulated sweeps' estimate against the noise they were drawn with, the jumps a sweep (drawn, missed by
the gate, flagged) beside the simulation's, and coverage at 10x by the gate's count. The internals mirror
``parametric_check.calibrated_half_widths``; the first sweep's half-widths are checked against it.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def clipped_rms(pred, losses, kept, n_params=5):
    """A 3-MAD-clipped rms of ln residuals (jumps, 15+ noise sds away, drop out entirely), consistent for normal
    noise (E[z^2 | |z| < 3] = 0.9733), with the same degrees-of-freedom factor as the median-based scale: (S,)."""
    with np.errstate(all="ignore"):
        r = np.where(kept, np.log(losses) - np.log(pred), np.nan)
        n = kept.sum(1)
        mad = 1.4826 * np.nanmedian(np.abs(r), axis=1)
        clip = np.where(np.abs(r) <= 3 * mad[:, None], r, np.nan)
        return np.sqrt(np.nanmean(clip**2, axis=1) / 0.9733) * np.sqrt(n / np.maximum(n - n_params, 1))


def internals(fit, runs, quantities, n_flagged, n_sims, seed, jump=(0.15, 0.25)):
    """``calibrated_half_widths``' level-1 and level-2 errors, noise estimates and gate counts, kept."""
    from analysis.uncertainty import parametric_check as pc

    rng = np.random.default_rng(seed)
    logN, logD = np.log(runs["N"].to_numpy(float)), np.log(runs["D"].to_numpy(float))
    budget = runs["budget"].to_numpy()
    law = pc.law_pieces(fit, logN, logD)
    n = len(runs) + n_flagged
    sd0 = pc.law_residual_sd(fit, runs, law.n_params)
    rate0 = (n_flagged + 1) / (n + 20)
    th0 = np.asarray(law.theta, float)[None, :]
    pred0 = law.predict(th0)
    ones = np.ones((1, len(runs)), bool)
    sd0r = float(clipped_rms(pred0, runs["loss"].to_numpy(float)[None, :], ones)[0])
    y0 = np.repeat(pred0, n_sims, 0)
    losses, kept = pc.simulate_each(y0, logN, budget, np.full(n_sims, sd0), np.full(n_sims, rate0), jump, rng, True)
    th1, ok1 = law.refit(losses, kept, np.repeat(th0, n_sims, axis=0))
    th1 = np.where(ok1[:, None], th1, np.nan)
    truth0 = {k: float(v) for k, v in quantities(fit).items()}
    names = list(truth0)
    lin = np.array([k == "a" for k in names])
    v0 = np.array([truth0[k] for k in names], float)
    e1 = pc._errors(quantities, law.build, th1, np.tile(v0, (n_sims, 1)), names, lin)
    good = np.isfinite(th1).all(1)
    safe = np.where(good[:, None], th1, th0)
    pred1 = law.predict(safe)
    sd1 = np.nan_to_num(pc._residual_sd(pred1, losses, kept, law.n_params), nan=sd0)
    k1 = (~kept).sum(1)
    losses2, kept2 = pc.simulate_each(pred1, logN, budget, sd1, (k1 + 1) / (len(runs) + 20), jump, rng, True)
    th2, ok2 = law.refit(losses2, kept2, safe)
    th2 = np.where((ok2 & good)[:, None], th2, np.nan)
    v1 = np.full((n_sims, len(names)), np.nan)
    for i in np.flatnonzero(good):
        v1[i] = np.where(lin, v0 + e1[i], v0 * np.exp(e1[i]))
    e2 = pc._errors(quantities, law.build, th2, v1, names, lin)
    pred2 = law.predict(np.where(np.isfinite(th2).all(1)[:, None], th2, safe))
    sd2 = pc._residual_sd(pred2, losses2, kept2, law.n_params)
    return dict(
        names=names,
        sd0=sd0,
        sd0r=sd0r,
        e1=e1,
        e2=e2,
        sd1=sd1,
        sd2=sd2,
        sd1r=clipped_rms(pred1, losses, kept),
        sd2r=clipped_rms(pred2, losses2, kept2),
        k1=k1,
        rate0=rate0,
    )


def carried(d, j, scale="mad"):
    """The carried half-width of quantity ``j``: studentized by the median-based scale (as the report) or by the
    clipped rms."""
    from analysis.uncertainty.parametric_check import calibrated_level, studentized

    t1, t2 = np.abs(d["e1"][:, j]), np.abs(d["e2"][:, j])
    if scale == "mad":
        s1, s2 = studentized(t1, t2, d["sd0"], d["sd1"], d["sd2"])
    else:
        s1, s2 = studentized(t1, t2, d["sd0r"], d["sd1r"], d["sd2r"])
    return calibrated_level(s1, s2, 0.9)[2]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--setting", required=True)
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--sweeps", type=int, default=100)
    p.add_argument("--sims", type=int, default=200)
    args = p.parse_args()
    from analysis.data.quality import quality_gate
    from analysis.fits.approach3 import fit_approach3
    from analysis.pipeline import CalibratedQuantities
    from analysis.studies.accuracy import LAWS
    from analysis.studies.calibrated import STUDY_SETTINGS
    from analysis.uncertainty.parametric_check import calibrated_half_widths

    s = STUDY_SETTINGS[args.setting]
    recs = []
    for i in range(args.sweeps):
        rng = np.random.default_rng([args.seed, 21, i])  # the a3calibration study's true sweeps and seeds
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            df = s.draw(rng)
            df["run_id"] = [f"run-{j:03d}" for j in range(len(df))]
            kept, flagged = quality_gate(df)
            kept = kept.reset_index(drop=True)
            try:
                fit = fit_approach3(kept, grid="small")
            except Exception:  # noqa: BLE001 - as the study: a true sweep the law cannot fit is left out
                continue
            c_max = float(kept["budget"].max())
            q = CalibratedQuantities([c_max * 10, c_max * 100])
            truth, est = q(LAWS[s.law]), q(fit)
            rng.integers(1 << 30)  # the study's single-loop seed
            n_flagged = int((flagged["check"] == "stalled").sum())
            seed = int(rng.integers(1 << 30))
            d = internals(fit, kept, q, n_flagged, args.sims, seed)
            if not recs:  # the mirror still computes what the report carries
                fd = calibrated_half_widths(fit, kept, q, n_flagged=n_flagged, n_sims=args.sims, seed=seed)
                mine = [carried(d, j) for j in range(len(d["names"]))]
                assert np.allclose(mine, [fd.half_widths[k] for k in d["names"]], rtol=1e-9), (mine, fd.half_widths)
        names = d["names"]
        d["err"] = np.array([est[k] - truth[k] if k == "a" else math.log(est[k] / truth[k]) for k in names])
        d["n_flagged"] = n_flagged
        d["jumped"] = int(df["jumped"].sum()) if "jumped" in df else 0
        d["missed"] = int(df.loc[df["run_id"].isin(kept["run_id"]), "jumped"].sum()) if "jumped" in df else 0
        recs.append(d)
    report(recs, args, s)


def report(recs, args, s) -> None:
    n_runs = len(s.design(np.random.default_rng(0)))
    print(f"{args.setting}: {len(recs)} true sweeps, seed {args.seed}, {args.sims} simulated sweeps each")
    for scale in ("mad", "rms"):
        cov, wid = [], []
        for j in range(3):
            h = np.array([carried(d, j, scale) for d in recs])
            e = np.array([abs(d["err"][j]) for d in recs])
            cov.append(np.mean(e <= h))
            wid.append(np.median(2 * h))
        label = "carried (median-based scale)" if scale == "mad" else "studentized by a clipped rms"
        covs, wids = " / ".join(f"{c:.1%}" for c in cov), " / ".join(f"{w:.3f}" for w in wid)
        print(f"  {label:<30} coverage {covs}; width {wids}")
    sd0 = np.array([d["sd0"] for d in recs]) / s.noise
    sim = np.array([np.nanmedian(d["sd1"]) / d["sd0"] for d in recs])
    print(
        f"  noise estimate / true noise: real sweeps median {np.median(sd0):.3f} (relative sd "
        f"{sd0.std() / sd0.mean():.3f}); simulated sweeps' / theirs median {np.median(sim):.3f}"
    )
    jumped, missed, flag = (np.mean([d[k] for d in recs]) for k in ("jumped", "missed", "n_flagged"))
    rate = np.mean([d["rate0"] for d in recs])
    k1 = np.mean([d["k1"].mean() for d in recs])
    print(
        f"  jumps a sweep: real {jumped:.2f} drawn, {missed:.2f} missed by the gate, {flag:.2f} flagged of {n_runs}; "
        f"simulated: rate {rate:.4f} on the kept runs, {k1:.2f} flagged (thinning the kept design again)"
    )
    fl = np.array([d["n_flagged"] for d in recs])
    h = np.array([carried(d, 1) for d in recs])
    c = np.array([abs(d["err"][1]) for d in recs]) <= h
    groups = [(f"{k}", fl == k) for k in (0, 1, 2)] + [("3+", fl >= 3)]
    by = ", ".join(f"{g} {np.mean(c[m]):.0%} ({m.sum()})" for g, m in groups if m.sum())
    print(f"  coverage at 10x by the gate's count: {by}")


if __name__ == "__main__":
    main()
