"""A comparison as a report: the figure (both frontiers with bands, and M(C) with its band, targets marked) and the
markdown section with its tables. ``write_comparison`` writes compare.md and the figure (PNG + SVG) into a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from analysis.compare import multiplier
from analysis.compare.core import Comparison
from analysis.numbers import sci

FIGURE = "compare"
M_VIEW = (1e-3, 1e3)  # the multiplier panel's range; intervals past it (∞) are drawn to its edge


def _m(x) -> str:
    if x is None or not np.isfinite(x):
        return "∞" if x is not None and x == np.inf else "n/a"
    return f"{x:.3g}"


def _iv(lo, hi) -> str:
    if not (np.isfinite(lo) or np.isfinite(hi)):
        return "n/a" if np.isnan(lo) and np.isnan(hi) else f"[{_m(lo)}, {_m(hi)}]"
    return f"[{_m(lo)}, {_m(hi)}]"


def figure(cmp: Comparison) -> Figure:
    fig = Figure(figsize=(12, 4.8))
    ax1, ax2 = fig.subplots(1, 2)
    lo, hi = cmp.c_range
    top = max(hi, max(cmp.targets))
    view = (cmp.grid >= lo / 3) & (cmp.grid <= top * 3)
    colours = [f"C{i}" for i in range(len(cmp.names))]
    for k, (name, runs) in enumerate(zip(cmp.names, cmp.runs)):
        ax1.scatter(runs["C"], runs["loss"], s=12, color=colours[k], alpha=0.35, label=f"{name}: runs")
    for key, style in ((cmp.law, "-"), ("approach3", "--")):
        if key not in cmp.frontiers or (key == "approach3" and cmp.law == "approach3" and style == "--"):
            continue
        for k, f in enumerate(cmp.frontiers[key]):
            ax1.plot(f.grid[view], f.loss[view], style, color=colours[k], label=f"{f.name}: {f.label}")
            if key == cmp.law:
                b_lo, b_hi = f.band(cmp.level)
                ax1.fill_between(f.grid[view], b_lo[view], b_hi[view], color=colours[k], alpha=0.15, lw=0)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.axvspan(lo, hi, color="0.9", zorder=0)
        for t in cmp.targets:
            ax.axvline(t, color="k", lw=0.8, ls=":")
        ax.set_xlabel(f"training compute C (FLOPs, {cmp.flops_convention})")
        ax.grid(True, which="both", alpha=0.3)
    ax1.set_ylabel(f"compute-optimal {cmp.metric}")
    ax1.set_title(f"frontiers ({cmp.level:.0%} bands; grey: the runs' range; dotted: targets)", fontsize=9)
    ax1.legend(fontsize=7)
    idx = np.flatnonzero(view)
    for p_i, pair in enumerate(cmp.pairs.get(cmp.law, [])):
        fa, fb = cmp.frontiers[cmp.law][0], cmp.frontiers[cmp.law][p_i + 1]
        t = multiplier.multiplier_table(fa, fb, idx, cmp.level, pair.throughput)
        c = colours[p_i + 1]
        ax2.plot(t["C"], t["M"], color=c, label=f"M: {pair.b} vs {pair.a}")
        # an interval reaching past A's frontier (∞) is drawn to the edge of the panel
        ax2.fill_between(
            t["C"], np.clip(t["M_lo"], M_VIEW[0], None), np.clip(t["M_hi"], None, M_VIEW[1]), color=c, alpha=0.2, lw=0
        )
        if "M_time" in t:
            ax2.plot(t["C"], t["M_time"], color=c, ls="--", lw=1, label=f"wall-clock M: {pair.b} vs {pair.a}")
        tt = pair.table[pair.table["where"] == "target"]
        # an estimate past A's frontier (M = ∞: B reaches a loss below A's floor) is drawn at the panel's edge
        m_t = np.clip(tt["M"].to_numpy(float), *M_VIEW)
        lo_t = np.clip(tt["M_lo"].to_numpy(float), M_VIEW[0], None)
        hi_t = np.clip(tt["M_hi"].to_numpy(float), None, M_VIEW[1])
        err = [np.nan_to_num(np.maximum(m_t - lo_t, 0)), np.nan_to_num(np.maximum(hi_t - m_t, 0))]
        ax2.errorbar(tt["C"], m_t, yerr=err, fmt="o", color=c, capsize=3)
        if p_i < len(cmp.shared_m) and np.isfinite(cmp.shared_m[p_i]["M"]):
            sm = cmp.shared_m[p_i]
            tag = "carried" if cmp.carried.startswith("shared") else "not carried"
            ax2.axhline(
                float(np.clip(sm["M"], *M_VIEW)),
                color=c,
                ls="-." if cmp.carried.startswith("shared") else ":",
                lw=1.2,
                label=f"shared-law M ({tag}): {pair.b} vs {pair.a}",
            )
            if np.isfinite(sm["lo"]) and np.isfinite(sm["hi"]):
                ax2.axhspan(max(sm["lo"], M_VIEW[0]), min(sm["hi"], M_VIEW[1]), color=c, alpha=0.08, lw=0)
    ax2.axhline(1.0, color="k", lw=0.8)
    ax2.set_yscale("log")
    lo_y, hi_y = ax2.get_ylim()
    ax2.set_ylim(max(lo_y, M_VIEW[0]), min(hi_y, M_VIEW[1]))
    ax2.set_ylabel("compute multiplier M(C) = C_A(L_B(C)) / C   (> 1: B better)")
    ax2.set_title(f"M(C) under {cmp.frontiers[cmp.law][0].label} ({cmp.level:.0%} joint bootstrap band)", fontsize=9)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _carried_text(cmp: Comparison) -> str:
    """Which M the comparison carries and why, plainly, with both estimates."""
    what = {
        "shared": "the shared law",
        "separate": "the separate fits",
        "separate-widened": "the separate fits, their interval widened",
    }.get(cmp.carried, "the method each pair's calibration chose")
    lines = [f"**Carried multiplier: M from {what}**: {cmp.carried_why}."]
    for k, sm in enumerate(cmp.shared_m):
        b = cmp.names[k + 1]
        sep = cmp.pairs[cmp.law][k].table if cmp.law in cmp.pairs else None
        txt = f"{b} vs {cmp.names[0]}: shared-law M = {_m(sm['M'])} {_iv(sm['lo'], sm['hi'])} (constant in C)"
        if sep is not None:
            tgt = sep[sep["where"] == "target"]
            txt += "; separate fits' M at the target(s): " + ", ".join(
                f"{_m(r.M)} {_iv(r.M_lo, r.M_hi)} at {sci(r.C)}" for r in tgt.itertuples()
            )
        lines.append(f"- {txt}.")
    return "\n".join(lines)


def _calibration_text(cmp: Comparison) -> list[str]:
    """Each pair's calibration of M's interval: the method carried, its simulated coverage and width, and the
    alternatives', at the targets and at the runs' smallest and largest compute."""
    if not cmp.calibrations:
        return []
    L = ["", "### Calibration of the multiplier's interval", ""]
    L.append(
        "Each pair's two sweeps simulated from their fitted Approach 3 laws on their exact designs (every run's N "
        "and D), with each sweep's measured seed spread and stalled-run jumps through the quality gate; each "
        "simulated pair refitted with every interval method; coverage = the share of simulated pairs whose interval "
        "holds the laws' true M; width = median ln(hi/lo); factor = the widening the simulation says the interval "
        "needs to cover the level (per compute value), applied to the pair's interval over as many resamples as "
        "the simulation used." + _laws_calibrated(cmp)
    )
    for cal in cmp.calibrations:
        cached = ", from the cache" if cal.from_cache else ""
        label = cmp.frontiers[cal.law][0].label if cal.law in cmp.frontiers else cal.law
        L += [
            "",
            f"**{cal.pair}, {label}'s M**: {'carried' if cal.law == cmp.law else 'would carry'} **{cal.carried}** "
            f"({cal.why}). {cal.n_sims} simulated pairs x "
            f"{cal.n_resamples} resamples, {cal.seconds:.1f} s{cached}; seed sd / jump rate "
            + ", ".join(f"{sd:.3g} nats / {jr:.2%}" for sd, jr in cal.noise)
            + ".",
            "",
        ]
        t = cal.table
        tgt = set(t.loc[t["target"], "C"])
        inr = sorted(set(t["C"]) - tgt)
        shown = inr[:1] + inr[-1:] + sorted(tgt)
        truth = {c: float(t.loc[t["C"] == c, "M_true"].iloc[0]) for c in shown}
        head = (
            "| method | "
            + " | ".join(f"{sci(c)} ({'target' if c in tgt else 'in range'}), true M {_m(truth[c])}" for c in shown)
            + " |"
        )
        L += [head, "|---|" + "---|" * len(shown)]
        for m in t["method"].unique():
            cells = []
            for c in shown:
                cov, wid, n = cal.figures(m, c)
                f = cal.factors.get(m)
                fac = f", x{f[cal.C.index(c)]:.2f}" if f is not None and c in cal.C else ""
                cells.append(f"{cov:.0%}, {wid:.3g}{fac}" if n else "n/a")
            tag = " (carried)" if m == cal.carried else ""
            L.append(f"| {m}{tag} | " + " | ".join(cells) + " |")
        if cal.bias:
            cells = [f"{cal.bias[cal.C.index(c)]:+.3f}" if c in cal.C else "n/a" for c in shown]
            L.append("| median ln(M_est / M_true) | " + " | ".join(cells) + " |")
        L.append("\nCells: coverage, median width ln(hi/lo)[, factor].")
    return L


def _laws_calibrated(cmp: Comparison) -> str:
    """Which laws' M the calibration covers, and how the primary law's is carried."""
    laws = {c.law for c in cmp.calibrations}
    if cmp.law == "approach3":
        return ""
    label = cmp.frontiers[cmp.law][0].label
    if cmp.law in laws:
        return (
            f" The primary law's M ({label}) is calibrated the same way: the same truth (the Approach 3 laws' M) and "
            "noise, each simulated sweep refitted with it (batched refits) on its runs and on resamples drawn within "
            "each budget; its L_opt(C) is another estimator of the frontier than the law that generates the truth, "
            "so its median error ln(M_est / M_true) is shown too; its interval is only ever widened (factor = max(1, "
            "the simulation's): a narrowing would rest on the direction of that bias under the generating law)."
        )
    return (
        f" The primary law's M ({label}) is carried as it is, uncalibrated (see the notes), and Approach 3's "
        "calibrated interval is shown in Approach 3's table."
    )


def markdown(cmp: Comparison, figure_name: str | None = FIGURE) -> str:
    L = ["## Comparing recipes", ""]
    L.append(
        f"Baseline (recipe A): **{cmp.names[0]}**; compared: {', '.join(f'**{n}**' for n in cmp.names[1:])}. "
        f"Metric: `{cmp.metric}`; compute C in the `{cmp.flops_convention}` FLOP convention. "
        f"M(C) = C_A(L_B(C)) / C: the compute A needs to reach the {cmp.metric} B reaches with C, over C "
        "(M > 1: B is better). Intervals: "
        + (
            f"{cmp.level:.0%} percentile, {cmp.n_boot} bootstrap resamples of each sweep's runs, paired across "
            "sweeps (a joint bootstrap over the runs of all sweeps; repeated seeds are runs and are resampled too)."
            if cmp.n_boot
            else "none (--n-boot 0)."
        )
    )
    L.append("")
    L.append(f"Primary law: **{cmp.frontiers[cmp.law][0].label}** ({cmp.law_why}).")
    L += ["", _carried_text(cmp)]
    L += _calibration_text(cmp)
    if figure_name:
        L += ["", f"![frontiers and multiplier]({figure_name}.png)"]
    for key, pairs in cmp.pairs.items():
        label = cmp.frontiers[key][0].label
        for pair in pairs:
            L += ["", f"### M(C): {pair.b} vs {pair.a}, {label}", ""]
            has_t = "M_time" in pair.table
            has_s = "M_shared" in pair.table
            has_c = "M_cal" in pair.table
            head = (
                "| C | where | L_B(C) | M (separate fits) | interval |"
                + (" M (shared law) | interval |" if has_s else "")
                + (" calibrated interval |" if has_c else "")
                + (" wall-clock M | interval |" if has_t else "")
            )
            L += [head, "|" + "---|" * (head.count("|") - 1)]
            for r in pair.table.itertuples():
                row = f"| {sci(r.C)} | {r.where} | {r.loss_B:.4f} | {_m(r.M)} | {_iv(r.M_lo, r.M_hi)} |"
                if has_s:
                    row += f" {_m(r.M_shared)} | {_iv(r.M_shared_lo, r.M_shared_hi)} |"
                if has_c:
                    row += f" {_iv(r.M_cal_lo, r.M_cal_hi)} |"
                if has_t:
                    row += f" {_m(r.M_time)} | {_iv(r.M_time_lo, r.M_time_hi)} |"
                L.append(row)
            tr = pair.trend
            L += [
                "",
                f"How M moves with C over the runs' range ({sci(tr['C_lo'])} to {sci(tr['C_hi'])}): "
                f"d ln M / d ln C = {tr['slope']:+.3f}"
                + (f" [{tr['lo']:+.3f}, {tr['hi']:+.3f}]" if "lo" in tr else "")
                + " (0: a constant multiplier).",
            ]
            if pair.throughput is not None:
                L.append(
                    f"Measured throughput (median training FLOP/s over runs), {pair.b} / {pair.a}: "
                    f"{pair.throughput[0]:.3g}; wall-clock M = M x that ratio: the time A needs to reach B's "
                    f"{cmp.metric} over the time B takes (< 1: B learns more per FLOP but loses on the clock)."
                )
            else:
                L.append("No wall-clock multiplier: the runs record no wall time.")
            if pair.crossings:
                L.append(
                    "The frontiers cross at C = "
                    + ", ".join(
                        f"{sci(c)} ({'inside' if inside else 'outside'} the runs' range)"
                        for c, inside in pair.crossings
                    )
                    + "."
                )
            else:
                L.append(f"The frontiers do not cross on the grid ({sci(cmp.grid[0])} to {sci(cmp.grid[-1])}).")
    L += ["", "### Do the recipes share exponents and floor?", ""]
    if cmp.test is None:
        L.append("Not tested (see notes).")
    else:
        t = cmp.test
        L.append(f"Verdict: **{t.verdict}**: {t.sentence()}.")
        L += ["", "| sweep | E | A | B | α | β |", "|---|---|---|---|---|---|"]
        for n, (E, A, B, al, be) in zip(cmp.names, t.separate):
            L.append(f"| {n} (separate) | {E:.3f} | {A:.4g} | {B:.4g} | {al:.3f} | {be:.3f} |")
        E, al, be, As, Bs = t.shared
        for n, A, B in zip(cmp.names, As, Bs):
            L.append(f"| {n} (shared E, α, β) | {E:.3f} | {A:.4g} | {B:.4g} | {al:.3f} | {be:.3f} |")
        L.append(
            f"\nJoint fit of L(N, D) = E + A/N^α + B/D^β over {t.n} runs, Huber residuals in log loss (scale "
            f"{t.scale:.3g}); the shared model gives up {t.q} parameters."
        )
    if cmp.n_opt is not None and len(cmp.n_opt):
        L += ["", f"### Compute-optimal N at the targets ({cmp.frontiers[cmp.law][0].label})", ""]
        L += ["| C | " + " | ".join(cmp.names) + " |", "|---|" + "---|" * len(cmp.names)]
        for c, g in cmp.n_opt.groupby("C", sort=True):
            cells = [f"{sci(r.N_opt)} [{sci(r.lo)}, {sci(r.hi)}]" for r in g.itertuples()]
            L.append(f"| {sci(c)} | " + " | ".join(cells) + " |")
    if cmp.notes:
        L += ["", "### Notes", ""] + [f"- {n}" for n in cmp.notes]
    return "\n".join(L) + "\n"


def write_comparison(cmp: Comparison, out_dir) -> Path:
    from analysis.report.canvas import save

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = figure(cmp)
    save(fig, out, FIGURE)
    text = "# Comparison of recipes\n\n" + markdown(cmp)
    path = out / "compare.md"
    path.write_text(text)
    for key, pairs in cmp.pairs.items():
        for pair in pairs:
            pair.table.to_csv(out / f"multiplier_{key}_{pair.b}.csv".replace("/", "_"), index=False)
    return path
