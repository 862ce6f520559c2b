"""scaling: the training side of scaling-harness (model family, FLOP accounting, data, trainer, sweeps).

Kept light on purpose: importing ``scaling`` or anything in ``scaling.core`` does not import torch, so the analysis
side can share the run-directory schema without a GPU stack.
"""

from scaling.core import legacy

legacy.install()  # import paths from before the subpackages (scaling.records, scaling.plan, ...) keep working

__version__ = "0.1.0"
