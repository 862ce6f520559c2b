"""A real full disk (a 4 MiB tmpfs filled mid-run), not an injected ENOSPC: the run is marked failed with the reason,
its last checkpoint stays intact, and a relaunch once there is room again resumes it to completion."""

import os
import subprocess
import uuid

import pytest

from scaling.core import records
from support import REPO, run_cli

TINY = [
    "sweep=t",
    "model.size=5e3",
    "model.seq_len=32",
    "train.batch_size=8",
    "train.eval_tokens=2048",
    "train.threads=1",
    "log.progress=false",
    "train.tokens=15360",
    "train.dtype=fp32",
]


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"a real full disk needs a tmpfs mount (root or CAP_SYS_ADMIN); here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk, leave_bytes: int):
    """Fill ``disk`` to ENOSPC, then give back ``leave_bytes`` (rounded to pages)."""
    filler = disk / f"filler-{uuid.uuid4().hex}"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    os.truncate(filler, max(0, filler.stat().st_size - leave_bytes))
    return filler


def test_a_real_full_disk_at_a_checkpoint_marks_the_run_failed_and_a_relaunch_resumes(small_disk):
    args = ["-m", "scaling.train", f"results_dir={small_disk}", *TINY]
    r = run_cli([*args, "train.halt_after_step=5"], cwd=REPO)
    assert r.returncode == 0, r.stderr
    (run_dir,) = [p for p in (small_disk / "t").iterdir() if not p.name.startswith("_")]
    ckpt = run_dir / records.CHECKPOINT_FILE
    before = ckpt.read_bytes()
    # room for the summary and metrics, not for another checkpoint (written every step from here)
    filler = fill(small_disk, len(before) // 2)
    r = run_cli([*args, "train.checkpoint_seconds=1e-9"], cwd=REPO)
    assert r.returncode == 1, r.stderr[-2000:]
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_FAILED and "No space left on device" in s.reason, (s.status, s.reason)
    assert "could not record the failure" not in r.stderr
    assert ckpt.read_bytes() == before and not list(run_dir.glob(".*.tmp"))
    filler.unlink()
    r = run_cli(args, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resuming at step 5" in r.stderr and records.read_summary(run_dir).status == records.STATUS_COMPLETE


def test_a_real_full_disk_at_the_final_weights_marks_the_run_failed_and_a_relaunch_completes(small_disk):
    args = ["-m", "scaling.train", f"results_dir={small_disk}", *TINY]
    r = run_cli([*args, "train.halt_after_step=55"], cwd=REPO)
    assert r.returncode == 0, r.stderr
    (run_dir,) = [p for p in (small_disk / "t").iterdir() if not p.name.startswith("_")]
    ckpt = run_dir / records.CHECKPOINT_FILE
    before = ckpt.read_bytes()
    # the final model.pt (a third of a checkpoint: no optimizer moments) does not fit; the records still do
    filler = fill(small_disk, len(before) // 8)
    r = run_cli([*args, "train.checkpoint_seconds=1e9"], cwd=REPO)
    assert r.returncode == 1, r.stderr[-2000:]
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_FAILED and "No space left on device" in s.reason, (s.status, s.reason)
    assert ckpt.read_bytes() == before and not (run_dir / records.WEIGHTS_FILE).exists()
    assert not list(run_dir.glob(".*.tmp"))
    filler.unlink()
    r = run_cli(args, cwd=REPO)
    assert r.returncode == 0 and "resuming at step 55" in r.stderr, r.stderr[-2000:]
    assert records.read_summary(run_dir).status == records.STATUS_COMPLETE


# --- a real full disk at every write point (scaling/train/faults.py: the `fill` action) -------------------------------
#
# Each case copies one run halted at step 3 onto a fresh 4 MiB tmpfs, relaunches it with
# SCALING_FAULT_POINT=<point>:<n>:fill:<bytes left>: as that write starts, the run's own process fills the tmpfs with
# zeros until ENOSPC and gives back <bytes left>, so the temp file (or the rename) of that write fails for real. Where
# the write is larger than a summary, one page is left: the process can still write a summary and must say `failed`
# with the full disk; where it is not (config.yaml, summary.json), nothing is left and the process cannot write at all:
# its records stay as they were, whole. Then the filler is removed and the same command must resume from the last
# checkpoint and end on exactly the final loss of a run never interrupted.

from scaling.train import faults  # noqa: E402
from scaling.train.state import safe_load  # noqa: E402
from support import finish_cli, start_cli  # noqa: E402

FAST = [*TINY[:-2], "train.tokens=2560", "train.dtype=fp32", "train.checkpoint_seconds=1e-9"]  # 10 steps
HALT = 3
PAGE = 4096
# point, n (this launch's n-th write of that kind), bytes left after the fill, whether a checkpoint of this launch
# precedes the failed write
WRITE_CASES = [
    ("config.write", 1, 0, False),
    ("summary.write", 1, 0, False),  # the summary of the run's start
    ("checkpoint.write", 1, PAGE, False),
    ("metrics.write", 1, PAGE, True),  # the metrics after the first checkpoint of this launch
    ("weights.write", 1, PAGE, True),  # the final model.pt
    ("summary.write", 2, 0, True),  # the final summary, `complete` never written
]
assert {c[0] for c in WRITE_CASES} == set(faults.WRITES)  # every write point, at least once


def launch_fast(results_dir, fault=None, extra=()):
    env = {"OMP_NUM_THREADS": "1", "SCALING_FAULT_POINT": fault}
    return finish_cli(start_cli(["-m", "scaling.train", f"results_dir={results_dir}", *FAST, *extra], env=env), 300)


def the_run_dir(results_dir):
    (d,) = [p for p in (results_dir / "t").iterdir() if p.is_dir() and not p.name.startswith("_")]
    return d


@pytest.fixture(scope="module")
def halted_and_reference(tmp_path_factory, default_corpus):
    root = tmp_path_factory.mktemp("halted")
    r = launch_fast(root, extra=[f"train.halt_after_step={HALT}"])
    assert r.returncode == 0, r.stderr[-2000:]
    ref = tmp_path_factory.mktemp("reference")
    r = launch_fast(ref)
    assert r.returncode == 0, r.stderr[-2000:]
    return the_run_dir(root), records.read_summary(the_run_dir(ref)).final_val_loss


@pytest.mark.slow
@pytest.mark.parametrize("point,n,left,after_ckpt", WRITE_CASES, ids=[f"{c[0]}:{c[1]}" for c in WRITE_CASES])
def test_a_real_full_disk_at_every_write_point(small_disk, halted_and_reference, point, n, left, after_ckpt):
    import shutil

    halted, ref_loss = halted_and_reference
    run_dir = small_disk / "t" / halted.name
    shutil.copytree(halted, run_dir, ignore=shutil.ignore_patterns(".lock"))
    ckpt = run_dir / records.CHECKPOINT_FILE
    before = {f.name: f.read_bytes() for f in run_dir.iterdir() if f.is_file()}

    r = launch_fast(small_disk, fault=f"{point}:{n}:fill:{left}")
    filler = small_disk / "t" / faults.FILLER
    assert filler.exists(), f"the fault point {point}:{n} was never reached\n{r.stderr[-2000:]}"
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stderr[-2000:]}"
    assert "No space left on device" in r.stderr, r.stderr[-2000:]
    assert not list(run_dir.glob(".*.tmp")), list(run_dir.iterdir())  # no half-written file
    s = records.read_summary(run_dir)  # whole, whatever it says
    if left:  # the process could still write: the run says it failed, and why
        assert s.status == records.STATUS_FAILED and "No space left on device" in s.reason, (s.status, s.reason)
    else:  # it could not write at all: what it had written stays as it was
        assert s.status == records.STATUS_RUNNING, (s.status, s.reason)
        if not after_ckpt:  # nothing of this launch's was written before the fault
            for name in (records.SUMMARY_FILE, records.METRICS_FILE):
                assert (run_dir / name).read_bytes() == before[name], name
    # the checkpoint on disk is whole: the one from before this launch, or one this launch completed before the fault
    step = safe_load(ckpt)["step"]
    if after_ckpt:
        assert step > HALT
    else:
        assert ckpt.read_bytes() == before[records.CHECKPOINT_FILE]
    assert not (run_dir / records.WEIGHTS_FILE).exists() or point == "summary.write"
    print(f"\n[full disk] {point}:{n} (left {left} B): exit 1, summary {s.status} ({s.reason}), checkpoint step {step}")

    filler.unlink()
    r = launch_fast(small_disk)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"resuming at step {step}" in r.stderr, r.stderr[-2000:]
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_COMPLETE and s.final_val_loss == ref_loss, (s.final_val_loss, ref_loss)
    assert sorted(p.name for p in small_disk.iterdir()) == ["t"]  # nothing outside the results folder's sweep
