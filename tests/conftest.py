"""Shared fixtures: the default corpus (prepared once into the normal cache) and a real tiny Hydra sweep."""

import pytest

from support import REPO, run_cli


@pytest.fixture(scope="session")
def default_corpus():
    from scaling.data import prepare

    return prepare("shakespeare", vocab_size=512)


@pytest.fixture(scope="session")
def tiny_real_sweep(tmp_path_factory, default_corpus):
    """A real Hydra multirun of the sweeps/isoflop_tiny preset (3 budgets x 4 sizes) into a temp results folder."""
    out = tmp_path_factory.mktemp("results")
    r = run_cli(
        ["-m", "scaling.train", "-cd", str(REPO / "sweeps"), "-cn", "isoflop_tiny", f"results_dir={out}"], cwd=REPO
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "isoflop_tiny"
