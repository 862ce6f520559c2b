"""Concurrent launches with real processes: one sweep launched twice at once, and again while it runs, trains every
run exactly once and leaves every run directory whole; a lock left by a killed process never blocks a relaunch."""

import re
import signal
import time

import pytest

from scaling.core import records
from scaling.train.lifecycle import EXIT_BUSY
from support import start_cli

pytestmark = pytest.mark.slow

RUN = [
    "model.head_size=8",
    "model.seq_len=32",
    "train.batch_size=8",
    "train.eval_tokens=1024",
    "log.progress=false",
    "train.threads=1",
    "train.checkpoint_seconds=0.001",
]


def popen(args, fault=None):
    return start_cli(["-m", "scaling.train", *args], env={"OMP_NUM_THREADS": "1", "SCALING_FAULT_POINT": fault or None})


def wait_for(pred, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def test_two_launches_of_one_sweep_at_once_and_a_relaunch_while_it_runs_train_each_run_once(tmp_path, default_corpus):
    sizes = ["3e3", "4e3", "5e3", "6e3"]
    args = ["-m", f"model.size={','.join(sizes)}", "train.tokens=6400", *RUN, "sweep=c", f"results_dir={tmp_path}"]
    a, b = popen(args), popen(args)  # at once
    assert wait_for(lambda: any((tmp_path / "c").glob("N*/checkpoint.pt")))
    c = popen(args)  # a relaunch while the sweep is running
    errs = []
    for p in (a, b, c):
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
        errs.append(err)
    runs = sorted(records.iter_run_dirs(tmp_path / "c"))
    assert len(runs) == len(sizes)
    done = [m for e in errs for m in re.findall(r"\[train\] (\S+): done:", e)]
    assert sorted(done) == sorted(d.name for d in runs), done  # every run trained exactly once, by one process
    busy = sum(e.count("is training this run right now; skipping it in this launch") for e in errs)
    complete = sum(e.count("already complete") for e in errs)
    assert busy + complete == 2 * len(sizes)  # the other two launches skipped each run, and said why
    print(
        f"\n[concurrency] 3 launches of a {len(sizes)}-run sweep: {len(done)} trainings, {busy} skipped as busy, "
        f"{complete} skipped as complete; trained by launch: {[len(re.findall(': done:', e)) for e in errs]}"
    )
    for d in runs:
        s = records.read_summary(d)
        m = records.read_metrics(d)
        assert s.status == records.STATUS_COMPLETE and s.resumes == 0
        assert m["step"].tolist() == list(range(1, s.steps + 1))
        assert not (d / records.CHECKPOINT_FILE).exists() and not list(d.glob(".*.tmp"))


def test_a_live_lock_refuses_a_second_single_launch_and_a_dead_ones_lock_does_not_block(tmp_path, default_corpus):
    args = ["model.size=3e3", "train.tokens=12800", *RUN, "sweep=l", f"results_dir={tmp_path}"]
    first = popen(args)
    assert wait_for(lambda: any((tmp_path / "l").glob("N*/checkpoint.pt")))
    first.send_signal(signal.SIGSTOP)  # mid-training, holding the lock, for as long as the second launch needs
    second = popen(args)  # the same run while the first owns it
    _, err2 = second.communicate(timeout=300)
    assert second.returncode == EXIT_BUSY and f"(pid {first.pid} on " in err2 and "right now" in err2, err2[-2000:]
    first.send_signal(signal.SIGKILL)  # dies holding the lock: no cleanup of any kind runs
    first.communicate(timeout=60)
    (run_dir,) = (tmp_path / "l").glob("N*")
    assert (run_dir / ".lock").read_text().startswith(f"pid {first.pid} ")  # the stale lock file is still there
    third = popen(args)
    _, err3 = third.communicate(timeout=300)
    assert third.returncode == 0, err3[-2000:]
    assert "resuming at step" in err3  # the kernel released the dead process's flock
    assert records.read_summary(run_dir).status == records.STATUS_COMPLETE
