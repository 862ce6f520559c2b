"""Shared fixtures: the default corpus (prepared once into the normal cache), a real tiny Hydra sweep and a real
tiny sweep with a run the trainer stopped early."""

import pytest

from support import REPO, run_cli, tiny_cfg


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


@pytest.fixture(scope="session")
def stopped_sweep(tmp_path_factory, default_corpus):
    """(sweep folder, {name: summary}): two complete runs of one budget (5e3 params at seq 32, batch 8: about 60
    steps), and a third with a learning rate 1000x too small that the trainer's early stop ends at half its steps
    (its curve is far above theirs). Read by the loader's and the planner's tests (issue 18): neither writes in it."""
    from scaling.core import records
    from scaling.train.entry import train

    tmp = tmp_path_factory.mktemp("stopped")

    def cfg(**kw):
        return tiny_cfg(tmp, tokens=None, budget=2.2e9, eval_interval=2, eval_tokens=512, **kw)

    good, near, bad = train(cfg()), train(cfg(seed=1)), train(cfg(lr=3e-6, early_stop_frac=0.5))
    assert good.status == near.status == records.STATUS_COMPLETE and bad.status == records.STATUS_STOPPED
    return tmp / "t", dict(good=good, near=near, bad=bad)
