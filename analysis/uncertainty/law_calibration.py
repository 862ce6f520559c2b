"""Per-sweep calibration of Approach 3's and Kaplan's bootstrap intervals (issue 20 item 4), as Approach 2's is
calibrated (``analysis.uncertainty.calibration``): simulate this sweep's exact design from its own fitted law and
noise, refit each simulated sweep and bootstrap it as the report does, and see how often each interval method covers
the law's own a and N_opt.

1. **Generator.** The fitted law itself (``fit.predict(N, D)``) at every run's N and D: the simulated truth is the
   fit the report shows, so its a and N_opt at each target are known exactly.
2. **Noise.** The sweep's noise model (``sim_noise.noise_model``): the seed spread measured from the runs'
   residuals, and with probability p a run ends U(0.15, 0.25) nats high, p from the runs the quality gate flagged
   (a Beta(1, 19) prior); each simulated budget then goes through the gate's stall rule, as ``load_runs`` does.
3. **Same pipeline.** Each simulated sweep is fitted from the law's warm start (``fit.warm_start()``) and bootstrapped
   over runs, ``n_resamples`` resamples refitted in one batch (``refit_resamples``), as the report's bootstrap does.
4. **Methods.** "runs": the percentile interval of the run bootstrap (what the report carries without this);
   "runs-scaled": the estimate ± f times the bootstrap's half-width (in ln for N_opt), f the ``level`` quantile of
   |estimate - truth| / half-width over the simulated sweeps, so it covers ``level`` there by construction.
5. **Choice.** "runs" when its simulated coverage is within [level, level + 2 points] for every quantity, else
   "runs-scaled" (narrower when the bootstrap over-covers, wider when it under-covers).

Cost: n_sims fits and n_sims x n_resamples batched refits; Approach 3's (an L-BFGS from the full grid's small
variant) take ~10x Kaplan's. It does not fit in the report's 30 s, so the report reads it from the cache
(``law-calibration-<law>-<key>.json`` in the report folder, keyed by the runs' content and every setting) and
``python -m analysis.studies lawcalibration <sweep>`` computes it. The report says which.

Hook: ``quantities`` is any function of a fit result to named numbers with ``truth`` from the fitted law, so another
quantity (the compute multiplier of ``analysis compare``, when it lands) is calibrated the same way by passing its own
function; names starting "a" are judged on a linear scale, all others in ln.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis.data.quality import stalled_positions
from analysis.uncertainty.calibration import TOLERANCE
from analysis.uncertainty.sim_keys import runs_key, simulation_seed
from analysis.uncertainty.sim_noise import NoiseModel, noise_model

METHODS = ("runs", "runs-scaled")  # the double loop's; ``single_loop`` carries "fast-double"
VERSION = 4  # part of the cache key: bump when the simulation changes (3: the bootstrap refits; 4: Kaplan by Huber)


@dataclass(frozen=True)
class LawCalibration:
    """What the simulation found for one law: the method carried, the factor f of each quantity's bootstrap
    half-width under "runs-scaled", and per (method, quantity) the simulated coverage, median width (ln(hi/lo), or
    hi - lo for a) and number of simulated sweeps (``table``)."""

    law: str
    carried: str
    factors: dict
    table: pd.DataFrame = field(repr=False)
    noise: NoiseModel
    n_sims: int
    n_resamples: int
    seconds: float
    level: float
    key: str = ""
    from_cache: bool = False
    # ``single_loop``: the half-width carried of each quantity (ln for N_opt), the quantile level the fast double
    # bootstrap calibrated it at, and the plain single loop's half-width at the nominal level
    half_widths: dict = field(default_factory=dict)
    levels: dict = field(default_factory=dict)
    single_half_widths: dict = field(default_factory=dict)

    def interval(self, quantity: str, estimate: float) -> tuple[float, float]:
        """The single loop's interval: ``estimate`` ± its half-width (in ln for N_opt)."""
        h = self.half_widths[quantity]
        return (estimate - h, estimate + h) if _linear(quantity) else (estimate * np.exp(-h), estimate * np.exp(h))

    def figures(self, method: str, quantity: str) -> tuple[float, float, int]:
        r = self.table[(self.table["method"] == method) & (self.table["quantity"] == quantity)]
        if r.empty:
            return float("nan"), float("nan"), 0
        return float(r["coverage"].iloc[0]), float(r["median_width"].iloc[0]), int(r["n"].iloc[0])

    def apply(self, intervals: dict, estimates: dict) -> dict:
        """The report's intervals {quantity: (lo, hi)} with each calibrated quantity's replaced by the estimate ±
        f x its half-width when "runs-scaled" is carried, by the estimate ± the simulated half-width when
        "fast-double" is (``single_loop``), unchanged under "runs"."""
        if self.carried == "fast-double":
            out = dict(intervals)
            for q in self.half_widths:
                if q in out and q in estimates and (_linear(q) or float(estimates[q]) > 0):
                    out[q] = tuple(float(v) for v in self.interval(q, float(estimates[q])))
            return out
        if self.carried != "runs-scaled":
            return intervals
        out = dict(intervals)
        for q, f in self.factors.items():
            if q not in out or q not in estimates:
                continue
            lo, hi = out[q]
            est = float(estimates[q])
            if _linear(q):
                half = (hi - lo) / 2
                out[q] = (est - f * half, est + f * half)
            elif lo > 0 and hi > 0 and est > 0:
                half = float(np.log(hi / lo)) / 2
                out[q] = (float(np.exp(np.log(est) - f * half)), float(np.exp(np.log(est) + f * half)))
        return out

    def to_json(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in ("table", "noise")}
        d.update(noise=asdict(self.noise), table=self.table.to_dict(orient="records"))
        return json.dumps(d, indent=1, default=float)

    @classmethod
    def from_json(cls, text: str) -> LawCalibration:
        d = json.loads(text)
        d["noise"] = NoiseModel(**d["noise"])
        d["table"] = pd.DataFrame(d["table"], columns=["method", "quantity", "coverage", "median_width", "n"])
        return cls(**d)


def _linear(q: str) -> bool:
    return q == "a" or q.startswith("a_")


def cache_path(cache_dir, law: str, key: str) -> Path:
    return Path(cache_dir) / f"law-calibration-{law}-{key}.json"


def settings_key(runs, law: str, fit, quantity_names, **settings) -> str:
    params = {k: round(float(v), 10) for k, v in fit.default_quantities().items()}
    # the metric (nats per token or bits per byte) by name too, not only through the losses hashed
    metric = runs.attrs.get("metric", "loss")
    return runs_key(
        runs, law=law, law_version=VERSION, params=params, quantities=sorted(quantity_names), metric=metric, **settings
    )


def cached(cache_dir, runs, law, fit, quantity_names, **settings) -> LawCalibration | None:
    """The calibration of ``law`` on these runs and settings from ``cache_dir``, or None when not computed yet."""
    if cache_dir is None:
        return None
    path = cache_path(cache_dir, law, settings_key(runs, law, fit, quantity_names, **settings))
    try:
        return replace(LawCalibration.from_json(path.read_text()), from_cache=True)
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _refit_batch(est, sim: pd.DataFrame, idx: list) -> list | None:
    from analysis.fits.kaplan import KaplanResult

    if isinstance(est, KaplanResult):  # L(C), which no calibrated quantity reads, is skipped (half the time)
        return est.refit_resamples(sim, idx, n_threads=1, with_l_c=False)
    return est.refit_resamples(sim, idx, n_threads=1)


def calibrate_law(
    law: str,
    fit,
    runs: pd.DataFrame,
    quantities: Callable,
    *,
    fit_fn: Callable,
    n_flagged: int = 0,
    level: float = 0.9,
    n_sims: int = 100,
    n_resamples: int = 100,
    seed: int | None = None,
    jump: tuple[float, float] = (0.15, 0.25),
    cache_dir=None,
    progress: Callable[[str], None] | None = None,
) -> LawCalibration:
    """Calibrate the bootstrap intervals of ``quantities(result) -> {name: value}`` for the fit ``fit`` of ``law``
    (made by ``fit_fn``) on ``runs``' own design (see the module docstring); cached in ``cache_dir``."""
    t0 = time.perf_counter()
    if not 0 < level < 1:
        raise ValueError(f"calibrate_law: level={level!r}; must be in (0, 1)")
    if not (isinstance(n_sims, int) and n_sims >= 20):
        raise ValueError(f"calibrate_law: n_sims={n_sims!r}; must be an integer >= 20")
    if not (isinstance(n_resamples, int) and n_resamples >= 20):
        raise ValueError(f"calibrate_law: n_resamples={n_resamples!r}; must be an integer >= 20")
    truth = {k: float(v) for k, v in quantities(fit).items()}
    names = list(truth)
    settings = dict(
        level=level, n_sims=n_sims, n_resamples=n_resamples, seed=seed, jump=list(jump), n_flagged=n_flagged
    )
    key = settings_key(runs, law, fit, names, **settings)
    hit = cached(cache_dir, runs, law, fit, names, **settings)
    if hit is not None:
        return hit
    base_seed = simulation_seed(runs, seed, **(settings | dict(law=law, quantities=sorted(names))))
    noise = noise_model(runs, n_flagged, *jump)
    base = runs.reset_index(drop=True)
    N, D = base["N"].to_numpy(float), base["D"].to_numpy(float)
    y_true = np.asarray(fit.predict(N, D), dtype=float)
    groups = [np.flatnonzero(base["budget"].to_numpy() == b) for b in np.unique(base["budget"].to_numpy())]
    groups = [g[np.argsort(np.log(N[g]), kind="stable")] for g in groups]  # the gate reads a budget sorted by ln N
    lin = np.array([_linear(q) for q in names])
    tv = np.array([truth[q] if lin[j] else np.log(truth[q]) for j, q in enumerate(names)])
    est, lo, hi = (np.full((n_sims, len(names)), np.nan) for _ in range(3))
    for s in range(n_sims):
        rng = np.random.default_rng([base_seed, s])  # one stream a simulated sweep (simulation_seed)
        y = y_true + noise.seed_sd * rng.standard_normal(y_true.size)
        jumps = rng.random(y.size) < noise.jump_rate
        y = y + jumps * rng.uniform(noise.jump_lo, noise.jump_hi, y.size)
        keep = np.ones(y.size, bool)
        for g in groups:
            for pos, *_ in stalled_positions(np.log(N[g]), y[g]):
                keep[g[pos]] = False
        sim = base.loc[keep, ["N", "D", "C", "budget"]].assign(loss=y[keep]).reset_index(drop=True)
        sim.attrs.update(runs.attrs)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                e = fit_fn(sim, **fit.warm_start())
                q = quantities(e)
                idx = [rng.integers(0, len(sim), len(sim)) for _ in range(n_resamples)]
                fits = _refit_batch(e, sim, idx)
            except Exception:  # a simulated sweep the fit cannot take: left out, counted in n
                continue
        if fits is None:
            continue
        vals = np.array([[quantities(r)[k] if r is not None else np.nan for k in names] for r in fits], dtype=float)
        with np.errstate(all="ignore"):
            vals = np.where(lin, vals, np.log(vals))
            est[s] = [q[k] if lin[j] else np.log(q[k]) for j, k in enumerate(names)]
        ok = np.isfinite(vals).all(1)
        if ok.sum() >= n_resamples // 2:
            lo[s], hi[s] = np.quantile(vals[ok], [(1 - level) / 2, (1 + level) / 2], axis=0)
        if progress is not None and (s + 1) % 10 == 0:
            progress(f"{law}: {s + 1} of {n_sims} simulated sweeps ({time.perf_counter() - t0:.0f} s)")
    good = np.isfinite(est).all(1) & np.isfinite(lo).all(1) & np.isfinite(hi).all(1)
    e, lo_, hi_ = est[good], lo[good], hi[good]
    half = (hi_ - lo_) / 2
    with np.errstate(all="ignore"):
        factors = np.quantile(np.abs(e - tv) / half, level, axis=0)
    rows = []
    for method, (L, H) in {"runs": (lo_, hi_), "runs-scaled": (e - factors * half, e + factors * half)}.items():
        for j, q in enumerate(names):
            rows.append(
                dict(
                    method=method,
                    quantity=q,
                    coverage=float(np.mean((L[:, j] <= tv[j]) & (tv[j] <= H[:, j]))) if good.any() else np.nan,
                    median_width=float(np.median(H[:, j] - L[:, j])) if good.any() else np.nan,
                    n=int(good.sum()),
                )
            )
    table = pd.DataFrame(rows, columns=["method", "quantity", "coverage", "median_width", "n"])
    cov = table[table["method"] == "runs"]["coverage"].to_numpy(float)
    calibrated = bool(np.all((cov >= level - 1e-12) & (cov <= level + TOLERANCE + 1e-12)))
    cal = LawCalibration(
        law=law,
        carried="runs" if calibrated else "runs-scaled",
        factors={q: float(f) for q, f in zip(names, factors)},
        table=table,
        noise=noise,
        n_sims=int(good.sum()),
        n_resamples=n_resamples,
        seconds=time.perf_counter() - t0,
        level=level,
        key=key,
    )
    if cache_dir is not None:
        from scaling.core.records import write_text_atomic

        path = cache_path(cache_dir, law, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, cal.to_json())
    return cal


def single_loop(
    law: str,
    fit,
    runs: pd.DataFrame,
    quantities: Callable,
    *,
    n_flagged: int = 0,
    level: float = 0.9,
    n_sims: int = 200,
    seed: int = 0,
    jump: tuple[float, float] = (0.15, 0.25),
) -> LawCalibration:
    """Approach 3's or Kaplan's interval (``fit`` an ``Approach3Result`` or a ``KaplanResult``) calibrated on this
    sweep's design fast enough for every report, and carried ("fast-double"): the estimate ± the lambda quantile of
    |estimate - truth| over ``n_sims`` simulated sweeps, lambda calibrated by a fast double bootstrap
    (``parametric_check.calibrated_half_widths`` with the law's ``law_pieces``: two batched fits of ``n_sims``
    sweeps). Its coverage against a known truth, by design: RESULTS.md."""
    from analysis.uncertainty.parametric_check import calibrated_half_widths

    t0 = time.perf_counter()
    fd = calibrated_half_widths(
        fit, runs, quantities, n_flagged=n_flagged, level=level, n_sims=n_sims, seed=seed, jump=jump
    )
    if not all(np.isfinite(v) and v > 0 for v in fd.half_widths.values()):
        raise ValueError(f"the simulated fits left no interval ({fd.n_sims} of {n_sims} level-1 sweeps fitted)")
    rows = [
        dict(method="single-loop", quantity=q, coverage=level, median_width=2 * v, n=fd.n_sims)
        for q, v in fd.single_loop.items()
    ]
    rows += [
        dict(method="fast-double", quantity=q, coverage=np.nan, median_width=2 * v, n=fd.n_inner)
        for q, v in fd.half_widths.items()
    ]
    return LawCalibration(
        law=law,
        carried="fast-double",
        factors={},
        table=pd.DataFrame(rows, columns=["method", "quantity", "coverage", "median_width", "n"]),
        noise=fd.noise,
        n_sims=fd.n_sims,
        n_resamples=0,
        seconds=time.perf_counter() - t0,
        level=level,
        half_widths=fd.half_widths,
        levels=fd.levels,
        single_half_widths=fd.single_loop,
    )
