"""Typed configs of one run with their checks, the plan a config implies (shape, tokens, steps, FLOPs), its run id,
and LR rules."""

from __future__ import annotations

from scaling.config.errors import ConfigError  # noqa: F401  (the public names, importable as scaling.config.X)
from scaling.config.identity import run_id  # noqa: F401
from scaling.config.points import apply_point, apply_tokens_per_step  # noqa: F401
from scaling.config.run_plan import Plan, peak_lr, plan  # noqa: F401
from scaling.config.schema import (  # noqa: F401
    COMPILE_CHOICES,
    BranchConfig,
    Config,
    DataConfig,
    LogConfig,
    ModelConfig,
    TrainConfig,
    validate,
)
