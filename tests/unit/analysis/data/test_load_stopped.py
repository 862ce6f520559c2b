"""Early-stopped runs in the analysis (issue 18, item 5): a real tiny sweep with a run the trainer stopped early is
loaded with the stopped run left out (the loader's default) or kept at its predicted end mapped onto the final loss's
measure, marked as predicted, and counted by the report."""

import shutil
import warnings

import numpy as np
import pytest

from analysis.data import load
from analysis.data.quality import quality_gate
from scaling.core import records


@pytest.fixture
def sweep(stopped_sweep):
    return stopped_sweep


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", load.RunExcludedWarning)
        return fn(*a, **kw)


def test_a_stopped_run_is_kept_at_its_predicted_end_by_default_and_left_out_on_request(sweep):
    root, s = sweep
    with pytest.warns(load.RunExcludedWarning, match=f"run '{s['bad'].run_id}' excluded .*status 'stopped'"):
        out = load.load_runs(root, quality=False, stopped="out")
    assert sorted(out["run_id"]) == sorted([s["good"].run_id, s["near"].run_id])
    assert not out["loss_predicted"].any() and out["loss_offset"].isna().all()

    kept = _quiet(load.load_runs, root, quality=False)  # the default: as the report, so a notebook fits the same
    assert kept.attrs["stopped"] == "predicted" and len(kept) == 3
    row = kept.set_index("run_id").loc[s["bad"].run_id]
    offsets = [x.final_val_loss - x.final_subset_val_loss for x in (s["good"], s["near"])]
    assert row["loss_predicted"] and row["loss_offset"] == pytest.approx(np.median(offsets))
    assert row["loss"] == pytest.approx(s["bad"].predicted_final_loss + np.median(offsets))
    # the planned run's end: its planned tokens and FLOPs, not the ones it trained before the stop
    assert row["D"] == s["bad"].tokens and row["tokens_trained"] < row["D"]
    assert row["C"] == pytest.approx(s["bad"].flops["chinchilla"])
    measured = kept[~kept["loss_predicted"]].set_index("run_id")["loss"]
    assert measured.to_dict() == out.set_index("run_id")["loss"].to_dict()  # the complete runs are unchanged
    # the quality gate does not call a stopped run short: its loss is the planned run's
    flagged = quality_gate(kept)[1]
    assert "short" not in set(flagged.loc[flagged["run_id"] == s["bad"].run_id, "check"])
    scan = load.scan_runs(root, quality=False, stopped="predicted")
    assert scan.set_index("run_id").loc[s["bad"].run_id, "usable"]
    # its curve up to the stop is in the curves table too
    curves = _quiet(load.load_curves, root, quality=False, stopped="predicted")
    mine = curves[curves["run_id"] == s["bad"].run_id]
    assert mine["step"].max() == s["bad"].stopped_step and mine["val_loss"].notna().any()


def test_a_stopped_run_without_an_offset_to_map_it_or_in_bits_per_byte_is_left_out_with_the_reason(sweep, tmp_path):
    root, s = sweep
    alone = tmp_path / "alone"
    shutil.copytree(root / s["bad"].run_id, alone / s["bad"].run_id)  # no complete run beside it
    with pytest.raises(ValueError, match="no usable runs"):
        _quiet(load.load_runs, alone, stopped="predicted")
    assert load.scan_runs(alone, stopped="predicted")["reason"].tolist() == [load.NO_OFFSET]
    scan = load.scan_runs(root, quality=False, metric="bpb", stopped="predicted").set_index("run_id")
    assert scan.loc[s["bad"].run_id, "reason"] == load.STOPPED_NO_BPB
    with pytest.raises(ValueError, match="argument stopped='maybe'"):
        load.load_runs(root, stopped="maybe")


def test_the_report_keeps_stopped_runs_at_their_predicted_end_by_default_and_says_how_many(sweep):
    from analysis.cli.main import build_parser
    from analysis.pipeline import analyse
    from analysis.report.sweep_sections import runs_section

    root, s = sweep
    kw = dict(n_boot=0, approaches=("approach2",), backtests=False, conventions=False, calibrate=False)
    an = _quiet(analyse, root, **kw)
    assert len(an.runs) == 3 and an.notes["stopped"].startswith("1 of 3 runs were stopped early")
    text = runs_section(an)
    assert "1 of them were stopped early" in text and text.count("(predicted)") == 2  # the sentence and the row
    out = _quiet(analyse, root, stopped="out", **kw)
    assert len(out.runs) == 2 and out.notes["stopped"].startswith("1 early-stopped run(s) are left out")
    assert build_parser().parse_args(["fit", str(root)]).stopped == "predicted"
    assert build_parser().parse_args(["report", str(root), "--stopped", "out"]).stopped == "out"
    # two sweeps (compare, or report a b) load them the same way, and say so on bad input before any fit
    from analysis.compare import CompareError, compare
    from analysis.compare.cli import build_parser as compare_parser

    assert compare_parser().parse_args([str(root), str(root)]).stopped == "predicted"
    assert compare_parser().parse_args([str(root), str(root), "--stopped", "out"]).stopped == "out"
    with pytest.raises(CompareError, match="stopped='maybe'; allowed: out, predicted"):
        compare(root, root, stopped="maybe")


def test_a_replayed_stop_is_written_as_the_trainer_leaves_one_and_read_back_by_the_loader(sweep, tmp_path):
    import pandas as pd

    from analysis.curves.stopping import write_stopped

    root, s = sweep
    runs = _quiet(load.load_runs, root, quality=False, stopped="out")  # the two complete runs
    near = s["near"]
    replayed = pd.DataFrame(
        [
            dict(run_id=near.run_id, stop=True, step=30, pred=4.5, lo=4.4, hi=4.6),
            dict(run_id=s["good"].run_id, stop=False, step=30, pred=4.0, lo=3.9, hi=4.1),
        ]
    )
    copy = write_stopped(runs, replayed, tmp_path / "replayed")
    back = records.read_summary(copy / near.run_id)
    assert back.status == records.STATUS_STOPPED and back.final_val_loss is None and back.stopped_step == 30
    assert len(records.read_metrics(copy / near.run_id)) == 30
    kept = _quiet(load.load_runs, copy, quality=False, stopped="predicted").set_index("run_id")
    offset = s["good"].final_val_loss - s["good"].final_subset_val_loss  # the one complete run's
    assert kept.loc[near.run_id, "loss_predicted"] and kept.loc[near.run_id, "loss"] == pytest.approx(4.5 + offset)
    assert kept.loc[s["good"].run_id, "loss"] == s["good"].final_val_loss
    with pytest.raises(FileExistsError, match="not empty"):
        write_stopped(runs, replayed, copy)


def test_the_law_calibration_study_loads_stopped_runs_as_the_report_does(sweep, tmp_path, capsys):
    """``python -m analysis.studies lawcalibration --stopped``: the report's option, so that the cache it writes is
    the one a ``report --stopped out`` reads (the cache is keyed by the runs it was computed on)."""
    from analysis.studies.cli import main

    root, _ = sweep
    _quiet(main, ["lawcalibration", str(root), "--out", str(tmp_path / "a")])
    assert "1 of 3 runs were stopped early" in capsys.readouterr().err
    _quiet(main, ["lawcalibration", str(root), "--out", str(tmp_path / "b"), "--stopped", "out"])
    assert "1 early-stopped run(s) are left out of the fits (stopped='out')" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lawcalibration", str(root), "--stopped", "maybe"])
    assert "invalid choice: 'maybe'" in capsys.readouterr().err
