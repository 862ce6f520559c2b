"""The SLURM launcher presets run through submitit's local executor with real processes: a run sent SIGTERM
mid-training checkpoints, is requeued by submitit, resumes, and ends bit-identical to an uninterrupted run; the SLURM
preset writes the sbatch script a cluster user expects (array parallelism, signal, requeue)."""

import os
import signal
import time

import pytest
import torch

from scaling.core import records
from support import start_cli

# a tiny model: ~470 steps, about 6 s of training on a loaded 2-core machine
RUN = [
    "model.size=3e3",
    "model.head_size=8",
    "model.seq_len=32",
    "train.batch_size=8",
    "train.tokens=1.2e5",
    "train.eval_tokens=1024",
    "train.final_eval_tokens=4096",
    "log.progress=false",
    "train.threads=1",
    "train.checkpoint_seconds=0.5",
    "sweep=s",
]


def popen(args):
    return start_cli(["-m", "scaling.train", *args], env={"OMP_NUM_THREADS": "1"})


def wait_for(pred, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = pred()
        if out:
            return out
        time.sleep(0.05)
    return None


def lock_pid(run_dir):
    """The pid of the process training the run, from its lock file (`pid N on host`)."""
    try:
        words = (run_dir / ".lock").read_text().split()
    except OSError:
        return None
    return int(words[1]) if len(words) > 1 and words[0] == "pid" else None


@pytest.mark.slow
def test_sigterm_under_submitit_local_requeues_the_job_and_the_run_ends_bit_identical(tmp_path, default_corpus):
    sub, ref = tmp_path / "submitit", tmp_path / "reference"
    launch = popen(["-m", "hydra/launcher=slurm_local", *RUN, f"results_dir={sub}"])
    reference = popen([*RUN, f"results_dir={ref}"])  # the same run, uninterrupted, meanwhile
    ckpt = wait_for(lambda: next((sub / "s").glob("N*/checkpoint.pt"), None) if (sub / "s").exists() else None)
    assert ckpt is not None, launch.stderr.read() if launch.poll() is not None else "no checkpoint within 120 s"
    run_dir = ckpt.parent
    pid = wait_for(lambda: lock_pid(run_dir))
    assert pid and pid != launch.pid  # the submitit task, not the launcher
    os.kill(pid, signal.SIGTERM)  # what SLURM sends on preemption
    _, err = launch.communicate(timeout=300)
    assert launch.returncode == 0, err[-3000:]
    _, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err[-3000:]

    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_COMPLETE and s.preemptions == 1 and s.resumes == 1, (s.status, s.reason)
    logs = "".join(p.read_text() for p in (sub / "s" / "_hydra").glob("multirun-*/.submitit/*/*log.err"))
    assert "preempted (SIGTERM) at step" in logs and "handing the job to submitit to requeue it" in logs, logs[-3000:]
    assert "resuming at step" in logs
    ref_dir = ref / "s" / run_dir.name
    a, b = records.read_metrics(run_dir), records.read_metrics(ref_dir)
    for col in ("step", "train_loss", "val_loss", "lr", "flops_chinchilla"):
        assert a[col].tolist() == pytest.approx(b[col].tolist(), rel=0, abs=0, nan_ok=True), col
    wa, wb = (torch.load(d / records.WEIGHTS_FILE, weights_only=True) for d in (run_dir, ref_dir))
    assert all(torch.equal(wa[k], wb[k]) for k in wb)
    assert records.read_summary(ref_dir).final_val_loss == s.final_val_loss
    stopped = int(
        next(ln for ln in logs.splitlines() if "preempted (SIGTERM) at step" in ln)
        .split("at step ")[1]
        .split()[0]
        .rstrip(":")
    )
    print(
        f"\n[slurm_local] SIGTERM at step {stopped}/{s.steps}, requeued by submitit, resumed: every loss and every "
        f"weight bit-identical to the uninterrupted run (final val loss {s.final_val_loss!r})"
    )


def sbatch_script(preset, overrides, n_runs):
    """The sbatch script submitit writes for a launcher preset, composed by Hydra as a launch would (fields renamed as
    submitit's AutoExecutor does; sbatch itself is not needed)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf
    from submitit.slurm.slurm import _make_sbatch_string

    import scaling.train.entry  # noqa: F401  registers the config schema

    with initialize_config_module(config_module="scaling.conf", version_base="1.3"):
        c = compose("config", overrides=[f"hydra/launcher={preset}", *overrides], return_hydra_config=True)
        p = {
            k: v
            for k, v in OmegaConf.to_container(c.hydra.launcher, resolve=False).items()
            if k not in ("submitit_folder", "name")
        }  # Hydra fills these in at launch
        p["tasks_per_node"] = c.hydra.launcher.tasks_per_node  # resolves ${.gpus_per_node}
    assert p.pop("_target_").endswith("SlurmLauncher")
    p.pop("max_num_timeout")  # the executor's, not sbatch's
    renamed = {"timeout_min": "time", "tasks_per_node": "ntasks_per_node", "mem_gb": "mem"}
    kw = {renamed.get(k, k): v for k, v in p.items() if v is not None}
    kw["mem"] = f"{kw['mem']}GB" if "mem" in kw else None
    return _make_sbatch_string(
        command="python -m submitit.core._submit x",
        folder="/f",
        job_name="scaling.train.entry",
        map_count=n_runs,
        **{k: v for k, v in kw.items() if v is not None},
    )


def test_the_slurm_preset_asks_for_the_signal_requeue_and_array_parallelism_a_cluster_user_expects():
    s = sbatch_script(
        "slurm",
        ["hydra.launcher.partition=gpu", "hydra.launcher.array_parallelism=16", "hydra.launcher.timeout_min=120"],
        n_runs=20,
    )
    for line in (
        "--array=0-19%16",
        "--partition=gpu",
        "--gpus-per-node=1",
        "--cpus-per-task=8",
        "--ntasks-per-node=1",
        "--time=120",
        "--signal=USR2@120",
        "--requeue",
    ):
        assert f"#SBATCH {line}\n" in s, (line, s)
    ddp = sbatch_script("slurm_ddp", ["hydra.launcher.gpus_per_node=4"], n_runs=2)
    assert "#SBATCH --gpus-per-node=4\n" in ddp and "#SBATCH --ntasks-per-node=4\n" in ddp  # one task per GPU
