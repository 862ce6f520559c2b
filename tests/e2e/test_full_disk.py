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
