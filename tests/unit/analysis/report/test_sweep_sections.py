"""The report's adaptive-stage lines (analysis/report/sweep_sections.py) read plan.json's batches as the sequential
sweep writes them (scaling/sweep/adaptive.py, batching.py): each batch's rule and seconds, each run's score, why
the stage stopped, and the target of the latest interval."""

from __future__ import annotations

import math

from analysis.report.sweep_sections import _adaptive_lines


def _interval(target: float, n: float, width: float) -> dict:
    return dict(target=target, n_opt=n, n_opt_lo=n / math.exp(width / 2), n_opt_hi=n * math.exp(width / 2), width=width)


def _batch(i: int, mode: str | None, target: float, **extra) -> dict:
    chosen = dict(kind="repeat", budget=1.25e11, N=[14064], reason="a new seed", expected_width_after=2.0)
    chosen["score_per_pflop"] = 828.0
    b = dict(batch=i, runs=["r1", "r2"], chosen=[chosen], before=_interval(target, 7e4, 3.0))
    b["after"] = _interval(target, 7.5e4, 2.5)
    if mode:
        b.update(mode=mode, **extra)
    return b


def test_each_batch_says_its_rule_seconds_and_scores_and_the_stage_why_it_stopped():
    ad = dict(
        batches=[
            _batch(0, None, 2.5e12),  # a plan.json from before the rule was recorded
            _batch(1, "fits", 3.54e12, predicted_seconds=178.0, left_seconds=200.0, threads=None),
            _batch(2, "alone", 3.54e12, predicted_seconds=41.0, left_seconds=85.0, threads=2),
        ],
        stopped=dict(why="no run that would narrow the interval fits (the quickest takes 51 s)", left_seconds=10.0),
    )
    text = "\n".join(_adaptive_lines(ad))
    assert "N_opt at 3.54e12 FLOPs" in text  # the latest batch's target, not the first's 2.5e12
    rows = [line for line in text.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 3
    assert "| best |" in rows[0]
    assert "fits: 178 s predicted of 200 s left |" in rows[1]
    assert "alone: 41 s predicted of 85 s left, 2 threads |" in rows[2]
    assert all("score 828/PFLOP" in r and f"expected x{math.exp(2.0):.3g}" in r for r in rows)
    assert "The stage stopped: no run that would narrow the interval fits (the quickest takes 51 s)." in text
