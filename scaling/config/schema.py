"""Typed configs for one run, their validation, and the plan a config implies (shape, tokens, steps, FLOPs).

Hydra composes scaling/conf/config.yaml over these dataclasses (registered as ``base_config``), so a misspelt key
or a wrongly typed value is rejected by Hydra itself; ``validate`` then checks ranges and combinations and names the
field, the value and what is allowed. ``plan`` is the one place where a (size, budget) turns into a shape, a token
count and a number of optimizer steps: the trainer and the dry run both call it, before any compute is spent.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, List, Optional

from scaling.data.cache import check_source
from scaling.data.sources import parse_chain_source
from scaling.core.family import NAMED_SIZES, Shape, parse_size, shape_for
from scaling.core.flops import flops_per_token
from scaling.core.records import FLOP_CONVENTIONS
from scaling.config import lr_rule
from scaling.core.schedule import COOLDOWN_SHAPES, SCHEDULES, Schedule


# train.compile's values and what each asks for (None: the machine's default); true/false keep configs written when the
# field was a bool working (Hydra hands a bool to this string field as 'True'/'False')
COMPILE_CHOICES = {"auto": None, "true": True, "on": True, "false": False, "off": False}


class ConfigError(ValueError):
    """A config value out of range; the message names the field, the value and what is allowed."""


@dataclass
class ModelConfig:
    size: str = "tiny"  # named size (scaling/core/family.py NAMED_SIZES) or target non-embedding params: 3e5, 300k, 0.3M
    seq_len: int = 128
    aspect: float = 32.0  # d_model / n_layer
    head_size: int = 16
    mlp_ratio: int = 4
    min_layers: int = 2
    tie_embeddings: bool = True


@dataclass
class DataConfig:
    source: str = "shakespeare"  # shakespeare | markov | text:<glob> | hf:<name>[:<config>]
    vocab_size: int = 512
    folio: bool = False
    val_fraction: float = 0.05
    cache_dir: Optional[str] = None  # default $SCALING_DATA_DIR or .cache/data


@dataclass
class TrainConfig:
    budget: Optional[float] = None  # training FLOPs C; tokens = C / FLOPs-per-token under flops_convention
    tokens: Optional[float] = None  # training tokens D (give budget or tokens, not both)
    flops_convention: str = "chinchilla"
    batch_size: int = 16  # sequences per optimizer step
    micro_batch_size: Optional[int] = None  # sequences per forward pass; default batch_size (no accumulation)
    # tokens per optimizer step; when set it replaces batch_size (= tokens_per_step / model.seq_len sequences), and
    # micro_batch_size then sets the gradient accumulation. The planner sets it per budget from a rule (scaling/sweep/plan.py)
    tokens_per_step: Optional[int] = None
    lr: Optional[float] = None  # peak LR; None: per-size rule lr_ref * (N / lr_ref_params) ** -lr_exponent
    lr_ref: float = 3e-3
    lr_ref_params: float = 1e5
    lr_exponent: float = 0.25
    # a rule for the peak LR instead of lr_ref/lr_exponent: a file `python -m analysis.lr <sweep>` wrote, or a published
    # rule by name (`deepseek`: DeepSeek LLM 2024, lr = 0.3118 C^-0.125); see scaling/config/lr_rule.py. train.lr wins over it
    lr_rule: Optional[str] = None
    schedule: str = "cosine"  # cosine | wsd | constant
    warmup_frac: float = 0.05
    final_lr_frac: float = 0.1
    cooldown_frac: float = 0.2  # WSD: fraction of steps in the final decay
    cooldown_shape: str = "linear"  # WSD: linear | 1-sqrt (Hägele et al. 2024)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # 0 disables
    eval_interval: int = 0  # steps between validation evaluations; 0: about 16 per run
    eval_tokens: int = 16384  # validation tokens per intermediate evaluation (a fixed, evenly spread subset)
    final_eval_tokens: int = 0  # validation tokens for the final loss; 0: the whole validation split
    checkpoint_seconds: float = 60.0  # write a resumable checkpoint at least this often
    halt_after_step: Optional[int] = None  # stop (checkpointed, status running) after this step: for resume tests
    diverge_factor: float = 1.5  # diverged if train loss exceeds this x ln(vocab) (a uniform guess) after warmup
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = "auto"  # auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    # torch.compile of the forward pass: auto (scaling/launch/machine.py compile_default: on CUDA; on CPU only for long bf16
    # runs from 1M parameters, where it was measured to pay) | true | false (on/off too). Recorded as it resolved
    compile: str = "auto"
    threads: int = 0  # torch CPU threads; 0: the machine's default for the model size (scaling/launch/machine.py)
    # data parallelism (scaling/launch/distributed.py): auto joins the ranks torchrun or SLURM tasks started, on requires
    # them, off trains alone in each process
    distributed: str = "auto"


@dataclass
class LogConfig:
    progress: bool = True
    wandb: bool = False
    wandb_project: str = "scaling-harness"
    wandb_mode: str = "offline"  # offline | online | disabled
    wandb_entity: Optional[str] = None


@dataclass
class BranchConfig:
    """Cooldown branches (WSD-S, Hägele et al. 2024): one constant-LR trunk per run, a short cooldown branched off it
    for each token count (or budget) listed; each branch end is a run directory of its own. See scaling/sweep/branches.py."""

    tokens: List[float] = field(default_factory=list)  # each branch's total training tokens D (trunk + cooldown)
    budgets: List[float] = field(default_factory=list)  # or each branch's FLOPs C under train.flops_convention
    cooldown_frac: float = 0.2  # cooldown length as a fraction of the tokens trained at the branch point
    cooldown_shape: str = "linear"  # linear | 1-sqrt


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    branch: BranchConfig = field(default_factory=BranchConfig)  # empty: an ordinary run
    sweep: str = "default"  # results/<sweep>/<run_id>/
    results_dir: str = "results"
    dry_run: bool = False  # print the plan of this run (or of every run of a sweep) and train nothing
    # A sweep grid point that pairs values Hydra's sweeper would otherwise cross, e.g. an IsoFLOP preset giving each
    # budget its own sizes: point={budget:1e12,size:2e4}. Keys: budget, size, tokens (see apply_point).
    point: Dict[str, Any] = field(default_factory=dict)


_POINT_KEYS = {"budget": ("train", "budget"), "size": ("model", "size"), "tokens": ("train", "tokens"),
               "lr": ("train", "lr"), "tokens_per_step": ("train", "tokens_per_step")}


def apply_tokens_per_step(cfg: Config) -> Config:
    """``train.tokens_per_step`` set: turn it into ``train.batch_size`` sequences (in place), or name what is wrong."""
    t, seq = cfg.train, cfg.model.seq_len
    if t.tokens_per_step is not None:
        _check(t.tokens_per_step >= seq and t.tokens_per_step % seq == 0, "train.tokens_per_step",
               t.tokens_per_step, f"a positive multiple of model.seq_len={seq}")
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
            raise ConfigError(f"point.{key}={value!r}: must be " + ("a size (a name or a parameter count)"
                                                                     if key == "size" else "a number or null"))
        if key == "size":
            value = str(value)
        elif key == "tokens_per_step" and value is not None:
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


def _check(cond: bool, field_name: str, value: Any, allowed: str) -> None:
    if not cond:
        raise ConfigError(f"{field_name}={value!r}: must be {allowed}")


# the largest token count a run may plan: its counters are int64 in metrics.parquet, and 1e18 tokens is already
# about a hundred thousand times the largest published training run
MAX_TOKENS = 1e18
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


def _finite_fields(cfg: Config) -> None:
    """Every float field must be a finite number: inf and nan pass many range checks (inf > 0) and then misbehave."""
    for group in ("model", "data", "train"):
        for f in fields(getattr(cfg, group)):
            v = getattr(getattr(cfg, group), f.name)
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{group}.{f.name}={v!r}: must be a finite number")


def validate(cfg: Config) -> None:
    m, d, t, lg = cfg.model, cfg.data, cfg.train, cfg.log
    if t.budget is not None and t.tokens is None:  # keep the budget's own wording for a non-finite budget
        _check(math.isfinite(t.budget) and t.budget > 0, "train.budget", t.budget, "a positive number of FLOPs")
    if t.tokens is not None and t.budget is None:
        _check(math.isfinite(t.tokens) and t.tokens > 0, "train.tokens", t.tokens, "a positive number of tokens")
    _finite_fields(cfg)
    try:
        parse_size(m.size)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _check(8 <= m.seq_len <= 65536, "model.seq_len", m.seq_len, "an integer in [8, 65536]")
    _check(0 < m.aspect <= 1024, "model.aspect", m.aspect, "in (0, 1024]")
    _check(1 <= m.head_size <= 1024, "model.head_size", m.head_size, "an integer in [1, 1024]")
    _check(1 <= m.mlp_ratio <= 64, "model.mlp_ratio", m.mlp_ratio, "an integer in [1, 64]")
    _check(1 <= m.min_layers <= 1024, "model.min_layers", m.min_layers, "an integer in [1, 1024]")
    kind = d.source.split(":", 1)[0]
    _check(kind in ("shakespeare", "markov", "chain", "text", "hf"), "data.source", d.source,
           "'shakespeare', 'markov', 'chain[:<dials>]', 'text:<glob>' or 'hf:<name>[:<config>]'")
    # markov: V^2 contexts must fit in memory; chain: V^order contexts, checked with its dials in scaling/data/sources.py
    lo, hi = (2, 1000) if kind == "markov" else (2, 4096) if kind == "chain" else (257, 65535)
    _check(lo <= d.vocab_size <= hi, "data.vocab_size", d.vocab_size, f"an integer in [{lo}, {hi}] for this source")
    _check(0 < d.val_fraction <= 0.5, "data.val_fraction", d.val_fraction, "in (0, 0.5]")
    _check(d.cache_dir is None or "\0" not in d.cache_dir, "data.cache_dir", d.cache_dir, "a path (or null)")
    try:
        check_source(d.source, d.val_fraction)
        if kind == "chain":  # its dials (order, support, tokens, ...) are checked before any run starts
            parse_chain_source(d.source, d.vocab_size)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    _check((t.budget is None) != (t.tokens is None), "train.budget/train.tokens", (t.budget, t.tokens),
           "exactly one of them set (a FLOP budget C or a token count D)")
    if t.budget is not None:
        _check(math.isfinite(t.budget) and t.budget > 0, "train.budget", t.budget, "a positive number of FLOPs")
    if t.tokens is not None:
        _check(math.isfinite(t.tokens) and t.tokens > 0, "train.tokens", t.tokens, "a positive number of tokens")
    _check(t.flops_convention in FLOP_CONVENTIONS, "train.flops_convention", t.flops_convention,
           f"one of {FLOP_CONVENTIONS}")
    _check(t.batch_size >= 1, "train.batch_size", t.batch_size, "an integer >= 1")
    if t.micro_batch_size is not None:
        _check(1 <= t.micro_batch_size <= t.batch_size and t.batch_size % t.micro_batch_size == 0,
               "train.micro_batch_size", t.micro_batch_size, f"a divisor of train.batch_size={t.batch_size}")
    if t.lr is not None:
        _check(0 < t.lr <= 1, "train.lr", t.lr, "in (0, 1]")
    _check(0 < t.lr_ref <= 1, "train.lr_ref", t.lr_ref, "in (0, 1]")
    _check(t.lr_ref_params > 0, "train.lr_ref_params", t.lr_ref_params, "> 0")
    _check(-2 <= t.lr_exponent <= 2, "train.lr_exponent", t.lr_exponent, "in [-2, 2]")
    _check(t.schedule in SCHEDULES, "train.schedule", t.schedule, f"one of {SCHEDULES}")
    _check(0 <= t.warmup_frac < 1, "train.warmup_frac", t.warmup_frac, "in [0, 1)")
    _check(0 <= t.final_lr_frac <= 1, "train.final_lr_frac", t.final_lr_frac, "in [0, 1]")
    _check(0 < t.cooldown_frac <= 1, "train.cooldown_frac", t.cooldown_frac, "in (0, 1]")
    _check(t.cooldown_shape in COOLDOWN_SHAPES, "train.cooldown_shape", t.cooldown_shape, f"one of {COOLDOWN_SHAPES}")
    if t.lr_rule is not None:
        try:
            lr_rule.load(t.lr_rule)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    b = cfg.branch
    _check(not (b.tokens and b.budgets), "branch.tokens/branch.budgets", (list(b.tokens), list(b.budgets)),
           "at most one of them set")
    for name, xs in (("branch.tokens", b.tokens), ("branch.budgets", b.budgets)):
        for x in xs:
            _check(isinstance(x, (int, float)) and math.isfinite(x) and x > 0, name, list(xs),
                   "a list of positive numbers")
    _check(0 < b.cooldown_frac <= 1, "branch.cooldown_frac", b.cooldown_frac, "in (0, 1]")
    _check(b.cooldown_shape in COOLDOWN_SHAPES, "branch.cooldown_shape", b.cooldown_shape, f"one of {COOLDOWN_SHAPES}")
    _check(0 <= t.weight_decay <= 10, "train.weight_decay", t.weight_decay, "in [0, 10]")
    _check(0 <= t.beta1 < 1, "train.beta1", t.beta1, "in [0, 1)")
    _check(0 <= t.beta2 < 1, "train.beta2", t.beta2, "in [0, 1)")
    _check(t.grad_clip >= 0, "train.grad_clip", t.grad_clip, ">= 0 (0 disables clipping)")
    _check(t.eval_interval >= 0, "train.eval_interval", t.eval_interval, ">= 0 (0: automatic)")
    _check(t.eval_tokens >= m.seq_len, "train.eval_tokens", t.eval_tokens, f">= model.seq_len={m.seq_len}")
    _check(t.final_eval_tokens == 0 or t.final_eval_tokens >= m.seq_len, "train.final_eval_tokens",
           t.final_eval_tokens, f"0 (the whole validation split) or >= model.seq_len={m.seq_len}")
    _check(t.checkpoint_seconds > 0, "train.checkpoint_seconds", t.checkpoint_seconds, "> 0")
    _check(t.diverge_factor > 1, "train.diverge_factor", t.diverge_factor, "> 1")
    _check(0 <= t.seed < 2**63, "train.seed", t.seed, "an integer >= 0 (and < 2**63)")
    _check(bool(_DEVICE.fullmatch(t.device)), "train.device", t.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
    _check(t.dtype in ("auto", "fp32", "bf16"), "train.dtype", t.dtype, "'auto', 'fp32' or 'bf16'")
    _check(str(t.compile).lower() in COMPILE_CHOICES, "train.compile", t.compile,
           "'auto' (the machine's default for the device, dtype and size), 'true' or 'false' ('on' and 'off' too)")
    _check(0 <= t.threads <= 4096, "train.threads", t.threads, "an integer in [0, 4096] (0: the machine's default for the model size)")
    _check(t.distributed in ("auto", "off", "on"), "train.distributed", t.distributed, "'auto', 'off' or 'on'")
    _check(lg.wandb_mode in ("offline", "online", "disabled"), "log.wandb_mode", lg.wandb_mode,
           "'offline', 'online' or 'disabled'")
    _check(not lg.wandb or bool(lg.wandb_project.strip()), "log.wandb_project", lg.wandb_project,
           "a non-empty project name when log.wandb=true")
    _check(bool(cfg.sweep) and "/" not in cfg.sweep and "\\" not in cfg.sweep and "\0" not in cfg.sweep
           and not cfg.sweep.startswith((".", "_")), "sweep", cfg.sweep,
           "a non-empty folder name without '/', '\\' or NUL, not starting with '.' or '_'")
    _check(bool(cfg.results_dir.strip()) and "\0" not in cfg.results_dir, "results_dir", cfg.results_dir,
           "a non-empty path")
    p = plan(cfg)
    _check(0 < p.lr <= 1, "train.lr_ref/train.lr_ref_params/train.lr_exponent",
           (t.lr_ref, t.lr_ref_params, t.lr_exponent),
           f"a rule whose peak learning rate for N={p.shape.params_non_embedding():,} is in (0, 1], not {p.lr:.3g}")
    if t.halt_after_step is not None:
        _check(1 <= t.halt_after_step <= p.steps, "train.halt_after_step", t.halt_after_step,
               f"in [1, steps={p.steps}]")


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
            "n_layer": s.n_layer, "d_model": s.d_model, "n_head": s.n_head,
            "N": s.params_non_embedding(), "N_total": s.params_total(),
            "tokens": self.tokens, "steps": self.steps, "tokens_per_param": self.tokens / s.params_non_embedding(),
            "lr": self.lr, **{f"C_{k}": v for k, v in self.flops.items()},
        }


def peak_lr(t: TrainConfig, n_params: int, tokens: float | None = None,
            flops_per_token: dict[str, float] | None = None) -> float:
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


def plan(cfg: Config) -> Plan:
    m, t = cfg.model, cfg.train
    shape = shape_for(m.size, vocab_size=cfg.data.vocab_size, seq_len=m.seq_len, aspect=m.aspect,
                      head_size=m.head_size, mlp_ratio=m.mlp_ratio, tie_embeddings=m.tie_embeddings,
                      min_layers=m.min_layers)
    fpt = flops_per_token(shape)
    tokens_per_step = t.batch_size * m.seq_len
    if t.budget is not None:
        want_tokens = t.budget / fpt[t.flops_convention]
        what = (f"train.budget={t.budget:g} gives {want_tokens:,.0f}" if want_tokens < 1e15 else
                f"train.budget={t.budget:g} gives {want_tokens:.3g}")
        what += (f" tokens at {fpt[t.flops_convention]:,.0f} "
                f"{t.flops_convention} FLOPs/token for N={shape.params_non_embedding():,}")
    else:
        want_tokens = float(t.tokens)
        what = f"train.tokens={t.tokens:g}"
    if want_tokens > MAX_TOKENS:
        raise ConfigError(f"{what}: must plan at most {MAX_TOKENS:.0e} tokens (the run's int64 counters)")
    steps = round(want_tokens / tokens_per_step)
    if want_tokens < tokens_per_step:
        raise ConfigError(f"{what}, less than one optimizer step of train.batch_size*model.seq_len="
                          f"{tokens_per_step:,} tokens: must be at least one batch")
    warmup = min(steps - 1, round(t.warmup_frac * steps)) if steps > 1 else 0
    cooldown = max(1, round(t.cooldown_frac * (steps - warmup))) if t.schedule == "wsd" else 0
    lr = peak_lr(t, shape.params_non_embedding(), steps * tokens_per_step, fpt)
    sched = Schedule(t.schedule, lr, steps, warmup, t.final_lr_frac, cooldown, t.cooldown_shape)
    return Plan(shape, tokens_per_step, steps, steps * tokens_per_step, fpt, sched.peak_lr, sched)


# fields that do not change what a run computes, so they are left out of its identity
_NOT_IDENTITY = {
    "train": {"device", "threads", "compile", "checkpoint_seconds", "halt_after_step", "eval_interval"},
    "data": {"cache_dir"},
}
_NOT_IDENTITY["train"].add("distributed")  # one run, however many processes share its batch


# fields added after run ids were first published: left out of the identity while at these defaults, so the runs
# of an older sweep keep their ids (and are skipped or resumed, not retrained)
_ADDED_LATER = {"train": {"cooldown_shape": "linear", "lr_rule": None}}


def run_id(cfg: Config) -> str:
    """A readable, stable id derived from the config: relaunching the same config finds the same folder."""
    d = asdict(cfg)
    ident = {k: {kk: vv for kk, vv in d[k].items() if kk not in _NOT_IDENTITY.get(k, set())
                 and not (kk in _ADDED_LATER.get(k, {}) and vv == _ADDED_LATER[k][kk])}
             for k in ("model", "data", "train")}
    if cfg.train.lr_rule is not None:  # the rule's content, not its path: a refitted file is another run
        ident["train"]["lr_rule"] = lr_rule.identity(cfg.train.lr_rule)
    ident["model"]["size"] = parse_size(cfg.model.size)  # 20k, 2e4 and 20000.0 are one model
    for k in ("budget", "tokens"):
        if ident["train"][k] is not None:
            ident["train"][k] = float(ident["train"][k])
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:8]
    t = cfg.train
    amount = f"C{_short(t.budget)}" if t.budget is not None else f"D{_short(t.tokens)}"
    size = cfg.model.size if cfg.model.size in NAMED_SIZES else _short(parse_size(cfg.model.size))
    return f"N{size}_{amount}_{digest}"


def _short(x: float) -> str:
    """3e+12 -> 3e12, 250000 -> 2.5e5: compact and filesystem-safe."""
    mant, _, exp = f"{x:.3g}".partition("e")
    if not exp:
        mant, _, exp = f"{x:.2e}".partition("e")
        mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp)}"
