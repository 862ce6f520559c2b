"""The report's sections on the sweep itself, before any fit is judged: the plan and its adaptive stage, the runs
used and left out, the IsoFLOP minima, the quality gate and the runs that repeat their data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from analysis.fits.minima import lowest_run
from analysis.numbers import fmt, md_table, sci, with_interval
from analysis.pipeline import Analysis


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
        return f"{x['n_opt']:.3g} [{x['n_opt_lo']:.3g}, {x['n_opt_hi']:.3g}] (x{math.exp(x['width']):.3g})"

    rows = []
    for b in ad["batches"]:
        why = "; ".join(
            f"{c['kind']} at {sci(c['budget'], 3)} N={','.join(f'{n:,}' for n in c['N'])}: {c['reason']}"
            + (f" (expected x{math.exp(c['expected_width_after']):.3g}" if c.get("expected_width_after") else "")
            + (
                (", " if c.get("expected_width_after") else " (") + f"score {c['score_per_pflop']:.3g}/PFLOP)"
                if c.get("score_per_pflop") is not None
                else (")" if c.get("expected_width_after") else "")
            )
            for c in b["chosen"]
        )
        rule = ""
        if b.get("mode"):  # scaling/sweep/batching.py: best / fits / alone, and the seconds it had
            rule = f"{b['mode']}: {b.get('predicted_seconds', float('nan')):.0f} s predicted of "
            rule += f"{b.get('left_seconds', float('nan')):.0f} s left"
            rule += f", {b['threads']} threads" if b.get("threads") else ""
        rows.append([b["batch"], len(b["runs"]), rule or "best", why, iv(b.get("before")), iv(b.get("after"))])
    last = ad["batches"][-1]
    target = (last.get("after") or last.get("before") or {}).get("target") or ad.get("target")
    out = [
        "",
        f"Adaptive stage: after the ladder, each batch is the runs expected to narrow the interval of N_opt at "
        f"{sci(target, 3) if target else 'the target'} FLOPs most per FLOP (the planner's Approach 2 with "
        f"delta-method variances, scaling/core/design.py; its interval, not the report's bootstrap below). A batch "
        f"is the best-scoring one ('best'), or, when that would not finish in the seconds left, the best-scoring "
        f"runs that would ('fits'), or the best single run on every thread ('alone').",
        "",
        md_table(rows, ["batch", "runs", "rule", "chosen because", "N_opt before [90%]", "after"]),
    ]
    stopped = ad.get("stopped") or {}
    if stopped.get("why"):
        out += ["", f"The stage stopped: {stopped['why']}."]
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


def runs_section(an: Analysis) -> str:
    r = an.runs
    predicted = r["loss_predicted"].astype(bool) if "loss_predicted" in r.columns else np.zeros(len(r), bool)
    rows = [
        [
            x.run_id,
            fmt(x.budget),
            fmt(x.N),
            fmt(x.D),
            fmt(x.C),
            fmt(x.tokens_per_param, "g"),
            fmt(x.loss, "loss") + (" (predicted)" if p else ""),
            fmt(getattr(x, "wall_seconds", np.nan), "int"),
        ]
        for x, p in zip(r.itertuples(), predicted)
    ]
    n_pred = int(np.sum(predicted))
    stopped = (
        f" {n_pred} of them were stopped early (train.early_stop_frac): their loss is the predicted end of the planned "
        "run (the early stop's prediction at the stop, by the sweep prior or the Tissue law as its reason says, mapped "
        "onto the final loss's measure by the "
        "median subset -> final offset of the sweep's complete runs), marked (predicted); D and C are the planned ones."
        if n_pred
        else ""
    )
    out = [
        f"{len(r)} runs used.{stopped} N: {an.params_convention.replace('_', '-')} parameters; "
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


def isoflop_section(an: Analysis) -> str:
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
            "AT EDGE (kept)" if p.at_edge else ("lowest run" if lowest_run(p.estimator, p.curvature) else "inside"),
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
        f"sizes). A minimum at or beyond the smallest or largest sampled N is kept and flagged; where the "
        f"parabola opens downward (the runs' noise outweighs the curve) the minimum is the budget's lowest run, "
        f"marked 'lowest run', with no curvature; only a budget of fewer than 3 sizes, or one whose parabola is so "
        f"flat that its vertex lies beyond what floats hold, is not used (its note says which).\n\n"
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
