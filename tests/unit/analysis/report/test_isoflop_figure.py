"""The IsoFLOP figure draws each budget's minimum as its estimator found it (analysis/report/plots.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.fits.approach2 import fit_approach2
from analysis.report import plots


def _runs() -> pd.DataFrame:
    rows = []
    curved = {1.25e11: 5e3, 2.5e11: 8e3}  # two budgets with a clear minimum in ln N
    for budget, n_opt in curved.items():
        for n in (1.6e3, 6.3e3, 1.4e4, 2.5e4, 3.9e4):
            rows.append((budget, n, 3.9 + 0.12 * np.log(n / n_opt) ** 2))
    # a make sweep's 7.07e11 budget: one middle run ended 0.17 nats high and the parabola opens downward
    for n, loss in zip((1.41e4, 2.49e4, 3.88e4, 5.58e4, 7.58e4), (3.8135, 3.7937, 3.9627, 3.8762, 3.9214)):
        rows.append((7.07e11, n, loss))
    runs = pd.DataFrame(rows, columns=["budget", "N", "loss"])
    runs["C"] = runs["budget"]
    runs["D"] = runs["C"] / (6 * runs["N"])
    return runs


def test_a_budget_whose_parabola_opens_downward_is_drawn_as_its_lowest_run_without_a_curve():
    runs = _runs()
    a2 = fit_approach2(runs)
    fig = plots.isoflop(runs, a2)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("lowest run" in t for t in legend), legend
    notes = [t.get_text() for t in ax.texts]
    assert sum("(lowest run)" in t for t in notes) == 1, notes
    # the downward budget's points are joined (5 points on the runs), never a smooth curve of the grid
    n7 = np.sort(runs.loc[runs["budget"] == 7.07e11, "N"].to_numpy())
    lines = [ln for ln in ax.lines if ln.get_linestyle() == "-" and len(ln.get_xdata()) > 1]
    through = [
        ln for ln in lines if np.isclose(np.min(ln.get_xdata()), n7[0]) and np.isclose(np.max(ln.get_xdata()), n7[-1])
    ]
    assert through and all(len(ln.get_xdata()) == n7.size for ln in through)
    # the curved budgets keep their stars and curves
    assert sum(t.startswith("N_opt") and "lowest" not in t for t in notes) == 2


def test_runs_stopped_early_are_drawn_hollow_at_their_predicted_end():
    runs = _runs()
    runs["loss_predicted"] = False
    stopped = runs.index[(runs["budget"] == 1.25e11) & (runs["N"] > 3e4)]
    runs.loc[stopped, "loss_predicted"] = True
    ax = plots.isoflop(runs, fit_approach2(runs)).axes[0]
    assert any("stopped early" in t.get_text() for t in ax.get_legend().get_texts())
    hollow = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and np.allclose(hollow[0].get_xdata(), runs.loc[stopped, "N"])
    # without stopped runs: no hollow point, no legend entry
    ax = plots.isoflop(_runs(), fit_approach2(_runs())).axes[0]
    assert not any("stopped early" in t.get_text() for t in ax.get_legend().get_texts())


def test_the_curves_figure_ends_a_run_stopped_early_in_a_hollow_point():
    from analysis.studies.synthetic import CHINCHILLA, synthetic_curves

    # a constant-LR sweep: no point is ever schedule_complete, and no run is drawn as stopped for it
    curves = synthetic_curves(CHINCHILLA, sizes=np.geomspace(1e7, 3e9, 6), complete="last")
    curves["schedule_complete"] = False
    first = curves["run_id"] == curves["run_id"].iloc[0]
    cut = curves[~first | (curves.groupby("run_id").cumcount() < 20)].copy()  # that run stopped at its 20th point
    ax = plots.loss_vs_compute(cut, stopped=[curves["run_id"].iloc[0]]).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "end of run" in labels and "stopped early" in labels
    assert [len(c.get_offsets()) for c in ax.collections] == [5, 1]
    ax = plots.loss_vs_compute(curves).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["end of run"]


def test_a_runs_table_with_a_repeated_index_still_draws_its_stopped_runs_hollow():
    runs = _runs()
    runs["loss_predicted"] = runs["N"] > 3e4
    twice = pd.concat([runs, runs])  # two load_runs tables joined without ignore_index: labels repeat
    ax = plots.isoflop(twice, fit_approach2(twice)).axes[0]
    hollow = [ln for ln in ax.lines if ln.get_marker() == "o" and ln.get_markerfacecolor() == "white"]
    assert sum(len(ln.get_xdata()) for ln in hollow) == 2 * int(runs["loss_predicted"].sum())
