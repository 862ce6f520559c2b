"""Published loss curves under several schedules, to test the curve laws on curves this harness did not train:
Luo et al. 2025 (arXiv:2503.12811), 25M/100M/400M models, nine schedules each, released at
https://github.com/thu-yao-01-luo/MultiPowerLaw (commit 8da9f19; MIT). A derived copy (step, loss) is committed as
tests/data/mpl_curves.csv.gz (tests/data/mpl_curves.NOTICE). Their CSVs hold the rate at the logged steps only, so
every step's rate is rebuilt from the schedules their data loader (src/data_loader.py) assigns to each file: 2160
steps of linear warmup to 3e-4, then cosine to 3e-5, constant, a WSD whose decay from step 20000 of 24000 is
exponential (``wsd``) or linear (``wsdld``) to 3e-5, or two stages (3e-4 to step 8000, then X·1e-5 to 16000:
``wsdcon_X``). Their split: fit on TRAIN, predict TEST.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

TRAIN = ("cosine_24000", "constant_24000", "wsdcon_9")
TEST = ("constant_72000", "cosine_72000", "wsd_20000_24000", "wsdld_20000_24000", "wsdcon_3", "wsdcon_18")
SIZES = ("25M", "100M", "400M")
FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "data" / "mpl_curves.csv.gz"
# the authors' own mean relative error over the TEST curves (their logs/<size>.log, "Average Prede" on the test set)
AUTHORS_TEST_PREDE = {"25M": 0.0011022, "100M": 0.0014248, "400M": 0.0016798}
WARMUP, PEAK, END = 2160, 3e-4, 3e-5


def rates(curve: str) -> np.ndarray:
    """Every step's rate of the schedule named ``curve`` (index = their 0-based step)."""
    kind, *rest = curve.split("_")
    warm = np.linspace(0.0, PEAK, WARMUP)
    if kind == "wsdcon":
        total, lr_b = 16000, int(rest[0]) * 1e-5
        return np.concatenate([warm, np.full(8000 - WARMUP, PEAK), np.full(total - 8000, lr_b)])
    if kind in ("cosine", "constant"):
        total = int(rest[0])
        i = np.arange(WARMUP, total)
        if kind == "constant":
            return np.concatenate([warm, np.full(total - WARMUP, PEAK)])
        return np.concatenate([warm, END + 0.5 * (PEAK - END) * (1 + np.cos(np.pi * (i - WARMUP) / (total - WARMUP)))])
    if kind in ("wsd", "wsdld"):
        decay, total = int(rest[0]), int(rest[1])
        i = np.arange(decay, total)
        t = (i - decay) / (total - decay)
        tail = PEAK ** (1 - t) * END**t if kind == "wsd" else PEAK * (1 - t) + END * t
        return np.concatenate([warm, np.full(decay - WARMUP, PEAK), tail])
    raise ValueError(f"curve={curve!r}: not a schedule of the published set")


def load(path: str | Path = FIXTURE) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{(size, curve): (eta, steps, loss)}; steps past the schedule's last update are dropped (as their loader
    drops step 24000 of the 24000-step runs)."""
    df = pd.read_csv(path)
    out = {}
    for (size, curve), g in df.groupby(["size", "curve"]):
        eta = rates(str(curve))
        steps = g["step"].to_numpy(dtype=np.int64)
        keep = steps < len(eta)
        out[(str(size), str(curve))] = (eta, steps[keep], g["loss"].to_numpy(dtype=float)[keep])
    return out
