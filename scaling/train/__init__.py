"""One run, start to finish: the Hydra entry point, the run lifecycle, the step loop, its state, branched runs, samples.

``python -m scaling.train [overrides]`` is the entry point (scaling/train/entry.py). ``train`` and ``run`` are
imported on first use, so ``python -m scaling.train.generate`` does not pay for Hydra.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "train": "scaling.train.lifecycle",
    "run": "scaling.train.lifecycle",
    "resolve": "scaling.train.lifecycle",
    "main": "scaling.train.entry",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'scaling.train' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
