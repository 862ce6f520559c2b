"""Helpers the tests share (fixtures are in conftest.py): the repository root, a user's command line as a real
subprocess, and the tiny run config most trainer tests start from."""
import os
import subprocess
import sys
from pathlib import Path

from scaling.config import Config

REPO = Path(__file__).resolve().parents[1]


def run_cli(args, cwd, env=None, timeout=600):
    """Run `python -m ...` as a user would; return the CompletedProcess (text)."""
    e = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", **(env or {})}
    e.setdefault("SCALING_DATA_DIR", str(REPO / ".cache" / "data"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


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
