"""Synthetic-truth studies of the fitting side's accuracy: ``python -m analysis.studies estimators|calibration``.

Synthetic truth is the arbiter (issue 6): sweeps are drawn from a known law, so the exponent a of N_opt ∝ C^a
(a = β/(α+β), Hoffmann et al. 2022 Appendix D.2) and N_opt at any budget are known exactly.

``estimators`` (issue 6 item 3): for each setting (a law, a sampling design, a noise level) and each IsoFLOP minimum
estimator of ``analysis.fits.minima``, draw ``replicates`` sweeps, estimate every budget's minimum (no budget is
dropped; edge minima are kept), fit ln N_opt = a ln C + c by least squares across budgets, and report the bias
(mean of a_hat - a) and spread (standard deviation of a_hat). The designs are the ones that bias a parabola on real
sweeps: the law's IsoFLOP curves are asymmetric (α ≠ β), and the sampled sizes are centred on a guess of N_opt that
is off by a factor which drifts across budgets (the guess used a wrong exponent, ``drift``) and jitters from budget
to budget (``jitter``), so the parabola's offset differs per budget and tilts the fitted a.

The estimators' measured bias and spread, and what they decided (the default is 'auto': the spline for a budget of
9 or more sizes, the local parabola below; ``analysis.fits.minima``), are in analysis/README.md, "Measured".

``calibration`` (issue 6 item 7): coverage of the 90% interval of N_opt at 10x and 100x the largest budget, for
Approaches 2 and 3, over 200 synthetic sweeps of 8 budgets over 3 decades (``calibration_study``).
Its measured coverages are in analysis/README.md, "Measured".
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.fits.minima import DEFAULT_ESTIMATOR, ESTIMATORS, estimate_minimum
from analysis.laws.published import CHINCHILLA_APPROACH3, EPOCH_REFIT, ParametricLaw
from analysis.studies.synthetic import SECOND_TRUTH
from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

# A third truth with a different exponent and strongly asymmetric IsoFLOP curves (alpha >> beta): a = 0.294.
STEEP = ParametricLaw(
    name="synthetic_steep",
    E=1.9,
    A=2500.0,
    B=350.0,
    alpha=0.60,
    beta=0.25,
    source="synthetic: strongly asymmetric IsoFLOP curves (alpha/beta = 2.4)",
    flops_convention="6n",
    params_convention="synthetic",
)
# The second truth of analysis/studies/synthetic.py (beta > alpha): a = 0.552.
SECOND = SECOND_TRUTH
LAWS = {"chinchilla": CHINCHILLA_APPROACH3, "epoch": EPOCH_REFIT, "steep": STEEP, "second": SECOND}


@dataclass(frozen=True)
class Setting:
    """One synthetic IsoFLOP design. Budget k of ``n_budgets`` log-spaced over [c_lo, c_hi] samples
    ``n_per_budget`` sizes log-spaced over [g/span, g·span] around the guess g = N_opt(C)·offset·(C/C_mid)^drift·
    exp(jitter·z_k) (C_mid the geometric middle budget, z_k standard normal per budget and replicate); D = C/(6N);
    loss = law(N, D)·exp(noise·z)."""

    name: str
    law: str = "chinchilla"
    noise: float = 0.005
    n_budgets: int = 10
    c_lo: float = 1e17
    c_hi: float = 1e21
    n_per_budget: int = 9
    span: float = 5.0
    offset: float = 1.0
    drift: float = 0.0
    jitter: float = 0.0

    def budgets(self) -> np.ndarray:
        return np.geomspace(self.c_lo, self.c_hi, self.n_budgets)

    def design(self, rng: np.random.Generator) -> pd.DataFrame:
        law, budgets = LAWS[self.law], self.budgets()
        c_mid = math.sqrt(self.c_lo * self.c_hi)
        rows = []
        for C in budgets:
            guess = (
                law.compute_optimal(C).N_opt
                * self.offset
                * (C / c_mid) ** self.drift
                * math.exp(self.jitter * rng.standard_normal())
            )
            for N in np.geomspace(guess / self.span, guess * self.span, self.n_per_budget):
                rows.append((C, N, C / (6.0 * N)))
        return pd.DataFrame(rows, columns=["budget", "N", "D"])

    def draw(self, rng: np.random.Generator) -> pd.DataFrame:
        """One synthetic sweep: columns budget, C (= 6ND exactly), N, D, loss, loss_true."""
        df = self.design(rng)
        df["C"] = 6.0 * df["N"] * df["D"]
        df["loss_true"] = LAWS[self.law].predict(df["N"].to_numpy(), df["D"].to_numpy())
        df["loss"] = df["loss_true"] * np.exp(self.noise * rng.standard_normal(len(df)))
        df.attrs.update(flops_convention="6n", params_convention="synthetic")
        return df


# The settings of the estimator study: three laws (two published, one strongly asymmetric), centred and off-centre
# drifting/jittered sampling, 0.3% to 1% noise, 9 to 12 budgets over 3 to 4 decades, 7 to 11 sizes a budget.
SETTINGS = (
    Setting("chinchilla centred 0.5%", "chinchilla", noise=0.005),
    Setting("chinchilla drift+0.1 0.3%", "chinchilla", noise=0.003, drift=0.1, offset=1.5),
    Setting("chinchilla drift-0.1 1%", "chinchilla", noise=0.01, drift=-0.1, span=6.0, n_per_budget=11),
    Setting("epoch drift+0.1 jitter 0.5%", "epoch", noise=0.005, drift=0.1, offset=0.7, jitter=0.3),
    Setting("steep drift+0.1 0.5% 12b/3dec", "steep", noise=0.005, drift=0.1, n_budgets=12, c_lo=1e18, c_hi=1e21),
    Setting(
        "second jitter 1% 7/budget",
        "second",
        noise=0.01,
        jitter=0.4,
        n_per_budget=7,
        span=6.0,
        n_budgets=9,
        c_lo=1e18,
        c_hi=1e21,
    ),
    # harsher: wide spans (x64 to x100 in N) and guesses that drift by 0.15-0.25 in the exponent (a Kaplan-style
    # guess of N_opt ∝ C^0.73 when the truth is 0.45 drifts by +0.28)
    Setting("chinchilla drift+0.25 span8 0.5%", "chinchilla", noise=0.005, drift=0.25, span=8.0, c_lo=1e18),
    Setting("steep drift-0.2 span10 0.5%", "steep", noise=0.005, drift=-0.2, span=10.0, c_lo=1e18),
    Setting("steep x2 drift+0.15 span8 0.3%", "steep", noise=0.003, drift=0.15, offset=2.0, span=8.0),
    Setting("epoch drift+0.2 span8 1%", "epoch", noise=0.01, drift=0.2, span=8.0, c_lo=1e18),
)


def fit_exponent(log_c: np.ndarray, log_n: np.ndarray) -> float:
    """Least-squares slope a of ln N_opt = a ln C + c (the power law N_opt ∝ C^a across budgets)."""
    return float(np.polyfit(log_c, log_n, 1)[0])


def sweep_exponents(df: pd.DataFrame, methods=ESTIMATORS) -> dict[str, tuple[float, int]]:
    """Per estimator: the exponent a fitted across every budget of one sweep, and how many minima were at an edge."""
    out = {}
    groups = [(math.log(b), np.log(g["N"].to_numpy()), g["loss"].to_numpy()) for b, g in df.groupby("budget")]
    for m in methods:
        mins = [estimate_minimum(x, y, m) for _, x, y in groups]
        out[m] = (
            fit_exponent(np.array([c for c, _, _ in groups]), np.array([q.log_n for q in mins])),
            sum(q.at_edge for q in mins),
        )
    return out


def estimator_study(settings=SETTINGS, methods=ESTIMATORS, replicates: int = 200, seed: int = 0) -> pd.DataFrame:
    """One row per (setting, estimator): true a, bias and spread of the fitted a, RMSE, mean edge minima per sweep."""
    rows = []
    for k, s in enumerate(settings):
        rng = np.random.default_rng([seed, k])
        a_true = LAWS[s.law].a
        got: dict[str, list[float]] = {m: [] for m in methods}
        edges = {m: 0 for m in methods}
        for _ in range(replicates):
            for m, (a_m, n_edge) in sweep_exponents(s.draw(rng), methods).items():
                got[m].append(a_m)
                edges[m] += n_edge
        for m in methods:
            a = np.array(got[m])
            rows.append(
                dict(
                    setting=s.name,
                    estimator=m,
                    a_true=a_true,
                    bias=float(a.mean() - a_true),
                    spread=float(a.std(ddof=1)),
                    rmse=float(np.sqrt(np.mean((a - a_true) ** 2))),
                    edge_per_sweep=edges[m] / replicates,
                )
            )
    return pd.DataFrame(rows)


def _print_estimators(table: pd.DataFrame) -> None:
    bias = table.pivot(index="setting", columns="estimator", values="bias")
    spread = table.pivot(index="setting", columns="estimator", values="spread")
    cols = [m for m in ESTIMATORS if m in bias.columns]
    order = list(dict.fromkeys(table["setting"]))
    a_true = table.drop_duplicates("setting").set_index("setting")["a_true"]
    w = max(len(s) for s in order)
    print(f"{'setting':<{w}} {'a':>5} " + " ".join(f"{m:>14}" for m in cols))
    print(f"{'':<{w}} {'':>5} " + " ".join(f"{'bias/spread':>14}" for _ in cols))
    for s in order:
        print(f"{s:<{w}} {a_true[s]:5.3f} " + " ".join(f"{bias.at[s, m]:+.4f}/{spread.at[s, m]:.4f}" for m in cols))
    worst = table.assign(absb=table["bias"].abs()).groupby("estimator")["absb"].max()
    rmse = table.groupby("estimator")["rmse"].mean()
    print(f"{'max |bias|':<{w}} {'':>5} " + " ".join(f"{worst[m]:14.4f}" for m in cols))
    print(f"{'mean RMSE':<{w}} {'':>5} " + " ".join(f"{rmse[m]:14.4f}" for m in cols))


# The calibration design: Chinchilla's law, 8 budgets over 3 decades, 7 sizes a budget off centre with a drifting
# and jittered guess, 0.5% noise; intervals are judged at 10x and 100x the largest budget.
CALIBRATION = Setting(
    "calibration",
    "chinchilla",
    noise=0.005,
    n_budgets=8,
    c_lo=1e17,
    c_hi=1e20,
    n_per_budget=7,
    span=5.0,
    offset=1.3,
    drift=0.1,
    jitter=0.2,
)


# A harsher one for Approach 2: the strongly asymmetric law, sampled over wide spans well off centre with a drifting
# guess (the setting where the parabola's a is biased by -0.026 in the estimator study).
CALIBRATION_HARSH = Setting(
    "calibration harsh",
    "steep",
    noise=0.003,
    n_budgets=8,
    c_lo=1e17,
    c_hi=1e20,
    n_per_budget=9,
    span=8.0,
    offset=2.0,
    drift=0.15,
)
# The CPU sweep's design: 8 budgets over one decade, 5 sizes a budget over 6x (spread 2.5), centred (the sequential
# sweep recentres every budget) with jitter.
CALIBRATION_CPU = Setting(
    "calibration cpu-like",
    "chinchilla",
    noise=0.005,
    n_budgets=8,
    c_lo=1e17,
    c_hi=1.1e18,
    n_per_budget=5,
    span=2.5,
    offset=1.0,
    drift=0.0,
    jitter=0.2,
)
CALIBRATION_SETTINGS = {"default": CALIBRATION, "harsh": CALIBRATION_HARSH, "cpu": CALIBRATION_CPU}


class _NoptAt:
    """Picklable quantities function for analysis.bootstrap: N_opt of a fit at each target budget."""

    def __init__(self, targets):
        self.targets = tuple(float(t) for t in targets)

    def __call__(self, result):
        return {n_opt_name(t): float(result.compute_optimal(t).N_opt) for t in self.targets}


# interval methods of the calibration study: short name -> what it is
INTERVAL_METHODS = {
    "a2-runs": "Approach 2, analysis.bootstrap over runs (parabola; edge budgets dropped)",
    "a2-spline-t": "Approach 2, spline minima, Student-t interval of the line",
    "a2-spline-runs": "Approach 2, spline minima, runs within budgets",
    "a2-spline-budgets": "Approach 2, spline minima, whole budgets",
    "a2-spline-hierarchical": "Approach 2, spline minima, budgets then runs",
    "a2-auto-t": "Approach 2, 'auto' minima (local parabola under 9 sizes a budget), Student-t interval of the line",
    "a3-runs": "Approach 3, analysis.bootstrap over runs (small grid + warm start)",
    "a3-budgets": "Approach 3, analysis.bootstrap over whole budgets (group_col)",
}
CALIBRATION_METHODS = (
    "a2-runs",
    "a2-spline-t",
    f"a2-{DEFAULT_ESTIMATOR}-t",
    "a2-spline-budgets",
    "a2-spline-hierarchical",
    "a3-runs",
    "a3-budgets",
)


def _interval_rows(sweep, targets, truth, n_resamples, seed, methods) -> list[dict]:
    """One row per (interval method, target): the interval, the truth and whether it covers."""
    import functools

    import analysis

    q = _NoptAt(targets)
    rows = []
    for name in methods:
        if name == "a2-runs":
            b = analysis.bootstrap(
                analysis.fit_approach2, sweep, n_resamples=n_resamples, seed=seed, quantities=q, n_jobs=1
            )
        elif name in ("a3-runs", "a3-budgets"):
            b = analysis.bootstrap(
                functools.partial(analysis.fit_approach3, grid="small"),
                sweep,
                n_resamples=n_resamples,
                seed=seed,
                quantities=q,
                n_jobs=1,
                group_col="budget" if name == "a3-budgets" else None,
            )
        elif name in INTERVAL_METHODS:
            _, est, scheme = name.split("-")
            b = isoflop_power_law_interval(
                sweep, targets, method=est, scheme=scheme, n_resamples=n_resamples, seed=seed
            )
        else:
            raise ValueError(f"calibration: method={name!r}; allowed: {', '.join(INTERVAL_METHODS)}")
        for t in targets:
            lo, hi = b.interval(n_opt_name(t))
            rows.append(
                dict(
                    method=name,
                    target=t,
                    lo=lo,
                    hi=hi,
                    truth=truth[t],
                    covered=bool(lo <= truth[t] <= hi),
                    log_width=math.log(hi / lo) if lo > 0 and hi > 0 else np.nan,
                )
            )
    return rows


def calibration_study(
    setting: Setting = CALIBRATION,
    n_sweeps: int = 200,
    n_resamples: int = 100,
    seed: int = 0,
    methods=CALIBRATION_METHODS,
    factors=(10.0, 100.0),
    csv: str | None = None,
) -> pd.DataFrame:
    """Coverage of 90% bootstrap intervals of N_opt at ``factors`` x the largest budget over ``n_sweeps`` synthetic
    sweeps, for each interval method in ``methods`` (names of ``INTERVAL_METHODS``: the public ``analysis.bootstrap``
    of ``fit_approach2`` and ``fit_approach3``, and ``isoflop_power_law_interval`` under its schemes). Returns one
    row per (sweep, method, target); with ``csv``, the rows are also appended to that file sweep by sweep, so a
    long study can be read while it runs."""
    rows = []
    targets = [setting.c_hi * f for f in factors]
    truth = {t: float(LAWS[setting.law].compute_optimal(t).N_opt) for t in targets}
    for i in range(n_sweeps):
        sweep = setting.draw(np.random.default_rng([seed, 7, i]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            new = [
                dict(sweep=i, factor=r["target"] / setting.c_hi, **r)
                for r in _interval_rows(sweep, targets, truth, n_resamples, seed + i, methods)
            ]
        rows.extend(new)
        if csv:
            pd.DataFrame(new).to_csv(csv, mode="w" if i == 0 else "a", header=i == 0, index=False)
    return pd.DataFrame(rows)


def coverage_table(detail: pd.DataFrame) -> pd.DataFrame:
    """Per (method, factor): coverage, its binomial standard error, median interval width in ln N, and how often
    the truth fell below / above the interval."""
    g = detail.groupby(["method", "factor"], sort=False)
    out = g.agg(coverage=("covered", "mean"), n=("covered", "size"), median_log_width=("log_width", "median"))
    out["se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n"])
    out["below"] = g.apply(lambda d: float((d["truth"] < d["lo"]).mean()))
    out["above"] = g.apply(lambda d: float((d["truth"] > d["hi"]).mean()))
    return out.reset_index()


def _print_coverage(table: pd.DataFrame) -> None:
    w = max(len(m) for m in table["method"])
    print(
        f"{'interval method':<{w}}  {'C/C_max':>7}  {'coverage':>8}  {'± se':>5}  {'truth<lo':>8}  {'truth>hi':>8}  "
        f"{'median ln(hi/lo)':>16}"
    )
    for r in table.itertuples():
        print(
            f"{r.method:<{w}}  {r.factor:7.0f}  {r.coverage:8.1%}  {r.se:5.1%}  {r.below:8.1%}  {r.above:8.1%}  "
            f"{r.median_log_width:16.3f}"
        )
