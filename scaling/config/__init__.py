"""Typed configs of one run with their checks, the plan a config implies (shape, tokens, steps, FLOPs), its run id, and LR rules."""
from __future__ import annotations

from scaling.config.schema import (  # noqa: F401  (the public names, importable as scaling.config.X)
    COMPILE_CHOICES,
    BranchConfig,
    Config,
    ConfigError,
    DataConfig,
    LogConfig,
    ModelConfig,
    Plan,
    TrainConfig,
    apply_point,
    apply_tokens_per_step,
    peak_lr,
    plan,
    run_id,
    validate,
)
