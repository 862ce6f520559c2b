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
from analysis.numbers import fmt, md_table, sci, with_interval
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
from analysis.report.sweep_sections import (
    isoflop_section,
    plan_section,
    quality_section,
    repeated_data_section,
    runs_section,
)


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
    if "stopped" in an.notes:
        head += [f"Early stop: {an.notes['stopped']}.", ""]
    failed = {} if failed is None else failed
    sections = []
    for title, render in [
        ("Summary", _summary_section),
        ("Sweep plan", plan_section),
        ("Runs", runs_section),
        ("Quality gate", quality_section),
        ("IsoFLOP minima (Approach 2)", isoflop_section),
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
