"""The adaptive stage of the sequential sweep (scaling/sweep/adaptive.py) on a real tiny sweep: after the ladder it
chooses a batch by expected narrowing per FLOP, records why, and a kill during that batch then a rerun finishes it
without retraining a complete run; a rerun of the finished sweep trains nothing."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from scaling.core import records
from support import REPO, cli_env, run_cli


@pytest.mark.slow
def test_adaptive_batches_are_recorded_and_a_kill_resumes_without_retraining(tmp_path, default_corpus):
    prior = tmp_path / "near.json"
    prior.write_text(json.dumps({"C0": 6e10, "N0": 5e3, "a": 0.75, "name": "near"}))
    args = [
        "-m",
        "scaling.sweep.sequential",
        "--preset",
        "isoflop_tiny",
        "--budgets",
        "6e10,1.2e11",
        "--points",
        "3",
        "--spread",
        "2",
        "--extend",
        "1",
        "--prior",
        str(prior),
        "--probe-seconds",
        "0.02",
        "--batch-rule",
        "512",
        "--adaptive-runs",
        "2",
        f"results_dir={tmp_path}",
        "train.final_eval_tokens=2048",
        "train.eval_tokens=2048",
    ]
    out = tmp_path / "isoflop_tiny"
    log = (tmp_path / "first.log").open("w")
    p = subprocess.Popen(
        [sys.executable, *args], cwd=REPO, env=cli_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    # kill the whole process group (driver, Hydra, its workers) as soon as the first adaptive batch is recorded
    deadline = time.time() + 900
    chosen = None
    while time.time() < deadline and p.poll() is None:
        try:
            chosen = json.loads((out / "plan.json").read_text()).get("adaptive", {}).get("batches")
        except (OSError, ValueError):
            chosen = None
        if chosen:
            break
        time.sleep(0.2)
    assert chosen, (tmp_path / "first.log").read_text()[-3000:]
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    doc = json.loads((out / "plan.json").read_text())
    ladder = [rid for st in doc["stages"] for rid in st["run_ids"]]
    stamps = {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in ladder}
    batch = doc["adaptive"]["batches"][0]
    assert batch["after"] is None and batch["chosen"][0]["reason"] and batch["runs"][0]["why"]
    # the rerun replays the recorded batch (the same runs), trains it to the end and retrains no ladder run
    r = run_cli(args, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    doc2 = json.loads((out / "plan.json").read_text())
    b2 = doc2["adaptive"]["batches"]
    assert [x["run_id"] for x in b2[0]["runs"]] == [x["run_id"] for x in batch["runs"]]
    assert b2[0]["after"] is not None and b2[0]["wall_seconds"] > 0
    # the batch's own overhead is measured only where no run of it had started before the kill
    rs = b2[0]["runs_seconds"]
    assert (rs is None) == b2[0]["resumed"] and (rs is None or 0 < rs < b2[0]["wall_seconds"])
    assert {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in ladder} == stamps
    adaptive = [x["run_id"] for b in b2 for x in b["runs"]]
    assert all(records.read_summary(out / rid).status == records.STATUS_COMPLETE for rid in adaptive)
    assert "[adaptive] batch 0" in r.stderr and "seed_spread" in doc2["adaptive"]
    # a rerun of the finished sweep trains nothing
    every = ladder + adaptive
    stamps = {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in every}
    r = run_cli(args, cwd=REPO, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {rid: os.stat(out / rid / "summary.json").st_mtime_ns for rid in every} == stamps
    assert json.loads((out / "plan.json").read_text())["adaptive"]["batches"] == b2
