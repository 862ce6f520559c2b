"""Comparing recipes (issue 17): two or more sweeps -> the compute multiplier M(C) = C_A(L_B(C)) / C with a joint
bootstrap interval, the wall-clock multiplier, whether the recipes share exponents and floor, and the
compute-optimal N of each at the target budgets.

One job a file: ``checks`` (can they be compared), ``frontier`` (one sweep's L*(C) and N_opt(C) with resamples),
``multiplier`` (M(C), its interval, throughput, trend, crossings), ``shared_exponent`` (the joint-fit test),
``core`` (``compare``), ``report`` (markdown section and figure), ``cli`` (``python -m analysis compare``),
``study`` (the synthetic-truth study).
"""

import sys
import types

from analysis.compare.checks import CompareError
from analysis.compare.core import Comparison, compare

__all__ = ["CompareError", "Comparison", "compare"]


class _CallableModule(types.ModuleType):
    """``analysis.compare(...)`` calls ``compare`` even once ``import analysis.compare`` has put this package, not
    the function, at ``analysis.compare``."""

    def __call__(self, *sweeps, **kw) -> Comparison:
        return compare(*sweeps, **kw)


sys.modules[__name__].__class__ = _CallableModule
