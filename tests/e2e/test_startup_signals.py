"""SIGTERM or SIGUSR1 while ``python -m scaling.train`` is still starting (importing torch, composing with Hydra,
loading the data) is a preemption like one mid-run: exit 75, a summary marked running that says so, and a relaunch
that completes the run."""

import os
import signal
import subprocess
import sys
import time

import pytest

from scaling.core import records
from scaling.train.lifecycle import EXIT_PREEMPTED
from support import REPO

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


def launch(results_dir):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline"}
    env.setdefault("SCALING_DATA_DIR", str(REPO / ".cache" / "data"))
    return subprocess.Popen(
        [sys.executable, "-m", "scaling.train", f"results_dir={results_dir}", *TINY],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# seconds after launch: inside torch's import, inside Hydra's compose and the data's loading (on a machine where the
# whole start-up takes 3-5 s); the stage each one hit is printed
@pytest.mark.parametrize(
    "sig,delay", [(signal.SIGTERM, 0.5), (signal.SIGUSR1, 0.5), (signal.SIGTERM, 1.5), (signal.SIGTERM, 2.5)]
)
def test_a_signal_during_start_up_exits_75_with_a_summary_and_the_run_resumes(tmp_path, sig, delay):
    p = launch(tmp_path)
    time.sleep(delay)
    p.send_signal(sig)
    out, err = p.communicate(timeout=180)
    assert p.returncode == EXIT_PREEMPTED, f"exit {p.returncode}\n{err[-2000:]}"
    (d,) = [x for x in (tmp_path / "t").iterdir() if not x.name.startswith("_")]
    s = records.read_summary(d)
    assert s.status == records.STATUS_RUNNING and s.reason.startswith(f"preempted ({sig.name})"), s.reason
    print(f"\n[signals] {sig.name} at {delay} s: {s.reason}")
    r = launch(tmp_path)
    out, err = r.communicate(timeout=180)
    assert r.returncode == 0, err[-2000:]
    assert records.read_summary(d).status == records.STATUS_COMPLETE
