"""Which sizes (with their batch and learning rate) each budget of a sweep trains: a budget's sizes are centred on a
prior for the compute-optimal size N_opt(C) (scaling/sweep/priors.py), log-spaced over ``spread`` either side, as in
Hoffmann et al. 2022 §3.2, among the distinct shapes the family rule gives; the tokens per step and the peak LR follow
the named rules per budget.
"""

from __future__ import annotations

import math
from typing import Any, Optional

from scaling.config.run_plan import model_shape
from scaling.config.schema import Config, ConfigError, apply_point
from scaling.config.schema import plan as plan_run
from scaling.data.corpus import vocab_size_of
from scaling.sweep.planned import copy_config
from scaling.sweep.priors import Prior


def tokens_per_step_for(budget: float, rule: str, seq_len: int) -> int:
    """Tokens per optimizer step: a constant (an integer), or a named rule's B(C) (scaling/config/lr_rule.py, e.g.
    'deepseek': B_opt = 0.2920 C^0.3271 tokens, DeepSeek LLM 2024 §3.1; 'harness_cpu': B = 900 (C/1e12)^0.6, measured
    at this harness's CPU sizes), rounded to a power-of-two number of sequences (at least one)."""
    from scaling.config.lr_rule import PUBLISHED

    named = {k: r.batch_tokens for k, r in PUBLISHED.items() if r.batch_tokens is not None}
    if rule in named:
        tokens = named[rule](N=None, C=budget)
        return seq_len * 2 ** max(0, round(math.log2(tokens / seq_len)))
    try:
        tokens = int(float(rule))
    except ValueError:
        raise ConfigError(
            f"--batch-rule={rule!r}: must be one of {sorted(named)} or a number of tokens per step"
        ) from None
    if tokens < seq_len or tokens % seq_len:
        raise ConfigError(f"--batch-rule={rule!r}: tokens per step must be a positive multiple of seq_len={seq_len}")
    return tokens


def lr_for(budget: float, rule: str) -> Optional[float]:
    """Peak LR: None keeps the config's per-size rule; 'deepseek': 0.3118 C^-0.125 (DeepSeek LLM 2024 §3.1); or a
    number."""
    if rule == "config":
        return None
    if rule == "deepseek":
        return 0.3118 * budget**-0.125
    try:
        lr = float(rule)
    except ValueError:
        raise ConfigError(f"--lr-rule={rule!r}: must be 'config', 'deepseek' or a learning rate in (0, 1]") from None
    if not 0 < lr <= 1:
        raise ConfigError(f"--lr-rule={rule!r}: a learning rate must be in (0, 1]")
    return lr


def family_sizes(cfg: Config, lo: float = 1e3, hi: float = 1e8) -> list[tuple[float, int]]:
    """Every distinct shape the family rule gives between lo and hi: (a target size that yields it, its N)."""
    m = cfg.model
    found: dict[tuple[int, int], list[tuple[float, int]]] = {}
    vocab = vocab_size_of(cfg.data)  # a tokenizer file's or the shards' where given
    k = 0
    while lo * 1.01**k <= hi:
        target = float(f"{lo * 1.01**k:.3g}")
        s = model_shape(m, target, vocab)
        found.setdefault((s.n_layer, s.d_model), []).append((target, s.params_non_embedding()))
        k += 1
    # the middle target of each shape's range: far from the rounding edges
    return sorted((v[len(v) // 2][0], v[0][1]) for v in found.values())


def sizes_around(n_opt: float, catalogue: list[tuple[float, int]], points: int, spread: float) -> list[float]:
    """``points`` distinct family sizes log-spaced from n_opt/spread to n_opt*spread (targets, smallest first)."""
    logs = [math.log(n) for _, n in catalogue]
    picked: list[int] = []
    for j in range(points):
        want = math.log(n_opt) + math.log(spread) * (2 * j / (points - 1) - 1 if points > 1 else 0)
        i = min(range(len(logs)), key=lambda i: abs(logs[i] - want))
        if picked and i <= picked[-1]:
            i = picked[-1] + 1
        if i >= len(catalogue):
            break
        picked.append(i)
    return [catalogue[i][0] for i in picked]


def fresh_catalogue(
    base: Config,
    budget: float,
    catalogue: list[tuple[float, int]],
    tokens_per_step: Optional[int],
    n_train: int,
    max_epochs: float,
) -> list[tuple[float, int]]:
    """The family sizes that train on at most ``max_epochs`` passes over ``n_train`` tokens at ``budget`` (a smaller
    model gets more tokens, so these are every size from the first that qualifies up)."""
    for k, (target, _) in enumerate(catalogue):
        cfg = copy_config(base)
        cfg.point = {"budget": budget, "size": target}
        if tokens_per_step is not None:
            cfg.point["tokens_per_step"] = tokens_per_step
        apply_point(cfg)
        if plan_run(cfg).tokens <= max_epochs * n_train:
            return catalogue[k:]
    return []


def isoflop_points(
    budgets: list[float],
    base: Config,
    prior: Prior,
    *,
    points: int,
    spread: float,
    batch_rule: Optional[str],
    lr_rule: str,
    n_train: Optional[int] = None,
    max_epochs: Optional[float] = None,
) -> list[dict]:
    """Each budget's sizes around the prior's N_opt, largest budget first (its long runs start at once). With
    ``n_train`` and ``max_epochs``, sizes that would read the corpus more often are not sampled: the window moves up
    to the smallest size that does not, as long as the prior's N_opt stays at least spread^(1/4) above it (about a
    quarter of the window; a sequential sweep adds smaller sizes if the minimum turns out to be at that edge, up to 2
    epochs, and says so); otherwise the budget keeps its centred sizes, and the plan shows their epochs."""
    catalogue = family_sizes(base)
    out = []
    for c in sorted(budgets, reverse=True):
        tps = tokens_per_step_for(c, batch_rule, base.model.seq_len) if batch_rule is not None else None
        sizes_from = catalogue
        if n_train is not None and max_epochs is not None:
            fresh = fresh_catalogue(base, c, catalogue, tps, n_train, max_epochs)
            if fresh and fresh[0][1] > catalogue[0][1] and prior.n_opt(c) >= fresh[0][1] * spread**0.25:
                sizes_from = fresh
        for size in sizes_around(prior.n_opt(c), sizes_from, points, spread):
            pt: dict[str, Any] = {"budget": c, "size": size}
            if tps is not None:
                pt["tokens_per_step"] = tps
            lr = lr_for(c, lr_rule)
            if lr is not None:
                pt["lr"] = lr
            out.append(pt)
    return out
