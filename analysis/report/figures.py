"""The report's figures, assembled from an ``Analysis``: which plot each figure is, with which fits and data.

``make_figures(an)`` draws every figure the analysis supports and ``missing_figures(an)`` says why any other is
absent; ``write_figures`` saves them as PNG and SVG (``analysis.report.canvas.save``). Drawing changes
nothing in ``an``.
"""

from __future__ import annotations

from pathlib import Path

from analysis.report import canvas, plots, truth_plot

FIGURES = ("isoflop", "optimal_allocation", "loss_vs_compute", "loss_contours", "residuals", "backtest")

CAPTIONS = {
    "truth": "The synthetic source's known loss floor (its exact entropy rate) beside Approach 3's fitted E and its "
    "interval, with every run's final loss.",
    "isoflop": "IsoFLOP curves: final loss against N at each budget, with the curve each budget's minimum came "
    "from (the estimator named in the title, drawn over the sampled sizes) and the minima: stars inside "
    "the sampled sizes, red hollow diamonds at their edge (kept, flagged, listed in the IsoFLOP table).",
    "optimal_allocation": "Compute-optimal N and D against C: each approach's law with its bootstrap band, the "
    "IsoFLOP minima, and the published laws (dashed). Vertical lines: prediction budgets.",
    "loss_vs_compute": "Every training curve (validation loss against cumulative FLOPs, coloured by N), the "
    "frontier Approach 1 fits, and the compute-optimal loss of Approach 3.",
    "loss_contours": "Approach 3's L(N, D) with the runs on the same colour scale, the IsoFLOP lines and the "
    "efficient frontier.",
    "residuals": "Observed / predicted - 1 for each fit that predicts a run's loss.",
    "backtest": "Rolling backtest: each law fitted on the budgets up to a cutoff, its error at every larger budget "
    "against the extrapolation distance; lines are medians per half-decade of distance.",
}


def _stopped_ids(runs) -> list[str]:
    """The run ids the loader kept at their predicted end (stopped early: ``loss_predicted``)."""
    if runs is None or "loss_predicted" not in runs.columns or "run_id" not in runs.columns:
        return []
    return runs.loc[runs["loss_predicted"].fillna(False).astype(bool), "run_id"].astype(str).tolist()


def missing_figures(an) -> dict:
    """name -> why, for each figure ``make_figures`` cannot draw on this analysis."""
    out = {}
    if an.curves is None:
        out["loss_vs_compute"] = "not drawn: no training curves"
    if an.fits.get("approach3") is None:
        out["loss_contours"] = "not drawn: needs the Approach 3 fit"
    if an.rolling is None:
        out["backtest"] = "not drawn: no rolling backtest"
    return out


# Figures that need only the runs and the fits: ``analyse`` has them drawn in its second process while the main one
# bootstraps (``render_early``), so the report only writes their bytes.
EARLY = ("isoflop", "loss_vs_compute", "loss_contours", "residuals")


def render_early(an) -> tuple[dict[str, dict[str, bytes]], dict[str, str]]:
    """(name -> {format: the file's bytes}, name -> why not drawn) for the ``EARLY`` figures of ``an``, which need
    only its runs and fits (what ``analyse``'s ``figures_beside`` calls in its second process)."""
    failed: dict[str, str] = {}
    out = {name: canvas.render(fig) for name, fig in make_figures(an, failed, only=EARLY).items()}
    return out, failed


def make_figures(an, failed: dict | None = None, only=None, skip=()) -> dict:
    """name -> matplotlib Figure for every figure this analysis can draw (see ``missing_figures`` for the rest),
    or for those in ``only``, less those in ``skip``.

    Each figure is drawn on its own: one that fails (e.g. a degenerate fit that cannot allocate) is left out and
    ``failed[name]`` says why, so one fit never costs the other figures."""
    from analysis.laws.published import PUBLISHED

    failed = {} if failed is None else failed
    missing = missing_figures(an)
    a1, a2, a3 = (an.fits.get(k) for k in ("approach1", "approach2", "approach3"))
    draw = {
        "isoflop": lambda: plots.isoflop(an.runs, a2),
        "optimal_allocation": lambda: plots.optimal_allocation(
            dict(an.allocators),
            bands=an.bands,
            published=PUBLISHED,
            per_budget=a2.per_budget if a2 is not None else None,
            c_range=an.c_range,
            targets=an.budgets,
            runs=an.runs,
        ),
        "loss_vs_compute": lambda: plots.loss_vs_compute(
            an.curves, a1, an.allocators.get("approach3"), stopped=_stopped_ids(an.runs)
        ),
        "loss_contours": lambda: plots.loss_contours(an.runs, a3, targets=an.budgets),
        "residuals": lambda: plots.residuals(
            an.runs, {k: an.fits.get(k) for k in ("approach2", "approach3", "kaplan")}
        ),
        "backtest": lambda: plots.backtest(an.rolling.table, an.labels, an.rolling.best),
        "truth": lambda: truth_plot.truth_figure(an.truth, an.runs),
    }
    figs = {}
    for name, fn in draw.items():
        if name in missing or (name == "truth" and an.truth is None) or name in skip:
            continue
        if only is not None and name not in only:
            continue
        try:
            figs[name] = fn()
        except Exception as e:  # noqa: BLE001  (a figure is a view: its failure is reported, never fatal)
            failed[name] = f"not drawn: {type(e).__name__}: {e}"
    return figs


def write_figures(an, out_dir, failed: dict | None = None) -> list[Path]:
    """Every figure as PNG and SVG in ``out_dir``; returns the paths written (``failed``: as in make_figures)."""
    paths = []
    for name, files in an.rendered.items():  # drawn in analyse's second process
        paths += canvas.save_rendered(files, out_dir, name)
    if failed is not None:
        failed.update(an.rendered_failed)
    for name, fig in make_figures(an, failed, skip=an.rendered).items():
        paths += canvas.save(fig, out_dir, name)
    return paths


def figure_order(names) -> list[str]:
    """``names`` in the order ``make_figures`` draws them (the report lists them so)."""
    order = list(FIGURES) + ["truth"]
    return sorted(names, key=lambda n: order.index(n) if n in order else len(order))
