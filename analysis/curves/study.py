"""Measures the curve laws on real curves and prints the tables of RESULTS.md "Loss-curve laws (issue 18)":

    python -m analysis.curves.study harness results/curves      # the harness's own CPU runs under one sweep folder
    python -m analysis.curves.study published                   # Luo et al. 2025's released curves

``harness``: for every complete run, the error of its end predicted from its first 25/50/75% (median and worst over
runs) by each law fitted to its validation points, by the Tissue law fitted to its training loss
(``analysis.curves.trainloss``), and by the sweep prior (``analysis.curves.prior``, leave-one-out or ``--prior-from``);
for every size with runs of several schedules, fit on one run and predict another (cosine <-> WSD at the same
length, cosine of half the steps -> the full length); for repeats of one point (same N, tokens, schedule; several
seeds), the seed-to-seed spread of the raw end point against the curve-fitted one. Errors are against the last point
measured like the rest of the curve: the harness evaluates its intermediate points on a fixed subset of the validation
split (train.eval_tokens) and the final one on the whole split, which differ by a per-run offset (RESULTS.md), so a
final point measured otherwise is left out of fits and targets.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.curves import predict, prior, published, trainloss
from analysis.curves import schedule as sc
from analysis.curves.multipower import fit_multipower
from analysis.curves.tissue import fit_tissue_curves

FRACS = (0.25, 0.5, 0.75)


def harness_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(eta, steps, loss) on the intermediate evaluations' subset only (``schedule.subset_curve``)."""
    return sc.subset_curve(run_dir)


def _runs(root: Path) -> list[tuple[dict, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """(summary with its run directory under ``"_dir"``, subset curve) of every complete run under ``root``."""
    out = []
    for d in sorted(root.iterdir()):
        f = d / "summary.json"
        if f.exists() and json.loads(f.read_text())["status"] == "complete":
            out.append(({**json.loads(f.read_text()), "_dir": d}, harness_curve(d)))
    return out


def _cells(errs: dict[float, list[float]]) -> str:
    return "  ".join(
        f"{int(f * 100)}%: "
        + (f"{np.median(e) * 100:.2f}% / {np.max(e) * 100:.2f}% ({len(e)} runs)" if e else "no run fitted")
        for f, e in errs.items()
    )


def from_training_loss(runs: list, law: str, frac: float) -> list[float]:
    """|relative error| of each run's end predicted by ``law`` fitted to its binned training loss up to ``frac`` of its
    updates, mapped onto the subset measure by the median ratio of its validation points so far
    (``analysis.curves.trainloss``); runs with too few points or no validation point before the cut are left out."""
    out = []
    for s, (eta, steps, loss) in runs:
        cut = int(frac * len(eta))
        try:
            fit = predict.fit_curve(law, *trainloss.train_curve(s["_dir"], upto=cut), upto=cut)
            r = trainloss.val_ratio(fit, eta, steps, loss, upto=cut)
        except ValueError:
            continue
        out.append(abs(float(fit.predict(eta, steps[-1:])[0]) * r / float(loss[-1]) - 1.0))
    return out


def from_sweep_prior(runs: list, frac: float, prior_runs: list | None = None, trend: bool = True) -> list[float]:
    """|relative error| of each run's end predicted by ``analysis.curves.prior`` at ``frac``: its training-loss level
    times the end ratio of the other runs of its schedule (``prior_runs``, or leave-one-out over ``runs``): as a
    power of the run's length fitted on them, or (``trend=False``) their median."""
    pool = runs if prior_runs is None else prior_runs
    ratios = [(s["_dir"], prior.schedule_key(s["_dir"]), prior.end_ratio(s["_dir"], frac), s["steps"]) for s, _ in pool]
    out = []
    for s, (_, _, loss) in runs:
        key = prior.schedule_key(s["_dir"])
        rs = [(r, t) for d, k, r, t in ratios if k == key and d != s["_dir"]]
        if rs:
            level = prior.run_level(s["_dir"], frac)
            p = prior.predict_end(level, [r for r, _ in rs], s["steps"], [t for _, t in rs]) if trend else None
            p = prior.predict_end(level, [r for r, _ in rs]) if p is None else p
            out.append(abs(p / float(loss[-1]) - 1.0))
    return out


def _rel(pred: np.ndarray, loss: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(pred) / np.asarray(loss) - 1.0)


def harness(
    root: Path, huber: float | None = None, prior_from: Path | None = None, train_laws: tuple[str, ...] = ("tissue",)
) -> None:
    runs = _runs(root)
    print(f"{len(runs)} complete runs under {root}")
    fit_how = "least squares on relative residuals"
    if huber is not None:
        fit_how = f"Huber loss (delta {huber:g}) on log residuals"
    print(f"\n(a) end of a run predicted from its first part ({fit_how}): |relative error| over runs, median / worst")
    for law in predict.LAWS:
        errs: dict[float, list[float]] = {f: [] for f in FRACS}
        for _, (eta, steps, loss) in runs:
            for f in FRACS:
                try:
                    p = predict.final_from_prefix(law, eta, steps, loss, f, at=int(steps[-1]), huber=huber)
                except ValueError:  # too few points before the cut: counted as missing
                    continue
                errs[f].append(abs(p / float(loss[-1]) - 1.0))
        print(f"  {law:10s}  {_cells(errs)}")
    print("  fitted to the binned training loss (every step), mapped by the run's validation / fit ratio so far:")
    for law in train_laws:
        print(f"  {law:10s}  {_cells({f: from_training_loss(runs, law, f) for f in FRACS})}")
    pool_name = "leave-one-out over this sweep" if prior_from is None else f"the runs under {prior_from}"
    pool = None if prior_from is None else _runs(prior_from)
    print(f"  sweep prior: training-loss level x the end ratio of the runs of its schedule ({pool_name}):")
    print(f"  {'median':10s}  {_cells({f: from_sweep_prior(runs, f, pool, trend=False) for f in FRACS})}")
    print(f"  {'in length':10s}  {_cells({f: from_sweep_prior(runs, f, pool) for f in FRACS})}")
    print(
        "\n(b) transfer: fit one run's whole curve, predict another's of the same size and batch (mean |error| over "
        "its curve after warmup; end)"
    )
    # a law's areas count updates, so only runs of one batch size (tokens a step) transfer
    by_n: dict[tuple[int, int], dict] = defaultdict(dict)
    for s, c in runs:
        if s["seed"] == 0:
            by_n[(s["params_non_embedding"], s["tokens_per_step"])][(s["schedule"], s["steps"])] = (c, s["_dir"])
    rows = []
    for (n, tps), cs in sorted(by_n.items()):
        longest = max(k[1] for k in cs)
        pairs = [
            (("cosine", longest), ("wsd", longest)),
            (("wsd", longest), ("cosine", longest)),
            *[((("cosine", k[1]), ("cosine", longest))) for k in cs if k[0] == "cosine" and k[1] < longest],
        ]
        for src, dst in pairs:
            if src not in cs or dst not in cs:
                continue
            for law, on_train in [(law, t) for law in predict.LAWS for t in (False, True)]:
                name = f"{law} (train loss)" if on_train else law
                try:
                    if on_train:  # the source's whole training curve, mapped by its validation / fit ratio
                        fit = predict.fit_curve(law, *trainloss.train_curve(cs[src][1]))
                        r = trainloss.val_ratio(fit, *cs[src][0])
                    else:
                        fit, r = predict.fit_curve(law, *cs[src][0]), 1.0
                except ValueError:  # too few points after warmup for the law
                    print(f"  N={n:>6} ({tps} tok/step)  {src[0]} {src[1]} steps: too few points for {name}")
                    continue
                eta, steps, loss = cs[dst][0]
                s_, y = predict.after_warmup(eta, steps, loss)
                e = _rel(fit.predict(eta, s_) * r, y)
                rows.append((name, e.mean(), e[-1]))
                print(
                    f"  N={n:>6} ({tps} tok/step)  {src[0]} {src[1]} steps -> {dst[0]} {dst[1]} steps  {name:22s}"
                    f"  curve {e.mean() * 100:.2f}%  end {e[-1] * 100:.2f}%"
                )
    for law in dict.fromkeys(r[0] for r in rows):
        ends = [r[2] for r in rows if r[0] == law]
        if ends:
            print(f"  {law}: median end error {np.median(ends) * 100:.2f}%, worst {np.max(ends) * 100:.2f}%")
    print("\n(4) seed spread at repeated points: std over seeds of the raw end (whole split, last subset point)")
    print("    and of the Tissue-fitted end point")
    groups = defaultdict(list)
    for s, c in runs:
        groups[(s["params_non_embedding"], s["steps"], s["schedule"], s["tokens"])].append((s, c))
    for key, g in groups.items():
        if len(g) < 3:
            continue
        raw = [s["final_val_loss"] for s, _ in g]
        last = [c[2][-1] for _, c in g]
        fitted = [predict.smoothed_end("tissue", *c, n_boot=0)[0] for _, c in g]
        print(
            f"  N={key[0]} steps={key[1]} {key[2]}: {len(g)} seeds  raw whole-split std {np.std(raw, ddof=1):.4f}"
            f"  raw subset std {np.std(last, ddof=1):.4f}  fitted std {np.std(fitted, ddof=1):.4f} nats"
        )


def published_set(path: Path) -> None:
    data = published.load(path)
    print(f"Luo et al. 2025 curves ({path}): fit on {published.TRAIN}, predict {published.TEST}")
    print("  mean over the test curves of the mean |relative error| (the authors' PredE), and of the end's error")
    for size in published.SIZES:
        train = [data[(size, c)] for c in published.TRAIN]
        fits: dict[str, predict.CurveLaw] = {
            "tissue": fit_tissue_curves(train),
            "multipower": fit_multipower(train, block=64),
        }
        for law, fit in fits.items():
            pe, fe = [], []
            for c in published.TEST:
                eta, steps, loss = data[(size, c)]
                e = _rel(fit.predict(eta, steps), loss)
                pe.append(e.mean())
                fe.append(e[-1])
            ref = published.AUTHORS_TEST_PREDE[size]
            print(
                f"  {size:5s} {law:10s} PredE {np.mean(pe) * 100:.3f}% (authors' MPL {ref * 100:.3f}%)"
                f"  end error mean {np.mean(fe) * 100:.3f}%, worst {np.max(fe) * 100:.3f}%"
            )


def joint(root: Path, n_boot: int = 50, level: float = 0.9) -> None:
    """Item 2: the joint curve law's compute-optimal prediction and interval against Approach 3 on end points, at 10x
    and 100x the sweep's largest budget; intervals from a bootstrap over runs (the same resamples for both)."""
    import warnings

    from analysis.curves.joint import fit_joint
    from analysis.data.load import load_runs
    from analysis.fits.approach3 import fit_approach3
    from analysis.laws.conventions import in_convention, ratio_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(root)
        ratio = ratio_for(runs)[0]
        fits: dict[str, Any] = {
            "Approach 3 (end points)": fit_approach3(runs, grid="small"),
            "joint curve law": fit_joint(runs),
        }
        budgets = np.array([10.0, 100.0]) * runs["C"].max()
        rng = np.random.default_rng(0)
        boots: dict[str, list] = {k: [] for k in fits}
        for _ in range(n_boot):
            idx = rng.integers(0, len(runs), len(runs))
            rs = runs.iloc[idx].copy()
            rs["run_id"] = [f"{r}#{i}" for i, r in enumerate(rs["run_id"])]
            rs.attrs.update(runs.attrs)
            for k, f in fits.items():
                try:
                    g = fit_joint(rs, **f.warm_start()) if k.startswith("joint") else fit_approach3(rs, grid="small")
                    boots[k].append(in_convention(g, ratio).compute_optimal(budgets).N_opt)
                except Exception:  # a resample without a finite optimum counts as missing
                    continue
    print(f"{len(runs)} runs under {root}; {n_boot} bootstrap resamples over runs; {int(level * 100)}% intervals")
    for k, f in fits.items():
        pts = np.array(boots[k])
        n_opt = in_convention(f, ratio).compute_optimal(budgets).N_opt
        q = np.quantile(pts, [(1 - level) / 2, (1 + level) / 2], axis=0) if len(pts) else np.full((2, 2), np.nan)
        cells = "  ".join(
            f"C={c:.2g}: N_opt {n:.3g} [{lo:.3g}, {hi:.3g}] (x{hi / lo:.2f})"
            for c, n, lo, hi in zip(budgets, n_opt, q[0], q[1])
        )
        print(f"  {k:24s} a={f.a:.3f}  {cells}  ({len(pts)} resamples fitted)")
        if k.startswith("joint"):
            print(
                f"    fitted: E {f.E:.4g}, A {f.A:.4g}, alpha {f.alpha:.4g}, B {f.B:.4g}, beta {f.beta:.4g}, "
                f"C {f.C:.4g}; "
                f"relative rmse {f.rmse_rel * 100:.2f}% over {f.n_points} checkpoints of {f.n_runs} runs "
                f"(alpha, beta bounded to [0.01, 3])"
            )


def _a2_backtest(fit_runs, raw_runs) -> tuple[float, float, int]:
    """Approach 2 refitted on ``fit_runs`` of the budgets up to each cutoff, predicting every larger budget's IsoFLOP
    minimum measured on the raw final losses (``raw_runs``): median |ln(N_pred / N_obs)|, median |loss error|, pairs."""
    from analysis.fits.approach2 import fit_approach2, isoflop_minimum, usable_minimum

    budgets = np.sort(raw_runs["budget"].unique())
    obs = {}
    for b in budgets:
        g = raw_runs[raw_runs["budget"] == b]
        if g["N"].nunique() >= 3:
            m = isoflop_minimum(g["N"], g["D"], g["loss"])
            if usable_minimum(m["N_opt"], m["D_opt"]):  # a vertex beyond float range observes nothing
                obs[b] = (m, float(np.exp(np.log(g["C"]).mean())))
    ln_err, loss_err = [], []
    for cut in budgets[1:-1]:
        train = fit_runs[fit_runs["budget"] <= cut]
        train.attrs.update(fit_runs.attrs)
        try:
            res = fit_approach2(train)
        except Exception:  # too few budgets with a minimum
            continue
        for b, (m, C) in obs.items():
            if b > cut:
                pred = res.compute_optimal(C)
                ln_err.append(abs(np.log(pred.N_opt / m["N_opt"])))
                loss_err.append(abs(pred.loss / m["loss_opt"] - 1))
    return float(np.median(ln_err)), float(np.median(loss_err)), len(ln_err)


def endpoints(root: Path, law: str = "tissue", n_boot: int = 50) -> None:
    """Item 4: every run's raw final loss against its curve-fitted end point (``endpoints.fitted_ends``): the seed
    spread at repeated points, and Approach 2's a with its interval and its rolling backtest error with raw ends,
    with every fitted end, and with the fitted ends ``endpoints.RULE`` takes."""
    import warnings

    from analysis.curves import endpoints as ep
    from analysis.data.load import load_runs
    from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(root)
        ends = ep.fitted_ends(runs, law=law, n_boot=n_boot)
    fitted = ends["fitted"].notna()
    rule = ep.use_fitted(ends)
    print(f"{len(runs)} runs under {root}; law {law}; {n_boot} bootstrap refits a run; 90% intervals")
    print(
        f"  fitted: {int(fitted.sum())} runs (the others have too few points after warmup); taken by the rule: "
        f"{int(rule.sum())}; offset from the run's log: {int((ends['offset_source'] == 'run').sum())}, else the "
        f"sweep's median ratio {ends.attrs['sweep_ratio']:.4f}"
    )
    d = (ends["fitted"] / ends["raw"] - 1)[fitted]
    w = ((ends["hi"] - ends["lo"]) / ends["fitted"])[fitted]
    print(
        f"  fitted / raw - 1: median {np.median(d) * 100:+.2f}%, median |.| {np.median(np.abs(d)) * 100:.2f}%, worst "
        f"{np.max(np.abs(d)) * 100:.2f}%; interval width / end: median {np.median(w) * 100:.2f}%"
    )
    print(f"  points after warmup per run: {sorted(ends['n_points'].tolist())}")
    key = [(n, b) for n, b in zip(runs["N"], runs["budget"])]
    groups: dict = defaultdict(list)
    for k, i in zip(key, range(len(runs))):
        groups[k].append(i)
    rep = [g for g in groups.values() if len(g) >= 2]
    if rep:
        print("\n  seed spread at repeated points (sd over seeds, nats): raw | fitted")
        var_r, var_f = [], []
        for g in rep:
            e = ends.iloc[g]
            r = runs.iloc[g[0]]
            sr = float(np.std(e["raw"], ddof=1))
            sf = float(np.std(e["fitted"], ddof=1)) if e["fitted"].notna().all() else np.nan
            var_r.append(sr**2)
            var_f.append(sf**2)
            print(
                f"    N={r.N:.4g} C={r.budget:.3g}: {len(g)} seeds, {int(e['n_points'].min())}-"
                f"{int(e['n_points'].max())} points: {sr:.4f} | {sf:.4f}"
            )
        ok = np.isfinite(var_f)
        print(
            f"    pooled over {int(ok.sum())} points: {np.sqrt(np.mean(np.array(var_r)[ok])):.4f} | "
            f"{np.sqrt(np.mean(np.array(var_f)[ok])):.4f}"
        )
    target = 10 * float(runs["C"].max())
    print(f"\n  Approach 2 (default estimator), a and N_opt at {target:.3g} (10x the largest budget), t interval;")
    print("  rolling backtest: fit on budgets <= each cutoff, predict every larger budget's raw-loss minimum")
    variants = (
        ("raw ends", pd.Series(False, index=ends.index)),
        ("every fitted end", fitted),
        ("rule, any offset", ep.use_fitted(ends, logged_offset=False)),
        ("rule", rule),
    )
    for name, use in variants:
        rs = ep.with_fitted_ends(runs, ends, use)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iv = isoflop_power_law_interval(rs, [target])
            ln_e, loss_e, n = _a2_backtest(rs, runs)
        alo, ahi = iv.interval("a")
        nlo, nhi = iv.interval(n_opt_name(target))
        print(
            f"    {name:17s} ({int(use.sum()):2d} fitted): a {iv.a:.3f} [{alo:.3f}, {ahi:.3f}] (width {ahi - alo:.3f})"
            f"  N_opt {float(iv.n_opt(target)):.3g} [{nlo:.3g}, {nhi:.3g}] (x{nhi / nlo:.2f})"
            f"  backtest median |ln N err| {ln_e:.3f}, |loss err| {loss_e * 100:.2f}% ({n} pairs)"
        )


def stopping(root: Path, frac: float = 0.5, margin: float = 0.02) -> None:
    """Item 5, replayed with the trainer's rule (``curves.stopping``): which runs early stop at ``frac`` would have
    stopped, the FLOPs saved, and Approach 2's a, interval, N_opt and rolling backtest with every run, without the
    stopped runs, and with them kept at their predicted end by the loader (``load_runs(stopped="predicted")`` on a
    copy of the sweep written as the trainer would have left it, ``stopping.write_stopped``). The backtest's targets
    are every budget's IsoFLOP minimum on the measured final losses of all runs, the same for every variant."""
    import tempfile
    import warnings

    from analysis.curves.stopping import replay, write_stopped
    from analysis.data.load import load_runs
    from analysis.uncertainty.intervals import isoflop_power_law_interval, n_opt_name

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(root, stopped="out")  # measured ends only: a sweep's own stops are not replayed as measured
        r = replay(runs, frac=frac, margin=margin)
    cols = ["run_id", "N", "budget", "loss", "best_other", "step", "pred", "lo", "hi"]
    near = r[r["lo"] > r["best_other"]]
    if len(near):
        print("runs whose extrapolated low end lies above their budget's best finished run:")
        print(near[cols + ["stop"]].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    saved = r["flops_saved"].sum() / r["C"].sum()
    looked = int(r["pred"].notna().sum())
    print(
        f"{root}: stopped {int(r['stop'].sum())} of {len(r)} runs at {frac:.0%} (margin {margin:.0%}; {looked} had "
        f"enough points to extrapolate); FLOPs saved {saved:.1%} of the sweep; an IsoFLOP minimum stopped: "
        f"{bool(r.loc[r['was_minimum'], 'stop'].any())}"
    )
    kept = runs[~runs["run_id"].isin(r.loc[r["stop"], "run_id"])]
    kept.attrs.update(runs.attrs)
    target = 10 * float(runs["C"].max())
    with tempfile.TemporaryDirectory(prefix="stopped_") as tmp:
        copy = write_stopped(runs, r, Path(tmp) / root.name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            at_pred = load_runs(copy, stopped="predicted")
    pred = at_pred[at_pred["loss_predicted"]].set_index("run_id")
    if len(pred):
        err = pred["loss"] / runs.set_index("run_id").loc[pred.index, "loss"] - 1
        print(
            f"  the loader's predicted ends ({len(pred)} runs; offset {float(pred['loss_offset'].median()):+.4f} "
            f"nats): vs their measured final loss median {np.median(err) * 100:+.2f}%, worst |.| "
            f"{np.max(np.abs(err)) * 100:.2f}%"
        )
    variants = (("all runs", runs), ("without the stopped", kept), ("stopped at their predicted end", at_pred))
    for name, rs in variants:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                iv = isoflop_power_law_interval(rs, [target])
                ln_e, loss_e, n = _a2_backtest(rs, runs)
            lo, hi = iv.interval("a")
            nlo, nhi = iv.interval(n_opt_name(target))
            print(
                f"  Approach 2 ({name}, {len(rs)} runs): a {iv.a:.3f} [{lo:.3f}, {hi:.3f}]; N_opt({target:.3g}) "
                f"{float(iv.n_opt(target)):.3g} [{nlo:.3g}, {nhi:.3g}]; backtest median |ln N err| {ln_e:.3f}, "
                f"|loss err| {loss_e * 100:.2f}% ({n} pairs)"
            )
        except Exception as e:  # a budget left with too few sizes
            print(f"  Approach 2 ({name}): not fitted: {e}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m analysis.curves.study", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    h = sub.add_parser("harness")
    h.add_argument("root", type=Path, help="a sweep folder of run directories")
    h.add_argument(
        "--huber",
        type=float,
        default=None,
        metavar="DELTA",
        help="fit the prefixes under a Huber loss on log residuals (Luo et al.: 1e-3) instead of least squares",
    )
    h.add_argument(
        "--prior-from",
        type=Path,
        default=None,
        metavar="DIR",
        help="take the sweep prior's end ratios from the runs under DIR (held out) instead of leave-one-out",
    )
    h.add_argument(
        "--train-laws",
        default="tissue",
        help="laws fitted to the training loss, comma-separated (multipower: minutes a run on the CPU sweeps)",
    )
    j = sub.add_parser("joint")
    j.add_argument("root", type=Path, help="a sweep folder of run directories (several sizes and budgets)")
    j.add_argument("--n-boot", type=int, default=50)
    st = sub.add_parser("stopping")
    st.add_argument("root", type=Path)
    st.add_argument("--frac", type=float, default=0.5)
    st.add_argument("--margin", type=float, default=0.02)
    e = sub.add_parser("endpoints")
    e.add_argument("root", type=Path, help="a sweep folder of run directories (several sizes and budgets)")
    e.add_argument("--law", choices=predict.LAWS, default="tissue")
    e.add_argument("--n-boot", type=int, default=50)
    p = sub.add_parser("published")
    p.add_argument("--path", type=Path, default=published.FIXTURE)
    a = ap.parse_args(argv)
    if a.what == "harness":
        laws = tuple(x for x in a.train_laws.split(",") if x)
        bad = [x for x in laws if x not in predict.LAWS]
        if bad:
            ap.error(f"--train-laws: {bad} not among {predict.LAWS}")
        harness(a.root, a.huber, a.prior_from, laws)
    elif a.what == "stopping":
        stopping(a.root, a.frac, a.margin)
    elif a.what == "endpoints":
        endpoints(a.root, a.law, a.n_boot)
    elif a.what == "joint":
        joint(a.root, a.n_boot)
    else:
        published_set(a.path)


if __name__ == "__main__":
    main()
