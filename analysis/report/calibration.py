"""The report's section on Approach 2's per-sweep calibration: which interval it carries and why, in numbers."""

from __future__ import annotations

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
            f"Carried: **{LABELS.get(cal.carried, cal.carried)}**, the narrowest method whose simulated coverage of a "
            f"nominal {cal.level:.0%} is within 2 points for every quantity (or the t interval widened to it). "
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
