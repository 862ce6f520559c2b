"""Learning-rate rules as values: a power law lr = coef · N^a · D^b · C^c, from a rule file or a published law.

``train.lr_rule`` names one: a path to the JSON file ``python -m analysis.lr <sweep>`` writes (the fitted rule of an
LR sweep), or a published rule (``deepseek``). Torch-free, so the planner and the dry run can evaluate it.

The file (written by analysis/fits/lr.py, read here; keep the two in step)::

    {"lr": {"coef": 0.012, "exponents": {"N": -0.31}, "flops_convention": "chinchilla", "source": "..."},
     "batch_tokens": {...same form, optional...}, "fit": {...what the fit saw, for people...}}

N is non-embedding parameters, D training tokens, C training FLOPs under ``flops_convention``
(scaling/core/flops.py). ``batch_tokens``, where present, is a rule for tokens per optimizer step that a planner may
apply; the trainer itself only applies ``lr``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from scaling.core.forms import power_product

VARIABLES = ("N", "D", "C")


@dataclass(frozen=True)
class PowerRule:
    """coef · N^a · D^b · C^c (exponents missing from ``exponents`` are 0)."""

    coef: float
    exponents: dict = field(default_factory=dict)
    flops_convention: str = "chinchilla"
    source: str = ""

    def __post_init__(self):
        from scaling.core.records import FLOP_CONVENTIONS

        if not (math.isfinite(self.coef) and self.coef > 0):
            raise ValueError(f"rule coef={self.coef!r}: must be a positive finite number")
        bad = sorted(set(self.exponents) - set(VARIABLES))
        if bad:
            raise ValueError(f"rule exponents {bad}: the variables allowed are {VARIABLES}")
        if self.flops_convention not in FLOP_CONVENTIONS:
            raise ValueError(f"rule flops_convention={self.flops_convention!r}: must be one of {FLOP_CONVENTIONS}")

    def __call__(self, N: float | None, D: float | None = None, C: float | None = None) -> float:
        terms = []
        for name, x in (("N", N), ("D", D), ("C", C)):
            a = float(self.exponents.get(name, 0.0))
            if a:
                if x is None or not x > 0:
                    raise ValueError(f"rule {self.source or 'lr'}: needs {name} > 0, got {x!r}")
                terms.append((float(x), a))
        return float(power_product(self.coef, terms))

    def to_dict(self) -> dict:
        return {
            "coef": self.coef,
            "exponents": dict(self.exponents),
            "flops_convention": self.flops_convention,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "PowerRule":
        return cls(
            float(d["coef"]),
            {k: float(v) for k, v in dict(d.get("exponents", {})).items()},
            str(d.get("flops_convention", "chinchilla")),
            str(d.get("source", "")),
        )


@dataclass(frozen=True)
class Rules:
    lr: PowerRule
    batch_tokens: PowerRule | None = None


# DeepSeek LLM 2024 (arXiv:2401.02954) §3.1, Eq. 1: η_opt = 0.3118·C^−0.125, B_opt = 0.2920·C^0.3271 (tokens),
# with C = M·D and M the non-embedding FLOPs per token (their §3.2; our convention `deepseek_m`).
PUBLISHED = {
    "deepseek": Rules(
        PowerRule(0.3118, {"C": -0.125}, "deepseek_m", "DeepSeek LLM 2024 Eq. 1: lr = 0.3118 C^-0.125"),
        PowerRule(0.2920, {"C": 0.3271}, "deepseek_m", "DeepSeek LLM 2024 Eq. 1: B = 0.2920 C^0.3271 tokens"),
    ),
    # This harness's own fit, the CPU presets' default (sweeps/isoflop_cpu.yaml): `python -m scaling.train -cd sweeps
    # -cn lr_cpu` (sizes 6.3k, 14k, 25k, 56k x LRs 2e-3..0.128, WSD branches at 0.5M and 1M tokens; Shakespeare +
    # Folio BPE-512, seq 128, 2,048 tokens per step) then `python -m analysis.lr results/lr_cpu --vars N` (the joint
    # fit, 38 runs): lr = 0.3293 N^-0.377, exponent +-0.31 (1 s.e.), i.e. 0.0079 at N = 2e4, 1.75x the generic rule's
    # 0.0045 there; the exponent itself is not resolved at these sizes (loss is within 0.03 nats of its best over
    # 0.008-0.016 for every size measured).
    # Its batch rule, measured at N = 25k (and 6.3k, 14k at 1.25e11) with tokens per step 256..2048 (2026-11, 2-core
    # EPYC, seq 128): the best was 256 at 1.25e11 (by 0.02-0.04 nats over 512; 1024 was 0.2 worse for 14k), 256-512
    # at 5e11 (1024: +0.04, 2048: +0.18) and 1024 at 1e12 (512: +0.02, 256: +0.06). DeepSeek's B_opt gives 1024-2048
    # there: these tiny models are limited by their number of steps. B = 900 (C/1e12)^0.6 tokens.
    "harness_cpu": Rules(
        PowerRule(
            0.3293,
            {"N": -0.377},
            "chinchilla",
            "harness LR sweep lr_cpu, joint fit: lr = 0.3293 N^-0.377 (exponent +-0.31)",
        ),
        PowerRule(
            900.0 / 1e12**0.6,
            {"C": 0.6},
            "chinchilla",
            "harness batch measurements 1.25e11..1e12 FLOPs: B = 900 (C/1e12)^0.6 tokens",
        ),
    ),
}


def load(spec: str) -> Rules:
    """A published rule by name (``PUBLISHED``) or a rule file; errors name ``train.lr_rule`` and what is allowed."""
    if spec in PUBLISHED:
        return PUBLISHED[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(
            f"train.lr_rule={spec!r}: must be one of {sorted(PUBLISHED)} or an existing rule file "
            f"(written by `python -m analysis.lr <sweep_dir>`)"
        )
    try:
        d = json.loads(path.read_text())
        batch = d.get("batch_tokens")
        return Rules(PowerRule.from_dict(d["lr"]), PowerRule.from_dict(batch) if batch else None)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(
            f"train.lr_rule={spec!r}: not a readable rule file ({type(e).__name__}: {e}); expected "
            f'{{"lr": {{"coef": ..., "exponents": {{"N": ...}}}}}}'
        ) from None


def identity(spec: str) -> dict:
    """What a rule contributes to a run's identity: its content, so a refitted file is a different run."""
    r = load(spec)
    return {"lr": r.lr.to_dict()}
