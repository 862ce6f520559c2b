"""What a law and a fit result promise, declared: the bootstrap, the backtests and the report call only these.

A ``Law`` is a value that allocates compute (``analysis.laws.forms``, ``analysis.laws.published``). A ``FitResult``
is what every fit returns (``analysis.fits``: Approaches 1-3, Kaplan, the data-constrained law, and any law
registered with ``analysis.uncertainty.candidates.register``): it holds its law (``law``) and says, through the
methods below, how it is resampled, warm-started and shown, so that nothing asks with ``hasattr``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from analysis.laws.forms import Allocation


@runtime_checkable
class Law(Protocol):
    """A scaling law as a value: its name and its compute-optimal allocation at C FLOPs."""

    name: str

    def compute_optimal(self, C) -> Allocation: ...


@dataclass(frozen=True)
class Parameter:
    """One row of a fit's parameter table: a label, the value, the name of its bootstrapped quantity in
    ``default_quantities()`` (None: not bootstrapped) and how to format it (``analysis.numbers.fmt`` kinds)."""

    label: str
    value: float
    quantity: str | None
    kind: str


@runtime_checkable
class FitResult(Protocol):
    """A fitted law with how it was fitted."""

    resample_group: str | None  # the column whose groups a bootstrap resamples whole (curves: "run_id"), or None
    flops_convention: str  # the FLOP convention of the C the fit saw (analysis.laws.conventions)
    params_convention: str

    @property
    def law(self) -> Law: ...

    @property
    def a(self) -> float: ...  # exponent of N_opt ∝ C^a (NaN where the law has no single exponent)

    @property
    def b(self) -> float: ...  # exponent of D_opt ∝ C^b

    def compute_optimal(self, C) -> Allocation: ...

    def default_quantities(self, budget: float | None = None) -> dict[str, float]: ...

    def warm_start(self) -> dict[str, Any]: ...  # keywords that start a refit from this optimum ({}: none)

    def refit_resamples(
        self, runs: pd.DataFrame, resamples: list, *, n_threads: int | None = None
    ) -> list | None: ...  # every resample refitted at once, or None: refit one by one

    def parameters(self) -> list[Parameter]: ...  # the report's parameter table

    def fit_summary(self) -> dict[str, Any]: ...  # how the fit went (converged, points, ...), in report order
