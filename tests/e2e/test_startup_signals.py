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


# --- a real signal at every named start-up stage (scaling/train/faults.py: STAGES, actions sigterm/sigusr1) ---------
#
# The timed signals above land wherever the machine happens to be; these land exactly at each stage of start-up: the
# process sends the signal to itself there (SCALING_FAULT_POINT=<stage>:1:sigterm), as a scheduler's preemption
# arriving at that moment. Every stage must give exit 75, a summary `running` that says `preempted (<signal>)`, nothing
# outside results_dir, and a relaunch of the same command that completes the run.

from scaling.train import faults  # noqa: E402
from support import run_cli  # noqa: E402

FAST = [*TINY[:-2], "train.tokens=2560", "train.dtype=fp32"]  # 10 steps
# every stage gets a real signal; the two signals alternate over the stages (one handler serves both,
# scaling/launch/preemption.py), so both are tried early and late without paying ~11 s a launch pair twice per stage
SIGNAL_CASES = [(stage, ("sigterm", "sigusr1")[i % 2]) for i, stage in enumerate(faults.STAGES)]


@pytest.mark.slow
@pytest.mark.parametrize("stage,sig", SIGNAL_CASES, ids=[f"{a}-{b}" for a, b in SIGNAL_CASES])
def test_a_signal_at_every_start_up_stage_exits_75_and_the_run_resumes(tmp_path, default_corpus, stage, sig):
    results = tmp_path / "results"
    args = ["-m", "scaling.train", f"results_dir={results}", *FAST]
    env = {"OMP_NUM_THREADS": "1"}
    r = run_cli(args, env={**env, "SCALING_FAULT_POINT": f"{stage}:1:{sig}"}, timeout=300)
    name = sig.upper()
    assert r.returncode == EXIT_PREEMPTED, f"{stage} {name}: exit {r.returncode}\n{r.stderr[-2000:]}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # nothing outside results_dir
    runs = [x for x in (results / "t").iterdir() if not x.name.startswith("_")] if (results / "t").exists() else []
    # the flag set at any stage is acted on when the run starts, in its directory: every stage gets a summary
    (d,) = runs
    s = records.read_summary(d)
    assert s.status == records.STATUS_RUNNING and s.reason.startswith(f"preempted ({name})"), (s.status, s.reason)
    assert not (d / records.CHECKPOINT_FILE).exists() and not list(d.glob(".*.tmp"))
    print(f"\n[signals] {name} at {stage}: exit 75, {s.reason}")
    r = run_cli(args, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert records.read_summary(d).status == records.STATUS_COMPLETE
