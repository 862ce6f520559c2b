"""Real runs killed at any moment (SIGKILL at random steps and inside every kind of write), preempted by SIGTERM or
SIGUSR1, or hitting a full disk, then relaunched: each ends bit-identical to an uninterrupted run on CPU.

Deterministic kill points come from the test-only hook in scaling/train/faults.py
(SCALING_FAULT_POINT=<point>:<n>[:<action>]); a real full disk at every write point and a real signal at
every start-up stage: tests/e2e/test_full_disk.py, tests/e2e/test_startup_signals.py.
The random steps are drawn from a seed printed by the test (set SCALING_FAULT_SEED to replay one).
"""

import os
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from scaling.core import records
from scaling.train.lifecycle import EXIT_PREEMPTED
from scaling.train.state import safe_load
from support import finish_cli, start_cli

STEPS = 30
ARGS = [
    "model.size=3e3",
    "model.head_size=8",
    "model.seq_len=32",
    "train.batch_size=8",
    f"train.tokens={STEPS * 256}",
    "train.eval_tokens=1024",
    "train.eval_interval=5",
    "train.final_eval_tokens=8192",
    "log.progress=false",
    "train.threads=1",
    "train.checkpoint_seconds=0.001",
    "sweep=f",
]
CURVE = [c for c in records.METRICS_COLUMNS if c != "tokens_per_second"]  # everything but the wall clock


def launch(results_dir, fault=None, wait=True):
    env = {"OMP_NUM_THREADS": "1", "SCALING_FAULT_POINT": fault or None}
    p = start_cli(["-m", "scaling.train", *ARGS, f"results_dir={results_dir}"], env=env)
    return finish_cli(p, timeout=300) if wait else p


def run_dir_of(results_dir):
    dirs = [d for d in (results_dir / "f").glob("N*") if d.is_dir()]
    assert len(dirs) <= 1, dirs
    return dirs[0] if dirs else None


@pytest.fixture(scope="module")
def reference(tmp_path_factory, default_corpus):
    root = tmp_path_factory.mktemp("ref")
    r = launch(root)
    assert r.returncode == 0, r.stderr[-3000:]
    d = run_dir_of(root)
    return records.read_metrics(d), records.read_summary(d)


def curve_difference(run_dir, reference) -> float:
    """The largest absolute difference between this run's logged curve and the reference's (NaN == NaN)."""
    ref_m, ref_s = reference
    m = records.read_metrics(run_dir)
    assert m["step"].tolist() == list(range(1, STEPS + 1)), "duplicated or missing metric rows"
    s = records.read_summary(run_dir)
    diffs = [abs(s.final_val_loss - ref_s.final_val_loss), abs(s.final_train_loss - ref_s.final_train_loss)]
    for c in CURVE:
        a, b = m[c].to_numpy(dtype=float), ref_m[c].to_numpy(dtype=float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), c
        diffs.append(float(np.nanmax(np.abs(a - b))) if len(a) else 0.0)
    return max(diffs)


def assert_nothing_half_written(run_dir):
    """Whatever a killed run left: every file under its real name is whole; a 'complete' run is really complete."""
    if run_dir is None:
        return
    if (run_dir / records.SUMMARY_FILE).exists():
        s = records.read_summary(run_dir)  # parses: never half-written
        assert s.status in (records.STATUS_RUNNING, records.STATUS_COMPLETE), s.status
        if s.status == records.STATUS_COMPLETE:
            assert len(records.read_metrics(run_dir)) == STEPS
            assert isinstance(safe_load(run_dir / records.WEIGHTS_FILE), dict)
    if (run_dir / records.METRICS_FILE).exists():
        m = records.read_metrics(run_dir)
        assert m["step"].tolist() == list(range(1, len(m) + 1))
    if (run_dir / records.CHECKPOINT_FILE).exists():
        ck = safe_load(run_dir / records.CHECKPOINT_FILE)
        assert len(ck["rows"]) == ck["step"] > 0


def assert_finished_clean(run_dir):
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_COMPLETE and s.tokens_trained == s.tokens
    assert not (run_dir / records.CHECKPOINT_FILE).exists()
    assert not list(run_dir.glob(".*.tmp")), list(run_dir.glob(".*.tmp"))
    return s


def kill_chain(results_dir, faults):
    """Launch the same command once per fault (each killed by it), then once more clean; check after every kill."""
    for f in faults:
        r = launch(results_dir, f)
        assert r.returncode == -signal.SIGKILL, f"{f}: exit {r.returncode}\n{r.stderr[-2000:]}"
        assert_nothing_half_written(run_dir_of(results_dir))
    r = launch(results_dir)
    assert r.returncode == 0, r.stderr[-3000:]
    return run_dir_of(results_dir), r


@pytest.mark.slow
def test_sigkill_at_random_steps_and_inside_every_write_then_relaunch_is_bit_identical(tmp_path, reference):
    seed = int(os.environ.get("SCALING_FAULT_SEED", time.time_ns() % 10**6))
    rng = random.Random(seed)
    k = rng.sample(range(1, 7), 3) + [rng.randint(7, 14)]  # four distinct step counts
    # chain A: kills during training (each relaunch resumes from what the previous kill left)
    a = [f"step:{k[0]}", "checkpoint.write:2", "metrics.write:1", "start:1", f"step:{k[1]}"]
    # chain B: more kills during training, then at the very end in the order the writes happen there
    b = [f"step:{k[3]}", "checkpoint.after:3", f"step:{k[2]}", "weights.write:1", "summary.write:2", "finish.unlink:1"]
    with ThreadPoolExecutor(2) as ex:
        fa = ex.submit(kill_chain, tmp_path / "a", a)
        fb = ex.submit(kill_chain, tmp_path / "b", b)
        (dir_a, _), (dir_b, rb) = fa.result(), fb.result()
    assert "already complete" in rb.stderr  # chain B's last kill came after the summary said complete
    diffs = {}
    for name, d in (("a", dir_a), ("b", dir_b)):
        s = assert_finished_clean(d)
        diffs[name] = curve_difference(d, reference)
        assert s.resumes >= 1
    points = sorted(set(a) | set(b))
    print(
        f"\n[faults] seed {seed}: {len(a) + len(b)} SIGKILLs at {len(points)} distinct points {points}; "
        f"largest difference from the uninterrupted run: {max(diffs.values())!r}"
    )
    assert len(points) == len(a) + len(b) >= 10
    assert max(diffs.values()) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_a_preempted_run_checkpoints_exits_75_and_resumes_bit_identical(tmp_path, reference, sig):
    p = launch(tmp_path, wait=False)
    deadline = time.time() + 120
    while time.time() < deadline and not (
        run_dir_of(tmp_path) and (run_dir_of(tmp_path) / records.CHECKPOINT_FILE).exists()
    ):
        time.sleep(0.02)
    p.send_signal(sig)  # mid-training: its first checkpoint exists, and the run has 30 steps
    out, err = p.communicate(timeout=120)
    assert p.returncode == EXIT_PREEMPTED, err[-2000:]
    d = run_dir_of(tmp_path)
    s = records.read_summary(d)
    assert s.status == records.STATUS_RUNNING and s.reason.startswith(f"preempted ({sig.name}) at step ")
    k = int(s.reason.rsplit(" ", 1)[1])
    assert 0 < k < STEPS and safe_load(d / records.CHECKPOINT_FILE)["step"] == k
    assert len(records.read_metrics(d)) == k
    r = launch(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming at step {k}/{STEPS}" in r.stderr
    s = assert_finished_clean(d)
    assert (s.resumes, s.preemptions) == (1, 1)
    diff = curve_difference(d, reference)
    print(f"\n[faults] {sig.name} at step {k}: largest difference after resume {diff!r}")
    assert diff == 0.0


@pytest.mark.slow
def test_a_full_disk_during_any_write_marks_the_run_failed_and_keeps_the_last_checkpoint(tmp_path, reference):
    # in the order a run meets them; the summary's second write in a process is its final one
    for fault in (
        "checkpoint.write:3:enospc",
        "metrics.write:2:enospc",
        "weights.write:1:enospc",
        "summary.write:2:enospc",
    ):
        before = run_dir_of(tmp_path)
        prev_step = safe_load(before / records.CHECKPOINT_FILE)["step"] if before else None
        r = launch(tmp_path, fault)
        assert r.returncode == 1, r.stderr[-2000:]
        d = run_dir_of(tmp_path)
        s = records.read_summary(d)
        assert s.status == records.STATUS_FAILED and "No space left on device" in s.reason, (fault, s.reason)
        ck = safe_load(d / records.CHECKPOINT_FILE)  # the last good checkpoint, whole
        assert len(ck["rows"]) == ck["step"] > 0 and (prev_step is None or ck["step"] >= prev_step)
        m = records.read_metrics(d)
        assert m["step"].tolist() == list(range(1, len(m) + 1))
        assert not list(d.glob(".*.tmp"))
    r = launch(tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    d = run_dir_of(tmp_path)
    assert_finished_clean(d)
    assert curve_difference(d, reference) == 0.0


def test_a_malformed_fault_spec_names_the_points_and_actions_allowed():
    from scaling.train.faults import POINTS, _parse

    assert _parse("checkpoint.write:2,step:5:enospc") == {"checkpoint.write": (2, "kill", 0), "step": (5, "enospc", 0)}
    assert _parse("config.write:1:fill:4096,startup.data:1:sigusr1") == {
        "config.write": (1, "fill", 4096),
        "startup.data": (1, "sigusr1", 0),
    }
    for bad in ("checkpoint:2", "step:0", "step:x", "step:1:explode", "step:1:kill:5", "step:1:fill:x"):
        with pytest.raises(ValueError, match="SCALING_FAULT_POINT="):
            _parse(bad)
    assert set(POINTS) >= {"checkpoint.write", "metrics.write", "weights.write", "finish.unlink"}
