"""Sampling from a finished run's weights."""

import pytest

from scaling.config.schema import run_id
from scaling.train.entry import train
from scaling.train.generate import generate
from support import REPO, run_cli, tiny_cfg


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, default_corpus):
    root = tmp_path_factory.mktemp("gen")
    cfg = tiny_cfg(root, tokens=30 * 256)
    train(cfg)
    return root / "t" / run_id(cfg)


def test_generate_continues_a_prompt_reproducibly(finished_run):
    a = generate(finished_run, "ROMEO.", max_new_tokens=30, seed=1)
    b = generate(finished_run, "ROMEO.", max_new_tokens=30, seed=1)
    c = generate(finished_run, "ROMEO.", max_new_tokens=30, seed=2)
    assert a == b and a != c
    assert a[0].startswith("ROMEO.") and len(a[0]) > len("ROMEO.") + 10


def test_generate_cli(finished_run):
    r = run_cli(
        [
            "-m",
            "scaling.train.generate",
            str(finished_run),
            "--prompt",
            "To be",
            "--max-new-tokens",
            "20",
            "--num-samples",
            "2",
            "--temperature",
            "0",
        ],
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("--- sample") == 2 and "To be" in r.stdout


def test_generate_without_weights_is_a_clear_error(tmp_path):
    r = run_cli(["-m", "scaling.train.generate", str(tmp_path), "--prompt", "x"], cwd=REPO)
    assert r.returncode == 2 and "no model.pt" in r.stderr
