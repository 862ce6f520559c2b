"""scaling: the training side of scaling-harness (model family, FLOP accounting, data, trainer, sweeps).

Kept light on purpose: importing ``scaling`` (or ``scaling.records`` / ``scaling.flops`` / ``scaling.family``) does not
import torch, so the analysis side can share the run-directory schema without a GPU stack.
"""
__version__ = "0.1.0"
