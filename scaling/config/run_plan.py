"""The plan of one run: the one place where a (size, budget or tokens) turns into a shape, a token count, a number of
optimizer steps, FLOPs under every convention, a peak learning rate and a schedule. The trainer and every dry run call
``plan``, before any compute is spent."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scaling.config import lr_rule
from scaling.config.errors import ConfigError
from scaling.core import archs
from scaling.core.family import Shape, shape_for
from scaling.core.flops import flops_per_token
from scaling.core.schedule import Schedule
from scaling.data.corpus import vocab_size_of

if TYPE_CHECKING:
    from scaling.config.schema import Config, TrainConfig

# the largest token count a run may plan: its counters are int64 in metrics.parquet, and 1e18 tokens is already
# about a hundred thousand times the largest published training run
MAX_TOKENS = 1e18


@dataclass(frozen=True)
class Plan:
    shape: Shape
    tokens_per_step: int
    steps: int
    tokens: int
    flops_per_token: dict[str, float]
    lr: float
    schedule: Schedule

    @property
    def flops(self) -> dict[str, float]:
        return {c: v * self.tokens for c, v in self.flops_per_token.items()}

    def row(self) -> dict[str, Any]:
        s = self.shape
        return {
            "n_layer": s.n_layer,
            "d_model": s.d_model,
            "n_head": s.n_head,
            "N": s.params_non_embedding(),
            "N_total": s.params_total(),
            "tokens": self.tokens,
            "steps": self.steps,
            "tokens_per_param": self.tokens / s.params_non_embedding(),
            "lr": self.lr,
            **{f"C_{k}": v for k, v in self.flops.items()},
        }


def peak_lr(
    t: TrainConfig, n_params: int, tokens: float | None = None, flops_per_token: dict[str, float] | None = None
) -> float:
    """The per-size learning-rate rule: smaller models tolerate larger rates (Kaplan et al. 2020 Appendix D.6).
    ``train.lr`` wins; then ``train.lr_rule`` (a fitted or published power law in N, D, C: scaling/config/lr_rule.py);
    then lr_ref * (N / lr_ref_params) ** -lr_exponent."""
    if t.lr is not None:
        return float(t.lr)
    if t.lr_rule is not None:
        rule = lr_rule.load(t.lr_rule).lr
        C = tokens * flops_per_token[rule.flops_convention] if tokens and flops_per_token else None
        try:
            return rule(n_params, tokens, C)
        except (OverflowError, ZeroDivisionError):  # a rule far outside its range: validate rejects the result
            return math.inf
    try:
        return float(t.lr_ref * (n_params / t.lr_ref_params) ** (-t.lr_exponent))
    except (OverflowError, ZeroDivisionError):  # a rule far outside its range: validate rejects the result
        return math.inf


def model_shape(m, size, vocab_size: int) -> Shape:
    """The shape of a model of ``size`` under the family rule of model section ``m`` (its sequence length, aspect,
    head size, MLP ratio, tied embeddings, minimum layers, architecture, FFN multiple) and ``vocab_size``."""
    return shape_for(
        size,
        vocab_size=vocab_size,
        seq_len=m.seq_len,
        aspect=m.aspect,
        head_size=m.head_size,
        mlp_ratio=m.mlp_ratio,
        tie_embeddings=m.tie_embeddings,
        min_layers=m.min_layers,
        arch=m.arch,
        ffn_multiple=m.ffn_multiple,
    )


def plan(cfg: Config) -> Plan:
    m, t = cfg.model, cfg.train
    if archs.is_user_arch(m.arch):  # a user's class: imported, checked and registered before its shape is asked for
        from scaling.model import registry

        try:
            registry.prepare(m.arch)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    shape = model_shape(m, m.size, vocab_size_of(cfg.data))  # a tokenizer file's or the shards' vocab where given
    if archs.is_user_arch(m.arch):  # its parameter count against its own modules, built on the meta device
        from scaling.model import registry

        try:
            registry.prepare(m.arch, shape)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    try:
        fpt = flops_per_token(shape)
    except ValueError as e:  # a user's class whose own FLOP counts are unusable: one line, before any compute
        raise ConfigError(str(e)) from None
    tokens_per_step = t.batch_size * m.seq_len
    if t.budget is not None:
        want_tokens = t.budget / fpt[t.flops_convention]
        what = (
            f"train.budget={t.budget:g} gives {want_tokens:,.0f}"
            if want_tokens < 1e15
            else f"train.budget={t.budget:g} gives {want_tokens:.3g}"
        )
        what += (
            f" tokens at {fpt[t.flops_convention]:,.0f} "
            f"{t.flops_convention} FLOPs/token for N={shape.params_non_embedding():,}"
        )
    else:
        assert t.tokens is not None  # TrainConfig.check: exactly one of budget, tokens
        want_tokens = float(t.tokens)
        what = f"train.tokens={t.tokens:g}"
    if want_tokens > MAX_TOKENS:
        raise ConfigError(f"{what}: must plan at most {MAX_TOKENS:.0e} tokens (the run's int64 counters)")
    steps = round(want_tokens / tokens_per_step)
    if want_tokens < tokens_per_step:
        raise ConfigError(
            f"{what}, less than one optimizer step of train.batch_size*model.seq_len="
            f"{tokens_per_step:,} tokens: must be at least one batch"
        )
    warmup = min(steps - 1, round(t.warmup_frac * steps)) if steps > 1 else 0
    cooldown = max(1, round(t.cooldown_frac * (steps - warmup))) if t.schedule == "wsd" else 0
    lr = peak_lr(t, shape.params_non_embedding(), steps * tokens_per_step, fpt)
    sched = Schedule(t.schedule, lr, steps, warmup, t.final_lr_frac, cooldown, t.cooldown_shape)
    return Plan(shape, tokens_per_step, steps, steps * tokens_per_step, fpt, sched.peak_lr, sched)
