"""Learning-rate rules as values: a power law lr = coef · N^a · D^b · C^c, from a rule file or a published law.

``train.lr_rule`` names one: a path to the JSON file ``python -m analysis.lr <sweep>`` writes (the fitted rule of an
LR sweep), or a published rule (``deepseek``). Torch-free, so the planner and the dry run can evaluate it.

The file (written by analysis/lr.py, read here; keep the two in step)::

    {"lr": {"coef": 0.012, "exponents": {"N": -0.31}, "flops_convention": "chinchilla", "source": "..."},
     "batch_tokens": {...same form, optional...}, "fit": {...what the fit saw, for people...}}

N is non-embedding parameters, D training tokens, C training FLOPs under ``flops_convention``
(scaling/flops.py). ``batch_tokens``, where present, is a rule for tokens per optimizer step that a planner may apply;
the trainer itself only applies ``lr``.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

VARIABLES = ("N", "D", "C")


@dataclass(frozen=True)
class PowerRule:
    """coef · N^a · D^b · C^c (exponents missing from ``exponents`` are 0)."""

    coef: float
    exponents: dict = field(default_factory=dict)
    flops_convention: str = "chinchilla"
    source: str = ""

    def __post_init__(self):
        from scaling.records import FLOP_CONVENTIONS

        if not (math.isfinite(self.coef) and self.coef > 0):
            raise ValueError(f"rule coef={self.coef!r}: must be a positive finite number")
        bad = sorted(set(self.exponents) - set(VARIABLES))
        if bad:
            raise ValueError(f"rule exponents {bad}: the variables allowed are {VARIABLES}")
        if self.flops_convention not in FLOP_CONVENTIONS:
            raise ValueError(f"rule flops_convention={self.flops_convention!r}: must be one of {FLOP_CONVENTIONS}")

    def __call__(self, N: float, D: float | None = None, C: float | None = None) -> float:
        value = self.coef
        for name, x in (("N", N), ("D", D), ("C", C)):
            a = float(self.exponents.get(name, 0.0))
            if a:
                if x is None or not x > 0:
                    raise ValueError(f"rule {self.source or 'lr'}: needs {name} > 0, got {x!r}")
                value *= float(x) ** a
        return float(value)

    def to_dict(self) -> dict:
        return {"coef": self.coef, "exponents": dict(self.exponents), "flops_convention": self.flops_convention,
                "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> "PowerRule":
        return cls(float(d["coef"]), {k: float(v) for k, v in dict(d.get("exponents", {})).items()},
                   str(d.get("flops_convention", "chinchilla")), str(d.get("source", "")))


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
}


def load(spec: str) -> Rules:
    """A published rule by name (``PUBLISHED``) or a rule file; errors name ``train.lr_rule`` and what is allowed."""
    if spec in PUBLISHED:
        return PUBLISHED[spec]
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"train.lr_rule={spec!r}: must be one of {sorted(PUBLISHED)} or an existing rule file "
                         f"(written by `python -m analysis.lr <sweep_dir>`)")
    try:
        d = json.loads(path.read_text())
        batch = d.get("batch_tokens")
        return Rules(PowerRule.from_dict(d["lr"]), PowerRule.from_dict(batch) if batch else None)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"train.lr_rule={spec!r}: not a readable rule file ({type(e).__name__}: {e}); expected "
                         f'{{"lr": {{"coef": ..., "exponents": {{"N": ...}}}}}}') from None


def identity(spec: str) -> dict:
    """What a rule contributes to a run's identity: its content, so a refitted file is a different run."""
    r = load(spec)
    return {"lr": r.lr.to_dict()}
