"""The laws a rolling backtest compares, as a registry: each a name, a label and ``fit(runs) -> result`` where the
result has ``compute_optimal(C) -> Allocation`` (with the loss at the optimum where the law predicts one).

Register another law with ``register(Candidate(...))``; ``analyse`` and ``python -m analysis backtest`` then fit,
backtest and report it beside the others, and it can become the report's headline. The data-constrained law
(``analysis/fits/datacon.py``) is registered so, with ``bootstrap=False``: its seven-parameter fit is too slow to refit
a thousand times, so the report gives it no intervals and says so.

``six_nd=True`` says the law's ``compute_optimal(C)`` assumes C = 6ND; its allocations are then converted to the
sweep's FLOP convention (``analysis.laws.conventions``) before they are compared with the sweep's IsoFLOP minima.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

from analysis.curves.joint import fit_joint
from analysis.fits import LABELS
from analysis.fits.approach2 import fit_approach2
from analysis.fits.approach3 import fit_approach3
from analysis.fits.datacon import fit_datacon
from analysis.fits.kaplan import fit_kaplan


@dataclass(frozen=True)
class Candidate:
    """A law that can be fitted to runs and asked for an allocation. ``fit`` may accept the keywords of a previous
    result's ``warm_start()`` (then a rolling backtest starts each cutoff's fit from the previous cutoff's)."""

    name: str
    label: str
    fit: Callable[..., Any]  # runs, and optionally a previous result's warm_start() keywords
    six_nd: bool = False
    description: str = ""
    bootstrap: bool = True  # False: too slow to refit n_boot times; the report says it has no intervals


LAWS: dict[str, Candidate] = {}


def register(candidate: Candidate) -> Candidate:
    """Add (or replace) a law in the registry every backtest and report uses."""
    if not isinstance(candidate, Candidate):
        raise TypeError(f"register: expected a Candidate, got {type(candidate).__name__}")
    LAWS[candidate.name] = candidate
    return candidate


register(
    Candidate(
        "approach2",
        LABELS["approach2"],
        fit_approach2,
        description="IsoFLOP minima -> N_opt ∝ C^a; loss from L_opt(C) = E + (C_c/C)^α_C through the "
        "minima (Hoffmann et al. 2022 §3.2)",
    )
)
register(
    Candidate(
        "approach3",
        LABELS["approach3"],
        fit_approach3,
        six_nd=True,
        description="L(N, D) = E + A/N^α + B/D^β (Hoffmann et al. 2022 §3.3)",
    )
)
register(
    Candidate(
        "kaplan",
        LABELS["kaplan"],
        fit_kaplan,
        six_nd=True,
        description="L(N, D) = E + [(N_c/N)^(α_N/α_D) + D_c/D]^α_D (Kaplan et al. 2020 eq. 1.5)",
    )
)

register(
    Candidate(
        "datacon",
        LABELS["datacon"],
        fit_datacon,
        six_nd=True,
        bootstrap=False,
        description="L = E + A/N'^α + B/D'^β with repeated tokens and excess parameters discounted "
        "(Muennighoff et al. 2023 §3); allocates for the corpus the runs drew from",
    )
)

register(
    Candidate(
        "curve_joint",
        "Curve law (every checkpoint)",
        fit_joint,
        six_nd=True,
        bootstrap=False,
        description="L(N, s) = E + A/N^α + B/S1(s)^β − C·S2(s) on every logged checkpoint, S1 rate-weighted tokens and "
        "S2 the annealing area (Tissue et al. 2024); at a schedule's end Chinchilla's L(N, D) "
        "(analysis/curves/joint.py); no bootstrap: its fit reads every run's curve",
    )
)


def fixed_e_candidate(E: float, grid="full") -> Candidate:
    """Approach 3 with the irreducible loss E fixed by the user (not registered: it exists only when E is given)."""
    return Candidate(
        "approach3_fixed_E",
        f"Approach 3, E = {E:g} fixed",
        functools.partial(fit_approach3, E=E),
        six_nd=True,
        description=f"Approach 3 with E = {E:g} fixed by the user",
    )


def candidates(E: float | None = None, names=None) -> list[Candidate]:
    """The registered laws (or those in ``names``), plus Approach 3 with E fixed when ``E`` is given."""
    out = [LAWS[n] for n in (names if names is not None else LAWS) if n in LAWS]
    if names is not None:
        unknown = [n for n in names if n not in LAWS and n != "approach3_fixed_E"]
        if unknown:
            raise ValueError(f"candidates: names={unknown} are not registered; registered: {list(LAWS)}")
    if E is not None and (names is None or "approach3_fixed_E" in names):
        out.append(fixed_e_candidate(E))
    return out
