"""Helpers the tests share (fixtures are in conftest.py): the repository root, a user's command line as a real
subprocess (run_cli waits for it; start_cli and finish_cli for tests that signal or race processes), and the tiny
run config most trainer tests start from."""

import os
import subprocess
import sys
from pathlib import Path

from scaling.config import Config

REPO = Path(__file__).resolve().parents[1]


# what a test's child process must never inherit from the shell that ran pytest: a fault point (the test-only hook in
# scaling/train/faults.py) or a torchrun rank would change what the child does
NOT_INHERITED = ("SCALING_FAULT_POINT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def cli_env(env=None) -> dict:
    """The environment of a user's command in a test: this one, less NOT_INHERITED, unbuffered, wandb offline, the
    default data cache; then ``env`` on top (a value of None removes that variable)."""
    e = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
    e.update(PYTHONUNBUFFERED="1", WANDB_MODE="offline")
    e.setdefault("SCALING_DATA_DIR", str(REPO / ".cache" / "data"))
    for k, v in (env or {}).items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def start_cli(args, cwd=REPO, env=None, text=True) -> subprocess.Popen:
    """Start `python <args>` as a user would and return at once (stdout and stderr piped), for tests that signal,
    kill or race processes; ``args`` may start with "-m", "torch.distributed.run", ... for torchrun."""
    return subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=cli_env(env), text=text, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finish_cli(p: subprocess.Popen, timeout=600) -> subprocess.CompletedProcess:
    """Wait for a process from start_cli; its CompletedProcess. Past ``timeout`` it is killed and TimeoutExpired
    raised, as subprocess.run does."""
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def run_cli(args, cwd=REPO, env=None, timeout=600, text=True) -> subprocess.CompletedProcess:
    """Run `python <args>` (e.g. ["-m", "analysis", "report", ...] or ["-c", code]) as a user would and wait;
    return the CompletedProcess (text unless text=False)."""
    return finish_cli(start_cli(args, cwd=cwd, env=env, text=text), timeout=timeout)


def tiny_cfg(results_dir, **train_kw) -> Config:
    cfg = Config()
    cfg.results_dir = str(results_dir)
    cfg.sweep = "t"
    cfg.model.size = "5e3"
    cfg.model.seq_len = 32
    cfg.train.batch_size = 8
    cfg.train.eval_tokens = 2048
    cfg.train.threads = 1
    cfg.log.progress = False
    cfg.train.tokens = 60 * 8 * 32
    for k, v in train_kw.items():
        setattr(cfg.train, k, v)
    return cfg
