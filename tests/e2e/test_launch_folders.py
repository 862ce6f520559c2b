"""What a launch leaves in results_dir besides its runs: Hydra's own folder for the launch, one per launch, even for
two launches of one sweep started in the same second (they used to share ``_hydra/multirun-<second>``)."""

import time

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from scaling.config.hydra_tree import register
from support import REPO


def _launch_folder(key: str) -> str:
    """The folder a launch's composition names (``now`` is resolved once per composition, as at a launch's start)."""
    with initialize_config_dir(config_dir=str(REPO / "scaling" / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["results_dir=/r", "sweep=s"], return_hydra_config=True)
    return OmegaConf.select(cfg, key)


def test_two_launches_in_the_same_second_name_different_hydra_folders():
    register()
    for key in ("hydra.sweep.dir", "hydra.run.dir"):
        for _ in range(5):  # two launches' compositions; retried if a second ticked between them
            t0 = time.time()
            a, b = _launch_folder(key), _launch_folder(key)
            if int(time.time()) == int(t0):
                break
        assert a.startswith("/r/s/_hydra/") and a != b, (key, a, b)
