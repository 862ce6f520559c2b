"""Published compute-optimal scaling laws, as constants with their sources, to draw beside a sweep's own fit.

Each law is an instance of a form in ``analysis.laws.forms`` (``ParametricLaw``, ``KaplanJointLaw``, ``AllocationLaw``),
the same classes a fit's ``.law`` returns. ``PUBLISHED`` maps a short name to a law with
``.compute_optimal(C) -> Allocation``, ``.a`` (N_opt ∝ C^a), ``.source`` and the FLOP / parameter conventions the
authors counted under (their C and N are not ours unless the conventions
match: Chinchilla counted every parameter and attention FLOPs, Kaplan non-embedding parameters and 6N
FLOPs a token, DeepSeek non-embedding FLOPs a token M instead of parameters). ``compare_to_published`` tabulates a
fit's allocations beside them.

Losses of the published laws are in their authors' nats on their own data and tokenizer: comparable in shape, not
in level.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

# the forms themselves live in analysis.laws.forms; these names stay importable from here
from analysis.laws.forms import AllocationLaw, KaplanJointLaw, ParametricLaw, PowerLaw  # noqa: F401

PF_DAY = 1e15 * 86400  # FLOPs in a petaflop/s-day, Kaplan et al.'s compute unit


CHINCHILLA_PAPER = "Hoffmann et al. 2022, Training Compute-Optimal Large Language Models, arXiv:2203.15556"
# Table 3: the Approach 1 projection puts a 67B-parameter model at 5.76e23 FLOPs (1.5T tokens). Approaches 1 and 2
# are drawn through that point with their own exponents (Table 2: a = 0.50 and 0.49); D_opt = C / (6 N_opt).
_GOPHER_C, _CHINCHILLA_N = 5.76e23, 67e9

CHINCHILLA_APPROACH1 = AllocationLaw(
    name="chinchilla_approach1",
    n_opt=PowerLaw(coef=_CHINCHILLA_N / _GOPHER_C**0.50, exponent=0.50),
    source=f"{CHINCHILLA_PAPER}, §3.1, Table 2 (a = 0.50, b = 0.50) and Table 3 (67B at 5.76e23 FLOPs)",
    flops_convention="chinchilla",
    params_convention="total",
)

CHINCHILLA_APPROACH2 = AllocationLaw(
    name="chinchilla_approach2",
    n_opt=PowerLaw(coef=_CHINCHILLA_N / _GOPHER_C**0.49, exponent=0.49),
    source=f"{CHINCHILLA_PAPER}, §3.2, Table 2 (a = 0.49, b = 0.51); drawn through Table 3's 67B at 5.76e23 FLOPs",
    flops_convention="chinchilla",
    params_convention="total",
)

CHINCHILLA_APPROACH3 = ParametricLaw(
    name="chinchilla_approach3",
    E=1.69,
    A=406.4,
    B=410.7,
    alpha=0.34,
    beta=0.28,
    source=f"{CHINCHILLA_PAPER}, §3.3 eq. 4 and Appendix D.2 (E 1.69, A 406.4, B 410.7, alpha 0.34, beta 0.28)",
    flops_convention="chinchilla",
    params_convention="total",
)

EPOCH_REFIT = ParametricLaw(
    name="epoch_refit",
    E=1.8172,
    A=482.01,
    B=2085.43,
    alpha=0.3478,
    beta=0.3658,
    source="Besiroglu et al. 2024, Chinchilla Scaling: A replication attempt (Epoch AI), arXiv:2404.10102, "
    "Table 1 (refit of Chinchilla's Approach 3 data; a ≈ 0.51)",
    flops_convention="chinchilla",
    params_convention="total",
)

KAPLAN_2020 = AllocationLaw(
    name="kaplan2020",
    # §6.1 / Fig. 14: N_opt ≈ 1.3e9 (C_min / PF-day)^0.73 non-embedding parameters; D = C / (6 N).
    n_opt=PowerLaw(coef=1.3e9 / PF_DAY**0.73, exponent=0.73),
    # eq. 1.3: L(C_min) = (C_c^min / C_min)^0.050 with C_c^min = 3.1e8 PF-days (nats, WebText2).
    loss=PowerLaw(coef=(3.1e8 * PF_DAY) ** 0.050, exponent=-0.050),
    source="Kaplan et al. 2020, Scaling Laws for Neural Language Models, arXiv:2001.08361, §6.1 and Fig. 14 "
    "(N_opt ≈ 1.3e9 (C/PF-day)^0.73), eq. 1.3 (L = (3.1e8 PF-day / C)^0.050)",
    flops_convention="6n",
    params_convention="non_embedding",
)

KAPLAN_JOINT = KaplanJointLaw(
    name="kaplan2020_joint",
    N_c=6.4e13,
    D_c=1.8e13,
    alpha_N=0.076,
    alpha_D=0.103,
    source="Kaplan et al. 2020, arXiv:2001.08361, eq. 1.5 fitted in Table 2 (alpha_N 0.076, alpha_D 0.103, "
    "N_c 6.4e13, D_c 1.8e13); eq. 1.1-1.2 alone give alpha_N 0.076, N_c 8.8e13, alpha_D 0.095, D_c 5.4e13",
)

DEEPSEEK_2024 = AllocationLaw(
    name="deepseek2024",
    # §3.2 eq. 4: M_opt = 0.1715 C^0.5243 (non-embedding FLOPs a token), D_opt = 5.8316 C^0.4757; N ≈ M / 6.
    n_opt=PowerLaw(coef=0.1715, exponent=0.5243),
    d_opt=PowerLaw(coef=5.8316, exponent=0.4757),
    n_per_unit=1.0 / 6.0,
    source="DeepSeek-AI 2024, DeepSeek LLM: Scaling Open-Source Language Models with Longtermism, "
    "arXiv:2401.02954, §3.2 eq. 4 (M_opt = 0.1715 C^0.5243, D_opt = 5.8316 C^0.4757; N shown as M/6)",
    flops_convention="deepseek_m",
    params_convention="non_embedding",
)

PUBLISHED: dict[str, Any] = {
    law.name: law
    for law in (
        CHINCHILLA_APPROACH1,
        CHINCHILLA_APPROACH2,
        CHINCHILLA_APPROACH3,
        EPOCH_REFIT,
        KAPLAN_2020,
        DEEPSEEK_2024,
    )
}


PUBLISHED_LABELS = {
    "chinchilla_approach1": "Chinchilla Approach 1 (Hoffmann+ 2022)",
    "chinchilla_approach2": "Chinchilla Approach 2 (Hoffmann+ 2022)",
    "chinchilla_approach3": "Chinchilla Approach 3 (Hoffmann+ 2022)",
    "epoch_refit": "Epoch AI refit (Besiroglu+ 2024)",
    "kaplan2020": "Kaplan+ 2020",
    "kaplan2020_joint": "Kaplan+ 2020, joint L(N, D)",
    "deepseek2024": "DeepSeek LLM 2024",
}


def published_label(name: str) -> str:
    """A readable label for a key of PUBLISHED (the key itself for a law added later)."""
    return PUBLISHED_LABELS.get(name, name)


def compare_to_published(
    result: Any, budgets: float | Iterable[float], laws: Iterable[str] | None = None
) -> pd.DataFrame:
    """One row per (law, budget): N_opt, D_opt, tokens per parameter, loss and exponent a of ``result`` (a fit, or
    a dict name -> fit, or None for the published laws alone) beside each published law in ``laws`` (default
    all of PUBLISHED), with each law's conventions and source."""
    budgets = np.atleast_1d(np.asarray(budgets, dtype=float))
    names = list(PUBLISHED) if laws is None else list(laws)
    unknown = [n for n in names if n not in PUBLISHED]
    if unknown:
        raise ValueError(f"compare_to_published: laws {unknown} are unknown; known: {list(PUBLISHED)}")
    entries: list[tuple[str, Any, str, str, str]] = []
    fits = {} if result is None else (result if isinstance(result, dict) else {result.law.name: result})
    for name, r in fits.items():
        entries.append((f"this fit ({name})", r, r.flops_convention, r.params_convention, "this sweep"))
    for n in names:
        law = PUBLISHED[n]
        entries.append((n, law, law.flops_convention, law.params_convention, law.source))
    rows = []
    for label, obj, fc, pc, src in entries:
        al = obj.compute_optimal(budgets)
        for i, C in enumerate(budgets):
            rows.append(
                dict(
                    law=label,
                    C=float(C),
                    N_opt=float(np.atleast_1d(al.N_opt)[i]),
                    D_opt=float(np.atleast_1d(al.D_opt)[i]),
                    tokens_per_param=float(np.atleast_1d(al.tokens_per_param)[i]),
                    loss=float(np.atleast_1d(al.loss)[i]),
                    a=float(obj.a),
                    flops_convention=fc,
                    params_convention=pc,
                    source=src,
                )
            )
    return pd.DataFrame(rows)
