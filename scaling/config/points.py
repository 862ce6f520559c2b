"""A sweep point applied to a config: ``point={budget:..,size:..}`` pairs values Hydra's sweeper would cross, and
``train.tokens_per_step`` turns into ``train.batch_size`` sequences. Both run before validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scaling.config.errors import ConfigError, require

if TYPE_CHECKING:
    from scaling.config.schema import Config

_POINT_KEYS = {
    "budget": ("train", "budget"),
    "size": ("model", "size"),
    "tokens": ("train", "tokens"),
    "lr": ("train", "lr"),
    "tokens_per_step": ("train", "tokens_per_step"),
    "seed": ("train", "seed"),  # another seed of a point: the adaptive sweep's repeats (scaling/sweep/adaptive.py)
}


def apply_tokens_per_step(cfg: Config) -> Config:
    """``train.tokens_per_step`` set: turn it into ``train.batch_size`` sequences (in place), or name what is wrong."""
    t, seq = cfg.train, cfg.model.seq_len
    if t.tokens_per_step is not None:
        require(
            t.tokens_per_step >= seq and t.tokens_per_step % seq == 0,
            "train.tokens_per_step",
            t.tokens_per_step,
            f"a positive multiple of model.seq_len={seq}",
        )
        t.batch_size = t.tokens_per_step // seq
    return cfg


def apply_point(cfg: Config) -> Config:
    """Copy ``cfg.point``'s values onto the fields they name (in place) and clear it; unknown keys are an error."""
    if not cfg.point:
        return apply_tokens_per_step(cfg)
    for key, value in dict(cfg.point).items():
        if key not in _POINT_KEYS:
            raise ConfigError(f"point.{key}={value!r}: must be one of the keys {sorted(_POINT_KEYS)}")
        group, name = _POINT_KEYS[key]
        if isinstance(value, bool) or (value is None and key == "size"):
            raise ConfigError(
                f"point.{key}={value!r}: must be "
                + ("a size (a name or a parameter count)" if key == "size" else "a number or null")
            )
        if key == "size":
            value = str(value)
        elif key in ("tokens_per_step", "seed") and value is not None:
            value = int(value)
        elif value is not None:
            try:
                value = float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"point.{key}={value!r}: must be a number (e.g. 1e12) or null") from None
        setattr(getattr(cfg, group), name, value)
    if "budget" in cfg.point and "tokens" not in cfg.point:
        cfg.train.tokens = None
    if "tokens" in cfg.point and "budget" not in cfg.point:
        cfg.train.budget = None
    cfg.point = {}
    return apply_tokens_per_step(cfg)
