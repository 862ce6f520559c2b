"""The report's section on Approach 2's per-sweep calibration: which interval it carries and why, in numbers."""

from __future__ import annotations

import numpy as np

from analysis.numbers import short

LABELS = {
    "t": "Student-t interval of the line",
    "t-widened": "t interval widened by the simulated factor",
    "budgets": "pairs bootstrap of the line's points",
    "runs": "run bootstrap (carried before calibration)",
}


def calibration_section(cal, budgets) -> str | None:
    """Markdown: the method carried, each method's simulated coverage and median width for a and for N_opt at each
    report budget, the factors, the noise and generator simulated, and the time it took (None without one)."""
    if cal is None:
        return None
    from analysis.uncertainty.calibration import TOLERANCE
    from analysis.uncertainty.intervals import n_opt_name

    qs = [("a", "a")] + [(n_opt_name(b), f"N_opt at {short(b)}") for b in budgets]
    head = ["interval"] + [f"{label}: coverage, median {'width' if q == 'a' else 'ln(hi/lo)'}" for q, label in qs]
    rows = []
    for method in dict.fromkeys(cal.table["method"]):
        cells = []
        for q, _ in qs:
            cov, width, n = cal.figures(method, q)
            cells.append(f"{cov:.0%}, {width:.3g}" if n else "-")
        name = LABELS.get(method, method) + (" **(carried)**" if method == cal.carried else "")
        name += ", coverage predicted by the second level" if method in ("t", "t-widened") else ""
        n = cal.figures(method, "a")[2]
        rows.append(f"| {name} ({n} sweeps) | " + " | ".join(cells) + " |")
    factors = ", ".join(f"{label} ×{cal.factors[q]:.2f}" for q, label in qs if q in cal.factors)
    nm = cal.noise
    lines = [
        (
            f"Approach 2's interval is chosen on this sweep's own design: its budgets and sizes simulated {cal.n_sims} "
            f"times from {cal.generator}, with seed noise of sd {nm.seed_sd:.3g} nats (from the runs' residuals) and "
            f"{nm.jump_rate:.1%} of runs ending {nm.jump_lo:g}-{nm.jump_hi:g} nats high ({nm.n_flagged} of {nm.n_runs} "
            f"runs were left out as stalled), each through the quality gate and the report's minima "
            f"('{cal.estimator}'). "
            f"Each simulated sweep's own line is the truth of one more simulated sweep (a fast double bootstrap): "
            f"how much further off that second level is tells how far the first is off the real sweep, and the t "
            f"intervals' coverages below are the ones it predicts for this sweep (it may undo a widening the first "
            f"level asks for, never narrow the t interval past the first level's own factor); the bootstraps' are "
            f"the first level's, uncorrected. "
            f"Carried: **{LABELS.get(cal.carried, cal.carried)}**, the narrowest method without a fitted factor whose "
            f"coverage of a nominal {cal.level:.0%} is in [{cal.level:.0%}, {cal.level + TOLERANCE:.0%}] for every "
            f"quantity, else the t interval widened to {cal.level:.0%}. "
            f"Widening factors the simulation fits for the t interval: {factors}. "
            f"{'Read from the cache' if cal.from_cache else f'Computed in {cal.seconds:.1f} s'} "
            f"(`calibration-{cal.key}.json`)."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *rows,
        "",
    ]
    for method, why in cal.skipped.items():
        lines.append(f"{LABELS.get(method, method)}: {why}.")
    return "\n".join(lines)


def law_calibration_section(an) -> str | None:
    """Markdown: Approach 3's and Kaplan's bootstraps calibrated on this sweep's design (issue 20 item 4): the
    method carried, its simulated coverage and width against the run bootstrap's, for a and N_opt at each budget;
    or how to compute it when the report found no cached calibration."""
    from analysis.pipeline import qname

    keys = [k for k in ("approach3", "kaplan") if an.fits.get(k) is not None and an.boots.get(k) is not None]
    if not keys:
        return None
    qs = [("a", "a")] + [(qname("N_opt", b), f"N_opt at {short(b)}") for b in an.budgets]
    lines = []
    missing = [k for k in keys if k not in an.law_calibrations]
    if missing:
        lines.append(
            f"{', '.join(an.labels.get(k, k) for k in missing)}: the run bootstrap as it is, not calibrated on this "
            f"sweep (the simulation takes minutes, over the report's 30 s): `python -m analysis.studies "
            f"lawcalibration {an.source}` computes it into the report folder's cache, which the next report reads."
        )
    for k in keys:
        cal = an.law_calibrations.get(k)
        if cal is None:
            continue
        if cal.half_widths:
            lines += ["", _single_loop_lines(an, k, cal, qs)]
            continue
        label = {"runs": "run bootstrap (percentile)", "runs-scaled": "run bootstrap scaled by the simulated factor"}
        head = ["interval"] + [f"{t}: coverage, median {'width' if q == 'a' else 'ln(hi/lo)'}" for q, t in qs]
        lines += [
            "",
            f"**{an.labels.get(k, k)}**: carried **{label[cal.carried]}**, from {cal.n_sims} simulated sweeps of this "
            f"design drawn from the fitted law (seed sd {cal.noise.seed_sd:.3g} nats, {cal.noise.jump_rate:.1%} of "
            f"runs {cal.noise.jump_lo:g}-{cal.noise.jump_hi:g} nats high, through the quality gate), each refitted and "
            f"bootstrapped {cal.n_resamples} times ("
            + ("read from the cache" if cal.from_cache else f"computed in {cal.seconds:.0f} s")
            + f", `law-calibration-{k}-{cal.key}.json`). Factors: "
            + ", ".join(f"{t} ×{cal.factors[q]:.2f}" for q, t in qs if q in cal.factors)
            + ".",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for m in ("runs", "runs-scaled"):
            cells = []
            for q, _ in qs:
                cov, w, n = cal.figures(m, q)
                cells.append(f"{cov:.0%}, {w:.3g}" if n else "-")
            lines.append(f"| {label[m]}{' **(carried)**' if m == cal.carried else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# per law: how its simulated sweeps are refitted at once, and what the known-truth study found (RESULTS.md)
SINGLE_LOOP_SOLVER = {"approach3": "L-BFGS", "kaplan": "Levenberg-Marquardt"}
SINGLE_LOOP_STUDY = {
    "approach3": "Against a known truth (`python -m analysis.studies a3calibration`, RESULTS.md 'Stop 29'; six "
    "designs, six or seven seeds, 640-1140 true sweeps each) it covered 88.4-91.9% of a nominal 90% (harsh 89%, "
    "default 91%, cpu 89-90%, a rough CPU design 88-89%, two designs with 5% stalled runs 91-92%), narrower than the "
    "run bootstrap, which covered 93-100%: within 88-92% on every design.",
    "kaplan": "Against a known Kaplan truth (`python -m analysis.studies a3calibration --law kaplan`, RESULTS.md "
    "'Kaplan with both'; four designs, three seeds, 180 true sweeps each), with Kaplan's law fitted by a Huber loss "
    "on ln L, its errors studentized and its level only widened, it covered 88.9-92.8% of a nominal 90% (89-90% on "
    "a design with 5% stalled runs the gate mostly misses, 92-93% on a low-noise one), where the least-squares "
    "fit's run bootstrap covered 82-92%: within 88-92% to its s.e. (2 points).",
}


def _single_loop_lines(an, key: str, cal, qs) -> str:
    """The in-report calibration (``law_calibration.single_loop``, carried) in words, with the run bootstrap's
    width and the plain single loop's."""
    from analysis.pipeline import intervals

    boot = intervals(an.boots.get(key))
    parts = []
    for q, t in qs:
        if q not in cal.half_widths:
            continue
        lo, hi = boot.get(q, (float("nan"), float("nan")))
        bw = (hi - lo) if q == "a" else (float(np.log(hi / lo)) if lo > 0 and hi > 0 else float("nan"))
        one = cal.single_half_widths.get(q, float("nan"))
        parts.append(
            f"{t} {2 * cal.half_widths[q]:.3g} at level {cal.levels.get(q, cal.level):.3f} (single loop at "
            f"{cal.level:.0%} {2 * one:.3g}; run bootstrap {bw:.3g})"
        )
    return (
        f"**{an.labels.get(key, key)}**: carried **the simulated interval, its level calibrated by a fast double "
        f"bootstrap**: this design simulated {cal.n_sims} times from the fitted law (relative seed noise, sd "
        f"{cal.noise.seed_sd:.3g} in ln loss from the law's own residuals, {cal.noise.jump_rate:.1%} of runs "
        f"{cal.noise.jump_lo:g}-{cal.noise.jump_hi:g} nats high, through the quality gate), every simulated sweep "
        f"fitted once in one batched {SINGLE_LOOP_SOLVER.get(key, 'solve')}; then one sweep simulated from each of "
        "those fits with the noise re-estimated on its sweep, fitted "
        "again. The interval is the estimate ± the lambda quantile of the first level's |estimate - truth| (ln for "
        "N_opt), each studentized by its simulated sweep's own noise estimate (a t interval's allowance for a noise "
        f"estimate that varies), lambda the level at which the second level says the first covers {cal.level:.0%}; "
        f"computed in {cal.seconds:.1f} s. Widths carried (a: hi - lo; N_opt: ln(hi/lo)): "
        + "; ".join(parts)
        + ". "
        + SINGLE_LOOP_STUDY.get(key, "")
        + " The double loop (`python -m analysis.studies lawcalibration`, minutes) replaces it when its cache is "
        "present."
    )
