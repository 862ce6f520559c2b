"""Property (issue 15): ``python -m analysis report`` never loses a whole report to one fit.

Over damaged and degenerate sweeps (a few runs of a real-shaped IsoFLOP sweep, some of them broken the ways real run
directories break: metrics deleted, emptied or cut in half, a loss of -1, inf or one contradicting the metrics,
status 'running', a copy of a run in another sweep), the report command ends with exit 0 and a report.md that lists
what it could not compute, or with exit 2 and one ``error:`` line when no run is usable at all; never a traceback.
``EXAMPLES`` sweeps are tried (derandomized), plus the issue's own five-run case as an explicit example.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scaling.core import records
from synthetic_sweep import write_sweep

EXAMPLES = 10  # each is a whole report (about 10-20 s on a busy 2-core machine)

DAMAGES = (
    "none",
    "metrics_deleted",
    "metrics_empty",
    "metrics_half",
    "loss_minus_one",
    "loss_inf",
    "loss_contradicts_metrics",
    "status_running",
    "duplicate_in_other_sweep",
)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> list[Path]:
    """12 finished runs: 3 budgets x 4 sizes of a synthetic IsoFLOP sweep, in budget then size order."""
    root = write_sweep(
        tmp_path_factory.mktemp("pool") / "sweep", budgets=(1e13, 1e14, 1e15), n_sizes=4, with_bad_runs=False
    )
    return sorted(
        (p for p in root.iterdir() if records.is_run_dir(p)),
        key=lambda p: (records.read_summary(p).budget, records.read_summary(p).params_non_embedding),
    )


def _damage(run: Path, how: str, root: Path) -> None:
    summary_path, metrics_path = run / records.SUMMARY_FILE, run / records.METRICS_FILE
    doc = json.loads(summary_path.read_text())
    if how == "metrics_deleted":
        metrics_path.unlink()
    elif how == "metrics_empty":
        metrics_path.write_bytes(b"")
    elif how == "metrics_half" and metrics_path.exists() and metrics_path.stat().st_size:
        df = pd.read_parquet(metrics_path)
        df.iloc[: len(df) // 2].to_parquet(metrics_path)
    elif how in ("loss_minus_one", "loss_inf", "loss_contradicts_metrics"):
        doc["final_val_loss"] = {
            "loss_minus_one": -1.0,
            "loss_inf": float("inf"),
            "loss_contradicts_metrics": doc["final_val_loss"] * 1.5,
        }[how]
        summary_path.write_text(json.dumps(doc))
    elif how == "status_running":
        doc["status"] = "running"
        summary_path.write_text(json.dumps(doc))
    elif how == "duplicate_in_other_sweep":
        shutil.copytree(run, root / "other_sweep" / run.name, dirs_exist_ok=True)


def _report(sweep: Path, out: Path) -> tuple[int, str]:
    from analysis.cli.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(["report", str(sweep), "--n-boot", "0", "--grid", "small", "--out", str(out)])
    return rc, err.getvalue()


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    picked=st.lists(st.integers(0, 11), min_size=1, max_size=12, unique=True),
    damages=st.lists(st.sampled_from(DAMAGES), min_size=0, max_size=4),
)
@example(picked=[2, 3, 4, 0, 1], damages=[])  # few runs, few sizes a budget: degenerate Approach 3 and no backtest
@example(picked=[0, 4, 8], damages=["status_running", "metrics_deleted", "loss_inf"])  # nothing usable: exit 2
def test_report_exits_0_with_a_report_or_2_with_one_error_line_never_a_traceback(pool, picked, damages):
    with tempfile.TemporaryDirectory() as tmp:  # one folder an example (tmp_path is shared by every example)
        _check_report(pool, Path(tmp), picked, damages)


def _check_report(pool, tmp_path: Path, picked, damages) -> None:
    root = tmp_path / "sweeps"
    sweep = root / "sweep"
    runs = []
    for i in picked:
        runs.append(Path(shutil.copytree(pool[i], sweep / pool[i].name)))
    for k, how in enumerate(damages):
        _damage(runs[k % len(runs)], how, root)
    out = tmp_path / "report"
    rc, err = _report(root, out)
    assert "Traceback" not in err
    if rc == 0:
        text = (out / "report.md").read_text()
        assert "## Notes" in text and "## Runs" in text
    else:
        assert rc == 2, (rc, err)
        assert "error: no usable runs" in err or "error: no run" in err, err  # only when nothing can be fitted


def test_report_into_an_unwritable_folder_fails_before_fitting(pool, tmp_path, monkeypatch):
    sweep = tmp_path / "sweep"
    for run in pool[:4]:
        shutil.copytree(run, sweep / run.name)
    import analysis.pipeline

    def no_fitting(*a, **k):
        raise AssertionError("analyse was called before the output folder was checked")

    monkeypatch.setattr(analysis.pipeline, "analyse", no_fitting)
    monkeypatch.setattr("analysis.report.markdown.analyse", no_fitting)
    rc, err = _report(sweep, Path("/proc/nope"))
    assert rc == 2 and "error: output folder '/proc/nope' cannot be written" in err, err


def test_predict_far_below_the_runs_compute_warns_that_it_extrapolates(pool, tmp_path):
    from analysis.cli.main import main

    sweep = tmp_path / "sweep"
    for run in pool:
        shutil.copytree(run, sweep / run.name)
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(["predict", str(sweep), "--budget", "1", "--n-boot", "0", "--grid", "small"])
    assert rc == 0 and "N_opt" in out.getvalue()
    assert re.search(r"warning: --budget 1 FLOPs is [0-9.e+]+x below the smallest run's C", err.getvalue()), (
        err.getvalue()
    )
    assert "far extrapolation" in err.getvalue()


def test_the_left_out_table_names_the_duplicate_folder_not_the_kept_run(pool, tmp_path):
    root = tmp_path / "sweeps"
    for run in pool[:8]:
        shutil.copytree(run, root / "a" / run.name)
    shutil.copytree(pool[0], root / "b" / pool[0].name)  # the same run again, in another sweep's folder
    rc, err = _report(root, tmp_path / "report")
    assert rc == 0, err
    text = (tmp_path / "report" / "report.md").read_text()
    assert f"| b/{pool[0].name} | complete | duplicate run id" in text
