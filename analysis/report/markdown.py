"""The report of one sweep as markdown: ``render_markdown(an)`` turns an ``Analysis`` (``analysis.pipeline``) into
report.md, section by section; ``write_report`` analyses a sweep and writes report.md, runs.csv, backtest.csv and
every figure (``analysis.report.figures``).

Rendering computes nothing new: every number here is a field of the Analysis.
"""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path

import numpy as np

from analysis.data import load
from analysis.fits.datacon import DataConstrainedFit
from analysis.numbers import fmt, sci, with_interval
from analysis.pipeline import (
    DEFAULT_LEVEL,
    DEFAULT_N_BOOT,
    Analysis,
    a2_interval_source,  # noqa: F401
    analyse,
    fit_intervals,
    intervals,
    qname,
)
from analysis.report.calibration import calibration_section, law_calibration_section
from analysis.report.figures import (  # noqa: F401
    CAPTIONS,
    FIGURES,
    figure_order,
    make_figures,
    missing_figures,
    render_early,
    write_figures,
)


def md_table(rows: list[list], header: list[str]) -> str:
    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def plan_section(an: Analysis) -> str | None:
    """What the planner chose and why, predicted against measured wall time, and a sequential sweep's stages."""
    p = an.sweep_plan
    if not p:
        return None
    budgets = p.get("budgets") or sorted({r["budget"] for r in p.get("runs", []) if r.get("budget")})
    out = [
        f"Budgets: {', '.join(sci(b, 3) for b in budgets)} FLOPs"
        + (f" ({budgets[-1] / budgets[0]:.0f}x)" if len(budgets) > 1 else "")
        + ".",
        "",
        f"Why: {p.get('reason', 'not recorded')}.",
        "",
    ]
    pred, act = p.get("predicted_wall_seconds"), p.get("actual_wall_seconds")
    wall = f"Wall time of the training: predicted {pred / 60:.1f} min" if pred else "No predicted wall time"
    times = p.get("times") or {}
    if pred and act and (p.get("adaptive") or {}).get("batches") and times.get("ladder_s") is not None:
        # an adaptive sweep: the prediction was the ladder's; the adaptive stage then used the time left
        share = (p.get("adaptive") or {}).get("budget_seconds")
        wall = (
            f"Wall time of the training: the ladder predicted {pred / 60:.1f} min, measured "
            f"{times['ladder_s'] / 60:.1f} min ({times['ladder_s'] / pred:.2f}x the prediction); the adaptive stage "
            f"{(times.get('adaptive_s') or 0) / 60:.1f} min"
            + (f" (its share {share / 60:.1f} min)" if share else "")
            + f"; {act / 60:.1f} min in all"
        )
    elif act:
        wall += (
            f", measured {act / 60:.1f} min ({act / pred:.2f}x the prediction)"
            if pred
            else f", measured {act / 60:.1f} min"
        )
    else:
        wall += "; not measured (the sweep has not finished through its planner)"
    out += [wall + f" on {p.get('jobs', '?')} parallel job(s); machine: {p.get('machine', 'unknown')}.", ""]
    if p.get("max_epochs") is not None:
        out += [
            f"Most epochs of any run: {p['max_epochs']:.2f} (of {p.get('n_train_tokens', 0):,} unique training "
            f"tokens).",
            "",
        ]
    stages = p.get("stages") or []
    if stages:
        out += [
            "Sequential sweep: budgets ran smallest first; each budget's sizes were centred on N_opt from the "
            "minima measured before it, and a minimum at an edge got more sizes past it. The minimum here is "
            "the planner's 3-point parabola, used only to place sizes; the fits below are the report's own.",
            "",
        ]
        rows = []
        for st in stages:
            m = st.get("minimum") or {}
            rows.append(
                [
                    sci(st["budget"], 3),
                    sci(st["centre"], 3),
                    len(st.get("run_ids", [])),
                    st.get("extensions", 0),
                    sci(m["n"], 3) if m else "-",
                    "yes" if m and m.get("edge") is None else (f"no ({m['edge']} edge)" if m else "-"),
                    st.get("note", ""),
                ]
            )
        out.append(
            md_table(rows, ["budget", "centred on N", "runs", "added past an edge", "minimum N", "bracketed", "note"])
        )
        fp = p.get("fitted_prior")
        if fp:
            out += [
                "",
                f"N_opt(C) the planner ended with: {fp['N0']:.3g} (C / {fp['C0']:.3g})^{fp['a']:.3f} "
                f"({fp['source']}); written to prior.json for the next sweep's `--prior`.",
            ]
    out += _adaptive_lines(p.get("adaptive"))
    return "\n".join(out)


def _adaptive_lines(ad: dict | None) -> list[str]:
    """The adaptive stage (scaling/sweep/adaptive.py): each batch, why its runs were chosen, what they did to the
    planner's interval of N_opt at the target, and the measured seed-to-seed spread."""
    if not ad or not ad.get("batches"):
        return []

    def iv(x: dict | None) -> str:
        if not x or x.get("n_opt_lo") is None:
            return "no interval"
        return f"{x['n_opt']:.3g} [{x['n_opt_lo']:.3g}, {x['n_opt_hi']:.3g}] (x{math.exp(x['width']):.2f})"

    rows = []
    for b in ad["batches"]:
        why = "; ".join(
            f"{c['kind']} at {sci(c['budget'], 3)} N={','.join(f'{n:,}' for n in c['N'])}: {c['reason']}"
            + (f" (expected x{math.exp(c['expected_width_after']):.2f})" if c.get("expected_width_after") else "")
            for c in b["chosen"]
        )
        rows.append([b["batch"], len(b["runs"]), why, iv(b.get("before")), iv(b.get("after"))])
    target = ad["batches"][0]["before"].get("target")
    out = [
        "",
        f"Adaptive stage: after the ladder, each batch is the runs expected to narrow the interval of N_opt at "
        f"{sci(target, 3) if target else 'the target'} FLOPs most per FLOP (the planner's Approach 2 with "
        f"delta-method variances, scaling/core/design.py; its interval, not the report's bootstrap below).",
        "",
        md_table(rows, ["batch", "runs", "chosen because", "N_opt before [90%]", "after"]),
    ]
    sp = ad.get("seed_spread") or {}
    if sp:
        pts = sp.get("points") or []
        out += [
            "",
            f"Seed-to-seed spread: {len(pts)} size(s) ran more than once"
            + (f", pooled sd {sp['pooled_sd']:.3f} nats ({sp['dof']} dof)" if sp.get("pooled_sd") else "")
            + f"; the planner's noise per run {sp.get('noise_sd', float('nan')):.3f} nats "
            f"({sp.get('noise_source', '?')}); {len(sp.get('gated') or [])} run(s) left out by its gate.",
        ]
    return out


def _runs_section(an: Analysis) -> str:
    r = an.runs
    rows = [
        [
            x.run_id,
            fmt(x.budget),
            fmt(x.N),
            fmt(x.D),
            fmt(x.C),
            fmt(x.tokens_per_param, "g"),
            fmt(x.loss, "loss"),
            fmt(getattr(x, "wall_seconds", np.nan), "int"),
        ]
        for x in r.itertuples()
    ]
    out = [
        f"{len(r)} runs used. N: {an.params_convention.replace('_', '-')} parameters; "
        f"C: training FLOPs under the '{an.flops_convention}' convention.",
        "",
        md_table(
            rows, ["run", "budget (FLOPs)", "N", "D (tokens)", "C (FLOPs)", "tokens/param", "final val loss", "wall s"]
        ),
    ]
    bad = an.scan[~an.scan["usable"]]
    if len(bad):
        out += [
            "",
            f"{len(bad)} run directories left out:",
            "",
            md_table(
                [[_folder(b.run_dir, an.source, b.run_id), b.status, b.reason] for b in bad.itertuples()],
                ["run folder", "status", "reason"],
            ),
        ]
    return "\n".join(out)


def _folder(run_dir, source: str, run_id: str) -> str:
    """A left-out run's folder relative to the analysed folder (a duplicate shares its run id with the kept run, so
    the id alone would name the wrong one)."""
    try:
        return str(Path(run_dir).resolve().relative_to(Path(source).resolve()))
    except (TypeError, ValueError, OSError):
        return str(run_dir) if run_dir else run_id


def _isoflop_section(an: Analysis) -> str:
    from analysis.fits.approach2 import Approach2Result

    a2 = an.fits.get("approach2")
    if a2 is None:
        return f"No IsoFLOP fit: {an.notes.get('approach2', 'not run')}."
    assert isinstance(a2, Approach2Result)
    lvl = f"{100 * an.level:.0f}%"
    mi = an.a2.minima.set_index("budget") if an.a2.minima is not None and len(an.a2.minima) else None

    def n_cell(p):
        if mi is None or p.budget not in mi.index:
            return fmt(p.N_opt)
        r = mi.loc[p.budget]
        return with_interval(p.N_opt, r["N_lo"], r["N_hi"], "sci")

    rows = [
        [
            fmt(p.budget),
            fmt(p.C),
            n_cell(p),
            fmt(p.D_opt),
            fmt(p.D_opt / p.N_opt, "g"),
            fmt(p.loss_opt, "loss"),
            "AT EDGE (kept)" if p.at_edge else "inside",
            p.estimator,
            fmt(p.curvature, "g"),
            fmt(p.n_runs, "int"),
            fmt(bool(p.used)) + (f": {p.note}" if p.note and not p.used else ""),
        ]
        for p in a2.per_budget.sort_values("C").itertuples()
    ]
    text = (
        f"Each budget's minimum of loss in ln N by the '{a2.estimator}' estimator "
        f"(analysis/fits/minima.py; a budget with too few sizes for it gets the parabola, named in the "
        f"'estimator' column). N_opt carries the {lvl} within-budget bootstrap interval of that minimum "
        f"(bootstrap_minimum, 200 resamples of the budget's runs; blank where too few resamples had enough "
        f"sizes). No budget is dropped: a minimum at or beyond the smallest or largest sampled N is kept and "
        f"flagged.\n\n"
        + md_table(
            rows,
            [
                "budget",
                "C",
                f"N_opt [{lvl}]",
                "D_opt",
                "tokens/param",
                "loss at minimum",
                "minimum",
                "estimator",
                "curvature",
                "runs",
                "used",
            ],
        )
    )
    if a2.n_at_edge:
        edge = a2.per_budget[a2.per_budget["at_edge"].fillna(False).astype(bool)].sort_values("C")
        listed = ", ".join(
            f"{sci(p.budget, 3)} (N_opt {sci(p.N_opt, 3)}, sampled {sci(p.N_min, 3)}–{sci(p.N_max, 3)})"
            for p in edge.itertuples()
        )
        text += (
            f"\n\n**{a2.n_at_edge} budget(s) have their minimum at the edge of the sampled sizes: {listed}.** "
            "That minimum is an extrapolation of the budget's curve (or the end of the sampled range for the "
            "spline); add sizes on that side before trusting it."
        )
    return text


def quality_section(an: Analysis) -> str:
    """Runs the quality gate (analysis/data/quality.py) left out, with its reasons, from the scan."""
    scan = an.scan
    gated = scan[(~scan["usable"]) & scan["reason"].fillna("").str.startswith("quality gate")]
    if gated.empty:
        return "The quality gate (analysis/data/quality.py: duplicates, damaged or implausible runs) left out no run."
    return (
        f"The quality gate (analysis/data/quality.py) left out {len(gated)} run(s); they are not in any fit:\n\n"
        + md_table([[g.run_id, g.reason] for g in gated.itertuples()], ["run", "reason"])
    )


def repeated_data_section(an: Analysis) -> str:
    """check_epochs' warning and, when runs repeat their data, how far the data-constrained correction moves the
    loss predicted at each budget's N_opt."""
    from analysis.fits.datacon import EPOCH_WARN_LIMIT

    out = []
    ep = an.runs["epochs"] if "epochs" in an.runs.columns else None
    most = float(np.nanmax(ep)) if ep is not None and len(ep) else float("nan")
    if an.repeated.warning:
        out += [f"**Warning:** {an.repeated.warning}.", ""]
    else:
        out += [
            f"No run trains for more than {EPOCH_WARN_LIMIT:g} epochs of its data (the most: "
            f"{fmt(most, 'g')} epochs), where repeated tokens start to be worth less than fresh ones "
            "(Muennighoff et al. 2023); the fresh-data fits above need no correction.",
            "",
        ]
    sh = an.repeated.shift
    if sh is not None and len(sh):
        rows = [
            [
                sci(r.C, 3),
                r.allocation,
                sci(r.N, 3),
                sci(r.D, 3),
                fmt(r.epochs, "g"),
                fmt(r.loss_unconstrained, "loss"),
                fmt(r.loss_constrained, "loss"),
                fmt(r.rel_delta, "pct"),
            ]
            for r in sh.itertuples()
        ]
        out += [
            f"Some runs repeat their data (> 1 epoch). Loss at each prediction budget's N_opt, D_opt with "
            f"{sci(float(sh['U'].iloc[0]), 3)} unique tokens, by {an.repeated.law_name}, with and without the "
            "repetition correction (analysis.fits.datacon.prediction_shift):",
            "",
            md_table(
                rows,
                ["C", "allocation", "N_opt", "D_opt", "epochs", "loss, fresh data", "loss, data-constrained", "shift"],
            ),
        ]
    return "\n".join(out)


def fits_section(an: Analysis, keys=None) -> str:
    out = []
    lvl = f"{100 * an.level:.0f}%"
    for key in keys if keys is not None else an.keys:
        fit = an.fits.get(key)
        out += [f"### {an.labels.get(key, key)}", ""]
        if fit is None:
            out += [f"Not available: {an.notes.get(key, 'not run')}", ""]
            continue
        boot = an.boots.get(key)
        iv = fit_intervals(an, key)
        rows = [
            [p.label, with_interval(p.value, *iv.get(p.quantity or "", (np.nan, np.nan)), p.kind)]
            for p in fit.parameters()
        ]
        if rows:
            out += [md_table(rows, ["parameter", f"estimate [{lvl} interval]" if iv else "estimate"]), ""]
        if isinstance(fit, DataConstrainedFit) and fit.n_repeated == 0:
            out += [
                "No run repeats its data (all at most one epoch): R_D* is not constrained by these runs (it "
                "stays where the optimiser started), and the law is Approach 3's with excess parameters "
                "discounted.",
                "",
            ]
        if key == "approach2":
            out += [
                f"Intervals of a (and of N_opt in the predictions and figure): {a2_interval_source(an)}. "
                f"The run bootstrap gives a "
                + with_interval(fit.a, *intervals(boot).get("a", (np.nan, np.nan)), "exp")
                + "."
                + (
                    " The Student-t interval of the line through the minima (not carried, see why) gives a "
                    + with_interval(fit.a, *an.a2.t_check.interval("a"), "exp")
                    + "."
                    if an.a2.t_check is not None
                    else ""
                ),
                "",
            ]
        if boot is None and an.n_boot:
            out += [f"Bootstrap: {an.notes.get(key + '_bootstrap', 'not run')}", ""]
        conv = _convergence(fit)
        if conv:
            out += [conv, ""]
    return "\n".join(out)


def _convergence(fit) -> str:
    bits = [f"{k} = {fmt(v, 'g') if not isinstance(v, (bool, str)) else v}" for k, v in fit.fit_summary().items()]
    return ("Fit: " + ", ".join(bits) + ".") if bits else ""


def _predictions_section(an: Analysis) -> str:
    out = []
    lvl = f"{100 * an.level:.0f}%"
    for b in an.budgets:
        p = an.predictions(b)
        out += [f"### C = {sci(b, 3)} FLOPs", ""]
        if p.empty:
            out += ["No approach could predict.", ""]
            continue
        rows = []
        for r in p.itertuples():

            def iv(q, kind, r=r):
                return with_interval(getattr(r, q), getattr(r, f"{q}_lo", np.nan), getattr(r, f"{q}_hi", np.nan), kind)

            name = f"**{r.source} (headline)**" if r.headline else r.source
            rows.append([name, iv("N_opt", "sci"), iv("D_opt", "sci"), iv("tokens_per_param", "g"), iv("loss", "loss")])
        out += [md_table(rows, ["", "N_opt", "D_opt (tokens)", "tokens/param", "loss"]), ""]
    out += [
        f"Intervals: {lvl} bootstrap percentile intervals over {an.n_boot} resamples of runs (seed {an.seed}), "
        f"except Approach 2's N_opt: {a2_interval_source(an)}. "
        "Published laws are quoted from their papers, under their own FLOP and parameter conventions (mostly "
        "C ≈ 6ND, non-embedding or total parameters as each paper used), so compare slopes more than offsets."
    ]
    return "\n".join(out)


DISTANCE_BINS = (1.0, 3.0, 10.0, 30.0, 100.0, math.inf)


def backtest_section(an: Analysis) -> str:
    bt = an.rolling
    if bt is None:
        return f"No backtest: {an.notes.get('backtest', 'not run')}."
    summ = [
        [
            ("**" + r.label + " (best)**") if r.law == bt.best else r.label,
            r.n_pairs,
            fmt(r.median_abs_log_err_N, "exp"),
            fmt(r.median_abs_rel_err_loss, "pct").lstrip("+"),
            fmt(r.max_distance, "g"),
        ]
        for r in bt.summary.itertuples()
    ]
    t = bt.table.copy()
    t["bin"] = np.digitize(t["distance"], DISTANCE_BINS[1:-1])
    heads = [
        f"{DISTANCE_BINS[i]:g}–{DISTANCE_BINS[i + 1]:g}x"
        if np.isfinite(DISTANCE_BINS[i + 1])
        else f"> {DISTANCE_BINS[i]:g}x"
        for i in range(len(DISTANCE_BINS) - 1)
    ]
    by = []
    for law in bt.summary["law"]:
        g = t[t["law"] == law]
        label = bt.summary.set_index("law").loc[law, "label"]
        cells = []
        for i in range(len(heads)):
            h = g[g["bin"] == i]
            cells.append(
                "–"
                if h.empty
                else f"{h['log_err_N'].abs().median():.3f} / "
                + (fmt(h["rel_err_loss"].abs().median(), "pct").lstrip("+") if h["rel_err_loss"].notna().any() else "–")
                + f" ({len(h)})"
            )
        by.append([label] + cells)
    text = [
        f"For every cutoff budget, each law is fitted on the budgets up to it and predicts the optimum of every "
        f"larger budget; 'observed' is that budget's own IsoFLOP minimum ('{bt.estimator}' estimator). Error in "
        f"N_opt: |ln(N_pred / N_obs)| (0.1 ≈ 10%); error in the loss: |loss_pred / loss_obs - 1|. "
        f"{bt.n_pairs} (cutoff, larger budget) pairs; the full table is backtest.csv.",
        "",
        md_table(summ, ["law", "pairs predicted", "median ln-error in N_opt", "median loss error", "largest distance"]),
        "",
        f"**Best on this sweep: {an.labels.get(bt.best, bt.best) if bt.best else 'none'}.** Rule: {bt.RULE}.",
        "",
        "Median errors by extrapolation distance C_target / C_cutoff (N_opt ln-error / loss error (pairs)):",
        "",
        md_table(by, ["law"] + heads),
    ]
    if bt.table["obs_at_edge"].any():
        text += [
            "",
            "Some observed minima lie at the edge of their budget's sampled sizes: those 'observed' optima "
            "are themselves extrapolations.",
        ]
    return "\n".join(text)


def conventions_section(an: Analysis) -> str:
    ct = an.conventions
    if ct is None:
        return f"Not computed: {an.notes.get('conventions', 'skipped')}."
    lvl = f"{100 * ct.level:.0f}%"
    rows = []
    for r in ct.table.itertuples():
        name = {"approach2": "Approach 2", "approach3": "Approach 3"}.get(r.approach, r.approach)
        rows.append(
            [
                name,
                r.flops,
                r.params.replace("_", "-"),
                with_interval(r.a, r.lo, r.hi, "exp"),
                "loaded" if r.loaded else "",
            ]
        )
    n_boot = int(ct.table["n_boot"].max()) if len(ct.table) else 0
    text = [
        f"The exponent a of N_opt ∝ C^a refitted under every recorded FLOP convention and both parameter "
        f"conventions ({lvl} intervals over {n_boot} resamples). Approach 3's L(N, D) does not involve C: its a "
        "under a FLOP convention is the slope of ln N_opt against ln C across the sweep's budgets after "
        "converting its 6ND allocation to that convention.",
        "",
        md_table(rows, ["approach", "FLOPs", "N", f"a [{lvl} interval]", ""]),
    ]
    if ct.warnings:
        text += ["", "**Warning: the convention moves a by more than its interval.**", ""]
        text += [f"- {w}" for w in ct.warnings]
    else:
        text += ["", "No convention moves a outside the loaded convention's interval."]
    return "\n".join(text)


def _local_exponents(law, C: float) -> tuple[float, float]:
    """d log N_opt / d log C and d log D_opt / d log C of any allocation law at C (a central difference)."""
    lo, hi = law.compute_optimal(C / 1.1), law.compute_optimal(C * 1.1)
    step = 2 * math.log(1.1)
    return (math.log(hi.N_opt / lo.N_opt) / step, math.log(hi.D_opt / lo.D_opt) / step)


def _published_section(an: Analysis) -> str:
    """Exponents and tokens per parameter of each fit beside each published law, with conventions and sources."""
    from analysis.laws.published import PUBLISHED, published_label

    b0 = an.budgets[0]
    lvl = f"{100 * an.level:.0f}%"
    rows = []
    for key in an.keys:
        fit, alloc = an.fits.get(key), an.allocators.get(key)
        if fit is None:
            continue
        assert alloc is not None  # the pipeline gives every fit an allocator
        iv = fit_intervals(an, key)
        a, b = float(fit.a), float(fit.b)
        try:
            tpp = alloc.compute_optimal(b0).tokens_per_param
        except (ValueError, ArithmeticError) as e:  # a degenerate fit has no finite optimum
            rows.append([an.labels.get(key, key) + ", this sweep", f"no allocation: {e}", "", "", ""])
            continue
        rows.append(
            [
                an.labels.get(key, key) + ", this sweep",
                with_interval(a, *iv.get("a", (np.nan, np.nan)), "exp"),
                with_interval(b, *iv.get("b", (np.nan, np.nan)), "exp"),
                with_interval(tpp, *iv.get(qname("tokens_per_param", b0), (np.nan, np.nan)), "g"),
                f"{an.flops_convention} / {an.params_convention}",
            ]
        )
    for name, law in PUBLISHED.items():
        try:
            a, b = _local_exponents(law, b0)
            tpp = law.compute_optimal(b0).tokens_per_param
        except Exception as e:
            rows.append([published_label(name), f"not evaluable: {e}", "", "", ""])
            continue
        rows.append(
            [
                published_label(name),
                fmt(a, "exp"),
                fmt(b, "exp"),
                fmt(tpp, "g"),
                f"{law.flops_convention} / {law.params_convention}",
            ]
        )
    out = [
        f"a and b: exponents of N_opt ∝ C^a and D_opt ∝ C^b ({lvl} bootstrap intervals for this sweep's fits; "
        f"for published laws the local slope at C = {sci(b0, 3)}). Tokens per parameter at C = {sci(b0, 3)} "
        "FLOPs. Published laws count FLOPs and parameters their own way (last column), so compare exponents more "
        "than levels.",
        "",
        md_table(rows, ["", "a", "b", "tokens/param", "FLOPs / params convention"]),
    ]
    srcs = [[published_label(name), law.source] for name, law in PUBLISHED.items()]
    if srcs:
        out += ["", "Sources:", "", md_table(srcs, ["law", "source"])]
    return "\n".join(out)


def _summary_section(an: Analysis) -> str:
    lines = []
    b = an.budgets[0]
    p = an.predictions(b)
    mine = p[p["kind"] == "this sweep"] if len(p) else p
    if an.headline is not None:
        lines += [f"**Headline: {an.labels.get(an.headline, an.headline)}**, because {an.headline_why}.", ""]
    if len(mine):
        lines.append(f"At C = {sci(b, 3)} FLOPs (headline first, the others beside it):")
        lines.append("")
        for r in mine.itertuples():
            name = f"**{r.source}**" if r.headline else r.source
            lines.append(
                f"- {name}: N_opt = {with_interval(r.N_opt, r.N_opt_lo, r.N_opt_hi)}, "
                f"D_opt = {with_interval(r.D_opt, r.D_opt_lo, r.D_opt_hi)} tokens "
                f"({fmt(r.tokens_per_param, 'g')} tokens/param)"
                + (f", loss {fmt(r.loss, 'loss')}" if np.isfinite(r.loss) else "")
            )
    else:
        lines.append("No approach could be fitted on this sweep; see Notes.")
    exps = []
    for key in an.keys:
        fit = an.fits.get(key)
        a = fit.a if fit is not None else None
        if isinstance(a, float) and np.isfinite(a):
            six_nd = an.conversion.ratio is not None and an.allocators.get(key) is not fit  # converted from 6ND
            a_iv = with_interval(a, *fit_intervals(an, key).get("a", (np.nan, np.nan)), "exp")
            exps.append(f"{an.labels.get(key, key)} a = {a_iv}" + (" (C = 6ND)" if six_nd else ""))
    if exps:
        which = (
            "Approach 2's from the Student-t interval of its line, the others'"
            if an.a2.interval is not None
            else "each"
        )
        if an.a2.calibration is not None and an.a2.interval is not None:
            which = "Approach 2's from the interval its calibration on this design chose, the others'"
        lines += [
            "",
            f"Exponent of N_opt ∝ C^a [{100 * an.level:.0f}% interval; {which} from the run bootstrap"
            + (
                f" ({', '.join(an.labels.get(k, k) for k, c in an.law_calibrations.items() if c.carried != 'runs')}"
                ": as calibrated on this design)"
                if any(c.carried != "runs" for c in an.law_calibrations.values())
                else ""
            )
            + "]: "
            + "; ".join(exps)
            + " (Hoffmann et al. 2022: 0.50, 0.49, 0.46 for Approaches 1, 2, 3; Kaplan et al. 2020: 0.73).",
        ]
    if an.conventions is not None and an.conventions.warnings:
        lines += [
            "",
            "**Warning:** the exponent depends on the FLOP or parameter convention more than on the noise "
            "(see Conventions).",
        ]
    return "\n".join(lines)


def _notes_section(an: Analysis, missing: dict) -> str:
    notes = {**an.notes, **{(k if k.startswith("section ") else f"figure_{k}"): v for k, v in missing.items()}}
    if not notes:
        return "None: every fit, bootstrap, backtest and figure was made."
    return "\n".join(f"- **{k}**: {v}" for k, v in notes.items())


def render_markdown(an: Analysis, figure_names=(), failed: dict | None = None) -> str:
    """report.md of ``an``; ``failed`` (name -> why) lists the figures and sections that could not be made, and
    gains the sections that fail here: each is listed in Notes with its reason, everything else is written."""
    name = Path(an.source).name
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    head = [
        f"# Scaling-law report: {name}",
        "",
        f"Source `{an.source}`, written {now}. FLOPs convention `{an.flops_convention}`, parameter convention "
        f"`{an.params_convention}`; bootstrap {an.n_boot} resamples, seed {an.seed}, "
        f"{100 * an.level:.0f}% intervals. Losses in nats/token.",
        "",
    ]
    if an.conversion.ratio is not None:
        head += [
            f"Approach 3 and Kaplan allocate under C = 6ND; their predictions here are converted to the "
            f"'{an.flops_convention}' FLOPs of this sweep by the **{an.conversion.route}** route: "
            f"{an.conversion.ratio.describe()}."
            + (f" (The exact route does not apply: {an.conversion.why}.)" if an.conversion.why else ""),
            "",
        ]
    else:
        head += ["C is 6ND under the loaded conventions: no FLOP conversion is needed.", ""]
    failed = {} if failed is None else failed
    sections = []
    for title, render in [
        ("Summary", _summary_section),
        ("Sweep plan", plan_section),
        ("Runs", _runs_section),
        ("Quality gate", quality_section),
        ("IsoFLOP minima (Approach 2)", _isoflop_section),
        ("Calibration of Approach 2's interval", lambda an: calibration_section(an.a2.calibration, an.budgets)),
        ("Calibration of Approach 3's and Kaplan's intervals", law_calibration_section),
        ("Fits", fits_section),
        ("Predictions", _predictions_section),
        ("Backtest", backtest_section),
        ("Repeated data", repeated_data_section),
        ("End-to-end truth", lambda an: an.truth.markdown() if an.truth is not None else None),  # synthetic only
        ("Conventions", conventions_section),
        ("Comparison to published laws", _published_section),
    ]:
        try:
            text = render(an)
        except Exception as e:  # noqa: BLE001  (one section that cannot be computed never costs the others)
            failed[f"section {title}"] = f"not computed: {type(e).__name__}: {e}"
            text = f"Not computed: {type(e).__name__}: {e} (see Notes)."
        if text is not None:
            sections.append((title, text))
    if figure_names:
        figs = []
        for f in figure_names:
            figs += [
                f"### {f.replace('_', ' ')}",
                "",
                CAPTIONS.get(f, ""),
                "",
                f"![{f}]({f}.png)",
                f"([SVG]({f}.svg))",
                "",
            ]
        sections.append(("Figures", "\n".join(figs)))
    sections.append(("Notes", _notes_section(an, {**missing_figures(an), **failed})))
    body = []
    for title, text in sections:
        body += [f"## {title}", "", text.rstrip(), ""]
    return "\n".join(head + body)


def write_report(
    sweep_dir,
    out_dir=None,
    *,
    n_boot: int = DEFAULT_N_BOOT,
    seed: int = 0,
    budgets=None,
    flops: str = load.DEFAULT_FLOPS,
    params: str = load.DEFAULT_PARAMS,
    level: float = DEFAULT_LEVEL,
    grid="full",
    n_jobs: int | None = None,
    E: float | None = None,
    **analyse_kw,
) -> Path:
    """Analyse ``sweep_dir`` and write ``report.md``, ``runs.csv``, ``backtest.csv`` and every figure (PNG and SVG)
    into ``out_dir`` (default ``<sweep_dir>/report``). Returns the path of report.md."""

    sweep_dir = Path(sweep_dir)
    if not sweep_dir.exists():  # (the default out_dir lies inside it: never create a missing sweep's folder)
        raise FileNotFoundError(f"sweep directory {str(sweep_dir)!r} does not exist")
    out_dir = writable_dir(Path(out_dir) if out_dir is not None else sweep_dir / "report")  # before any fitting
    analyse_kw.setdefault("calibration_cache", out_dir)  # the calibration is cached beside the report
    analyse_kw.setdefault("figures_beside", render_early)  # figures of the fits drawn while the bootstraps run
    an = analyse(
        sweep_dir,
        flops=flops,
        params=params,
        n_boot=n_boot,
        seed=seed,
        budgets=budgets,
        level=level,
        grid=grid,
        n_jobs=n_jobs,
        E=E,
        **analyse_kw,
    )
    return write_analysis(an, out_dir)


def write_analysis(an: Analysis, out_dir: Path) -> Path:
    """Write an Analysis's ``report.md``, ``runs.csv``, ``backtest.csv`` and figures into ``out_dir`` (which
    exists); returns the path of report.md."""
    from scaling.core.records import write_text_atomic

    failed: dict[str, str] = {}
    with an.sections("figures"):
        names = figure_order(dict.fromkeys(p.stem for p in write_figures(an, out_dir, failed)))
    with an.sections("report.md"):
        an.runs.to_csv(out_dir / "runs.csv", index=False)
        if an.rolling is not None:
            an.rolling.table.to_csv(out_dir / "backtest.csv", index=False)
        path = out_dir / "report.md"
        write_text_atomic(path, render_markdown(an, names, failed))
    return path


def writable_dir(out_dir: Path) -> Path:
    """``out_dir``, created if absent, once a file could be written in it; OSError naming the folder otherwise
    (checked before the minutes of fitting a report takes, not after)."""
    import tempfile

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out_dir, prefix=".write-check-"):
            pass
    except OSError as e:
        raise OSError(
            f"output folder {str(out_dir)!r} cannot be written ({e.strerror or e}); it must be a folder "
            f"you can create and write (pass another with --out)"
        ) from None
    return out_dir
