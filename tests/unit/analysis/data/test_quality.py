"""The quality gate (analysis/data/quality.py): diverged, short and stalled runs are flagged with a reason, the rest
kept."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from analysis.data.load import RunExcludedWarning, load_runs, scan_runs
from analysis.data.quality import EDGE_STALL_NATS, STALL_NATS, quality_gate
from scaling.core import records
from synthetic_sweep import BUDGETS, write_sweep


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        return load_runs(write_sweep(tmp_path_factory.mktemp("quality") / "s", with_bad_runs=False), quality=False)


def _budget(runs, i=1):
    b = BUDGETS[i]
    return runs[runs["budget"] == b].sort_values("N")


def test_a_clean_isoflop_sweep_passes_whole_even_its_steep_u_edges(tmp_path):
    for kw in (dict(), dict(n_sizes=12, budgets=(1e14,)), dict(noise=0.02)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RunExcludedWarning)
            r = load_runs(
                write_sweep(tmp_path / str(len(kw)) / str(kw.get("n_sizes")), with_bad_runs=False, **kw), quality=False
            )
        kept, flagged = quality_gate(r)
        assert flagged.empty, flagged.to_dict("records")
        assert len(kept) == len(r) and kept.attrs == r.attrs


@pytest.mark.parametrize("position", ["interior", "smallest", "largest"])
def test_a_run_stalled_above_its_isoflop_neighbours_is_flagged_with_the_numbers(runs, position):
    g = _budget(runs)
    idx = {"interior": g.index[2], "smallest": g.index[0], "largest": g.index[-1]}[position]
    bad = runs.copy()
    bad.loc[idx, "loss"] += 0.6
    kept, flagged = quality_gate(bad)
    assert flagged["run_id"].tolist() == [runs.loc[idx, "run_id"]]
    assert flagged["check"].tolist() == ["stalled"]
    why = flagged["reason"].iloc[0]
    limit = STALL_NATS if position == "interior" else EDGE_STALL_NATS  # an edge has no chord: a looser limit
    assert "nats above its IsoFLOP neighbours" in why and f"{BUDGETS[1]:.4g}" in why and f"{limit:g} nats" in why
    assert len(kept) == len(runs) - 1 and runs.loc[idx, "run_id"] not in set(kept["run_id"])


def test_a_small_excess_is_noise_not_a_stall(runs):
    g = _budget(runs)
    bad = runs.copy()
    bad.loc[g.index[2], "loss"] += 0.1
    assert quality_gate(bad)[1].empty
    assert quality_gate(bad, stall_nats=0.02)[1]["run_id"].tolist() == [
        runs.loc[g.index[2], "run_id"]
    ]  # 0.03 above its chord
    # at an edge, +0.2 nats (0.18 above the reference: the parabola of the others) is within the edge limit (0.25)
    edge = runs.copy()
    edge.loc[g.index[0], "loss"] += 0.2
    assert quality_gate(edge)[1].empty
    assert not quality_gate(edge, edge_stall_nats=0.15)[1].empty


def test_two_stalled_runs_in_one_budget_are_both_flagged_worst_first(runs):
    g = _budget(runs, 2)
    bad = runs.copy()
    bad.loc[g.index[1], "loss"] += 0.5
    bad.loc[g.index[4], "loss"] += 1.0
    flagged = quality_gate(bad)[1]
    assert flagged["run_id"].tolist() == [runs.loc[g.index[4], "run_id"], runs.loc[g.index[1], "run_id"]]


def test_a_run_that_trained_fewer_tokens_than_planned_is_flagged_short(runs):
    bad = runs.copy()
    bad.loc[3, "tokens_trained"] = bad.loc[3, "tokens"] // 2
    flagged = quality_gate(bad)[1]
    assert flagged[["run_id", "check"]].values.tolist() == [[runs.loc[3, "run_id"], "short"]]
    assert "(50.0%)" in flagged["reason"].iloc[0]


def test_a_run_planned_well_short_of_its_budget_is_flagged_short(runs):
    bad = runs.copy()
    conv = bad.loc[5, "budget_convention"]
    bad.loc[5, f"flops_{conv}"] = 0.5 * bad.loc[5, "budget"]
    flagged = quality_gate(bad)[1]
    assert flagged["check"].tolist() == ["short"] and "short of its budget" in flagged["reason"].iloc[0]


@pytest.mark.parametrize(
    "col, value, words",
    [
        ("loss", float("nan"), "not finite"),
        ("loss", math.log(512) + 0.01, "uniform guess"),
        ("final_train_loss", float("inf"), "final train loss inf"),
    ],
)
def test_a_diverged_run_is_flagged(runs, col, value, words):
    bad = runs.copy()
    bad.loc[7, col] = value
    flagged = quality_gate(bad)[1]
    assert flagged["check"].tolist() == ["diverged"] and words in flagged["reason"].iloc[0]


def test_any_table_with_a_loss_column_works_and_bad_arguments_are_named(runs):
    kept, flagged = quality_gate(runs[["N", "loss", "budget"]])
    assert len(kept) == len(runs) and flagged.columns.tolist() == ["run_id", "check", "reason"]
    with pytest.raises(ValueError, match=r"stall_nats=-1: must be a positive number of nats"):
        quality_gate(runs, stall_nats=-1)


def test_load_runs_leaves_flagged_runs_out_and_lists_them_with_the_reason(tmp_path):
    root = write_sweep(tmp_path / "s", with_bad_runs=False, budgets=(1e13, 1e14))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        all_runs = load_runs(root, quality=False)
    victim = all_runs[all_runs["budget"] == 1e14].sort_values("N")["run_dir"].iloc[3]
    # stall it consistently: summary and the metrics' last validation loss agree
    s = json.loads((Path(victim) / records.SUMMARY_FILE).read_text())
    m = records.read_metrics(victim)
    s["final_val_loss"] = s["best_val_loss"] = float(m["val_loss"].iloc[-1]) + 0.8
    m.loc[m.index[-1], "val_loss"] = s["final_val_loss"]
    (Path(victim) / records.SUMMARY_FILE).write_text(json.dumps(s))
    m.to_parquet(Path(victim) / records.METRICS_FILE, index=False)

    with pytest.warns(RunExcludedWarning, match=rf"run '{s['run_id']}' excluded .*quality gate \(stalled\)"):
        runs = load_runs(root)
    assert len(runs) == len(all_runs) - 1 and s["run_id"] not in set(runs["run_id"])
    scan = scan_runs(root).set_index("run_id")
    assert not scan.loc[s["run_id"], "usable"] and scan.loc[s["run_id"], "status"] == "complete"
    assert scan.loc[s["run_id"], "reason"].startswith("quality gate (stalled): loss")
    np.testing.assert_array_equal(sorted(load_runs(root, quality=False)["run_id"]), sorted(all_runs["run_id"]))
