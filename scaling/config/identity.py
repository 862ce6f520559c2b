"""A run's id: readable, stable, and derived from what the run computes, so relaunching a config finds its folder.
Changing what goes into it retrains every existing results folder: fields added later stay out at their defaults."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from scaling.config import lr_rule
from scaling.core.family import NAMED_SIZES, parse_size

if TYPE_CHECKING:
    from scaling.config.schema import Config


# fields that do not change what a run computes, so they are left out of its identity
_NOT_IDENTITY = {
    # distributed: one run, however many processes share its batch; early stop: where a run may stop, not what it
    # computes up to there
    "train": {
        "device",
        "threads",
        "compile",
        "checkpoint_seconds",
        "halt_after_step",
        "eval_interval",
        "distributed",
        "early_stop_frac",
        "early_stop_margin",
    },
    "data": {"cache_dir"},
}


# fields added after run ids were first published: left out of the identity while at these defaults, so the runs
# of an older sweep keep their ids (and are skipped or resumed, not retrained)
_ADDED_LATER: dict[str, dict[str, Any]] = {
    "train": {"cooldown_shape": "linear", "lr_rule": None},
    "model": {"arch": "gpt", "ffn_multiple": 32},
    "data": {"tokenizer": None, "text_column": "text", "shard_dtype": "uint16", "val_shards": None, "mixture": []},
}


def run_id(cfg: Config) -> str:
    """A readable, stable id derived from the config: relaunching the same config finds the same folder."""
    d = asdict(cfg)
    ident = {
        k: {
            kk: vv
            for kk, vv in d[k].items()
            if kk not in _NOT_IDENTITY.get(k, set())
            and not (kk in _ADDED_LATER.get(k, {}) and vv == _ADDED_LATER[k][kk])
        }
        for k in ("model", "data", "train")
    }
    if cfg.data.tokenizer is not None:  # the tokenizer's content, not its path: another file is another run
        ident["data"]["tokenizer"] = tokenizer_identity(cfg.data.tokenizer)
    if cfg.train.lr_rule is not None:  # the rule's content, not its path: a refitted file is another run
        ident["train"]["lr_rule"] = lr_rule.identity(cfg.train.lr_rule)
    ident["model"]["size"] = parse_size(cfg.model.size)  # 20k, 2e4 and 20000.0 are one model
    for k in ("budget", "tokens"):
        if ident["train"][k] is not None:
            ident["train"][k] = float(ident["train"][k])
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:8]
    t = cfg.train
    if t.budget is not None:
        amount = f"C{_short(t.budget)}"
    else:
        assert t.tokens is not None  # TrainConfig.check: exactly one of budget, tokens
        amount = f"D{_short(t.tokens)}"
    size = cfg.model.size if cfg.model.size in NAMED_SIZES else _short(parse_size(cfg.model.size))
    return f"N{size}_{amount}_{digest}"


def tokenizer_identity(path: str) -> str:
    """sha256 of a tokenizer file's bytes (its path where it cannot be read: validation reports that)."""
    try:
        return hashlib.sha256(open(path, "rb").read()).hexdigest()
    except OSError:
        return path


def _short(x: float) -> str:
    """3e+12 -> 3e12, 250000 -> 2.5e5: compact and filesystem-safe."""
    mant, _, exp = f"{x:.3g}".partition("e")
    if not exp:
        mant, _, exp = f"{x:.2e}".partition("e")
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"
