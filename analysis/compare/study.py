"""Is the multiplier right? Pairs of sweeps drawn from known laws (constant multipliers 1x, 1.5x, 3x, and recipes
with different exponents) under the noise measured on real CPU sweeps, compared by the same code as ``compare``:
bias of M (with its Monte Carlo standard error), coverage of its interval and its width, for the separate fits' M,
the shared law's M and the M ``compare`` carries (the shared law's when the test does not reject sharing, else the
separate fits'), and the shared-exponent test's false-alarm and detection rates.

    python -m analysis.compare.study --pairs 70 --n-boot 40 --settings "1.0x,1.5x,3x"

Noise (additive, in nats): a seed standard deviation of ``--sd`` (0.03; 0.02-0.05 between seeds on CPU) and, with
probability ``--outlier-rate`` (1 in 20), a run that ends ``--outlier`` (0.2) nats high.

A recipe B with M times A's compute efficiency is A's law evaluated at (sN, tD) with s t = M: then
L_B*(C) = L_A*(M C) exactly, for every C. The different-exponents recipe has α, β larger by 0.06 and A, B rescaled
so both laws agree at A's optimum at the middle budget (settings with gaps 0.01, 0.02, 0.03 and 0.06).

Speed: the fits are the tool's (Approach 3 of ``analysis.fits.approach3``: the full-data fit from the small grid of
starts, batched over all the study's sweeps in one L-BFGS; bootstrap refits warm-started from the full-data fit). The
tool's own bootstrap adds the small grid of starts to every resample; here each resample starts from the full-data
optimum alone (33x fewer problems), which on these well-posed designs lands on the same optimum. Frontier, multiplier,
percentile interval and the test are ``analysis.compare``'s own functions.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import pandas as pd

from analysis.compare.multiplier import log_multiplier, multiplier_samples
from analysis.compare.shared_exponent import (
    ALPHA,
    shared_bootstrap,
    shared_exponent_test,
    shared_log_multiplier,
    shared_undetermined,
    shared_vector,
)
from analysis.fits.approach3 import fit_approach3_resamples
from analysis.laws.forms import ParametricLaw
from analysis.studies.synthetic import CHINCHILLA, isoflop_design

BUDGETS = (1e17, 3e17, 1e18, 3e18, 1e19)  # a machine-sized ladder: five budgets over two decades
TARGETS = (1e18, 1e20)  # inside the range, and 10x beyond the largest budget
N_PER_BUDGET = 7
SPAN = 6.0


def law_with_multiplier(law, m: float, name: str) -> ParametricLaw:
    s = np.sqrt(m)
    return ParametricLaw(
        name=name,
        E=law.E,
        A=law.A * s ** (-law.alpha),
        B=law.B * s ** (-law.beta),
        alpha=law.alpha,
        beta=law.beta,
        source="synthetic",
        flops_convention="6n",
        params_convention="synthetic",
    )


def law_with_exponents(law, d: float, c_ref: float, name: str) -> ParametricLaw:
    a = law.compute_optimal(c_ref)
    al, be = law.alpha + d, law.beta + d
    return ParametricLaw(
        name=name,
        E=law.E,
        A=law.A * float(a.N_opt) ** d,
        B=law.B * float(a.D_opt) ** d,
        alpha=al,
        beta=be,
        source="synthetic",
        flops_convention="6n",
        params_convention="synthetic",
    )


def settings(base=CHINCHILLA):
    return {
        "1.0x": law_with_multiplier(base, 1.0, "m1"),
        "1.5x": law_with_multiplier(base, 1.5, "m1.5"),
        "3x": law_with_multiplier(base, 3.0, "m3"),
        **{f"exponents +{d:.2f}": law_with_exponents(base, d, 1e18, f"exp{d}") for d in (0.01, 0.02, 0.03, 0.06)},
    }


ESTIMATORS = ("separate", "shared", "carried")


def summarise(m_hat, lo, hi, truth) -> dict:
    """Bias of M as exp(mean ln(M_hat / M)) - 1 with its Monte Carlo standard error, median bias, coverage of the
    interval and its median width (hi / lo) over pairs; infinite estimates (B past A's floor) are left out of the
    bias and counted."""
    r = np.log(m_hat / truth)
    ok = np.isfinite(r)
    g = float(np.mean(r[ok])) if ok.any() else np.nan
    se = float(np.exp(g) * np.std(r[ok], ddof=1) / np.sqrt(ok.sum())) if ok.sum() > 1 else np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dict(
            M_true=float(truth),
            bias=float(np.expm1(g)),
            bias_se=se,
            median_bias=float(np.expm1(np.median(r[ok]))) if ok.any() else np.nan,
            coverage=float(np.mean((lo <= truth) & (truth <= hi))),
            width=float(np.nanmedian(hi / lo)),
            n_inf=int((~ok).sum()),
        )


def noisy(design: pd.DataFrame, law, rng, sd: float, rate: float, jump: float) -> np.ndarray:
    true = np.asarray(law.predict(design["N"].to_numpy(float), design["D"].to_numpy(float)), float)
    return true + sd * rng.standard_normal(len(true)) + jump * (rng.random(len(true)) < rate)


def _frame(design, loss):
    df = design.assign(loss=loss)
    df.attrs.update(flops_convention="6n", params_convention="synthetic")
    return df


def run_setting(label, law_b, *, pairs, n_boot, sd, rate, jump, level, seed, base=CHINCHILLA) -> list[dict]:
    rng = np.random.default_rng(seed)
    design = isoflop_design(BUDGETS, N_PER_BUDGET, SPAN, base)[["budget", "C", "N", "D"]]
    n = len(design)
    grid = np.unique(np.concatenate([np.geomspace(1e14, 1e23, 240), TARGETS]))
    at = np.searchsorted(grid, TARGETS)
    truth = np.exp(log_multiplier(grid, base.compute_optimal(grid).loss, law_b.compute_optimal(grid).loss, at))
    # every sweep of the setting (pair p: A is sweep 2p, B is 2p + 1) stacked, so that all full-data fits are one
    # batched L-BFGS: sweep j's "resample" is its own rows
    losses = np.stack([noisy(design, base if j % 2 == 0 else law_b, rng, sd, rate, jump) for j in range(2 * pairs)])
    stacked = pd.concat([_frame(design, losses[j]) for j in range(2 * pairs)], ignore_index=True)
    stacked.attrs.update(flops_convention="6n", params_convention="synthetic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fulls = fit_approach3_resamples(
            stacked, [np.arange(j * n, (j + 1) * n) for j in range(2 * pairs)], grid="small", n_threads=1
        )
    est: dict = {e: ([], [], []) for e in ESTIMATORS}  # estimator -> (M, lo, hi) per pair, at TARGETS
    p_vals: list = []
    carried: list = []
    q = (1 - level) / 2

    def put(e, m, s):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est[e][0].append(m)
            est[e][1].append(np.exp(np.nanquantile(s, q, axis=0)))
            est[e][2].append(np.exp(np.nanquantile(s, 1 - q, axis=0)))

    for p in range(pairs):
        fr = []
        for j in (2 * p, 2 * p + 1):
            df = _frame(design, losses[j])
            idx = [rng.integers(0, n, n) for _ in range(n_boot)]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                refits = fit_approach3_resamples(df, idx, grid=np.empty((0, 5)), init=fulls[j], n_threads=1)
                boot = np.array([np.asarray(r.compute_optimal(grid).loss, float) for r in refits])
            fr.append((np.asarray(fulls[j].compute_optimal(grid).loss, float), boot, df))
        (la, ba, da), (lb, bb, db) = fr
        sep_m = np.exp(log_multiplier(grid, la, lb, at))
        sep_s = multiplier_samples(grid, ba, bb, at)
        put("separate", sep_m, sep_s)
        try:
            t = shared_exponent_test([da, db], [fulls[2 * p].log_params, fulls[2 * p + 1].log_params])
        except (ValueError, ArithmeticError):
            t = None
        p_vals.append(t.p_value if t is not None else np.nan)
        if t is not None:
            sh_s = shared_log_multiplier(shared_bootstrap([da, db], t, n_boot, seed + p), 1)
            sh_m = float(np.exp(shared_log_multiplier(shared_vector(t), 1)))
            ok = np.isfinite(sh_s).sum() >= n_boot // 2 and not shared_undetermined(t)
        else:
            sh_s, sh_m, ok = np.full(n_boot, np.nan), np.nan, False
        put("shared", np.full(len(TARGETS), sh_m), np.repeat(sh_s[:, None], len(TARGETS), axis=1))
        use = ok and t is not None and t.p_value >= ALPHA  # what compare carries
        carried.append(use)
        e = "shared" if use else "separate"
        est["carried"][0].append(est[e][0][-1])
        est["carried"][1].append(est[e][1][-1])
        est["carried"][2].append(est[e][2][-1])
    rows = []
    base_row = dict(
        setting=label,
        pairs=pairs,
        separate_rate=float(np.nanmean(np.array(p_vals) < ALPHA)),
        shared_carried=float(np.mean(carried)),
    )
    for e in ESTIMATORS:
        m_hat, lo, hi = (np.array(v, float) for v in est[e])
        for i, c in enumerate(TARGETS):
            rows.append(dict(base_row, estimator=e, C=c, **summarise(m_hat[:, i], lo[:, i], hi[:, i], truth[i])))
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m analysis.compare.study", description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=70, help="pairs of sweeps a setting (default 70)")
    ap.add_argument("--n-boot", type=int, default=100, help="bootstrap resamples a sweep (default 100)")
    ap.add_argument("--sd", type=float, default=0.03, help="seed noise, nats (default 0.03)")
    ap.add_argument("--outlier-rate", type=float, default=0.05, help="share of runs that end high (default 0.05)")
    ap.add_argument("--outlier", type=float, default=0.2, help="how much higher, nats (default 0.2)")
    ap.add_argument("--level", type=float, default=0.9)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--settings", default="", help="comma-separated subset of: " + ", ".join(settings()))
    ap.add_argument("--csv", default="", help="also write the table here")
    a = ap.parse_args(argv)
    if a.pairs < 2 or a.n_boot < 10:
        print(f"error: --pairs={a.pairs} must be >= 2 and --n-boot={a.n_boot} >= 10", file=sys.stderr)
        return 2
    chosen = settings()
    if a.settings:
        names = [s.strip() for s in a.settings.split(",")]
        bad = [s for s in names if s not in chosen]
        if bad:
            print(f"error: --settings {bad}: allowed {list(chosen)}", file=sys.stderr)
            return 2
        chosen = {k: chosen[k] for k in names}
    rows: list = []
    t0 = time.perf_counter()
    pd.set_option("display.width", 200)
    fmt = lambda v: f"{v:.3g}"  # noqa: E731
    for i, (label, law_b) in enumerate(chosen.items()):
        t = time.perf_counter()
        new = run_setting(
            label,
            law_b,
            pairs=a.pairs,
            n_boot=a.n_boot,
            sd=a.sd,
            rate=a.outlier_rate,
            jump=a.outlier,
            level=a.level,
            seed=a.seed + 100 * i,
        )
        for r in new:
            r["seconds"] = round(time.perf_counter() - t, 1)
        rows += new
        print(pd.DataFrame(new).to_string(index=False, float_format=fmt), flush=True)
    df = pd.DataFrame(rows)
    print()
    print(df.drop(columns=["seconds"]).to_string(index=False, float_format=fmt))
    const = df[df["setting"].str.endswith("x")]
    if len(const):
        for e in ESTIMATORS:
            for c in TARGETS:
                g = const[(const["estimator"] == e) & (const["C"] == c)]
                n = int(g["pairs"].sum())
                cov = float((g["coverage"] * g["pairs"]).sum() / n)
                print(f"pooled over the {n} constant-multiplier pairs: {e} M, coverage at C = {c:.0e}: {cov:.3f}")
        g = const.drop_duplicates("setting")
        n = int(g["pairs"].sum())
        print(
            f"false-alarm rate of the shared-exponent test (p < {ALPHA}): "
            f"{float((g['separate_rate'] * g['pairs']).sum() / n):.3f} over {n} pairs"
        )
    for _, r in df[~df["setting"].str.endswith("x")].drop_duplicates("setting").iterrows():
        print(f"detection rate, {r['setting']}: {r['separate_rate']:.3f} over {r['pairs']} pairs")
    print(
        f"design: budgets {BUDGETS}, {N_PER_BUDGET} sizes each over x{SPAN} around N_opt; noise sd {a.sd} nats, "
        f"{a.outlier_rate:.0%} of runs +{a.outlier} nats; {a.n_boot} resamples a sweep; bias = exp(mean ln(M_hat/M))"
        f" - 1 with its Monte Carlo SE; {time.perf_counter() - t0:.0f} s"
    )
    if a.csv:
        df.to_csv(a.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
