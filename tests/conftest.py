"""Shared fixtures: the default corpus (prepared once into the normal cache) and a real tiny Hydra sweep."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def default_corpus():
    from scaling.data import prepare

    return prepare("shakespeare", vocab_size=512)


def run_cli(args, cwd, env=None, timeout=600):
    """Run `python -m ...` as a user would; return the CompletedProcess (text)."""
    e = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "offline", **(env or {})}
    e.setdefault("SCALING_DATA_DIR", str(REPO / ".cache" / "data"))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_real_sweep(tmp_path_factory, default_corpus):
    """A real Hydra multirun of the sweeps/isoflop_tiny preset (3 budgets x 4 sizes) into a temp results folder."""
    out = tmp_path_factory.mktemp("results")
    r = run_cli(["-m", "scaling.train", "-cd", str(REPO / "sweeps"), "-cn", "isoflop_tiny", f"results_dir={out}"],
                cwd=REPO)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "isoflop_tiny"
