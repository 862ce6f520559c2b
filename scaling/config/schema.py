"""Typed configs of one run, each section with its checks beside its fields.

Hydra composes scaling/conf/config.yaml over these dataclasses (registered as ``base_config`` by ``register``), so a
misspelt key or a wrongly typed value is rejected by Hydra itself; each section's ``check`` then checks ranges and
choices and names the field, the value and what is allowed, and ``validate`` checks a whole config once. Choice fields
draw their allowed values from one tuple each (``SCHEDULES``, ``DTYPES``, ...), which the check and the help both use.
The plan of a run is scaling/config/run_plan.py, its id scaling/config/identity.py, a sweep point
scaling/config/points.py; their names stay importable from here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

from scaling.config import lr_rule
from scaling.config.errors import ConfigError, one_of, require
from scaling.config.identity import run_id  # noqa: F401  (importable from here, as before the split)
from scaling.config.points import apply_point, apply_tokens_per_step  # noqa: F401  (as above)
from scaling.config.run_plan import MAX_TOKENS, Plan, peak_lr, plan  # noqa: F401  (as above)
from scaling.core import archs
from scaling.core.family import parse_size
from scaling.core.records import FLOP_CONVENTIONS
from scaling.core.schedule import COOLDOWN_SHAPES, SCHEDULES
from scaling.data.cache import check_source
from scaling.data.corpus import vocab_size_of
from scaling.data.readers import SHARD_DTYPES
from scaling.data.sources import parse_chain_source

# the allowed values of each choice field, declared once: the checks below and the help (scaling/conf) use them
# data.source: each kind and how it is written
SOURCE_FORMS = {
    "shakespeare": "shakespeare",
    "markov": "markov",
    "chain": "chain[:<dials>]",
    "text": "text:<glob>",
    "shards": "shards:<glob of .bin/.npy>",
    "disk": "disk:<path saved by datasets>",
    "parquet": "parquet:<glob>",
    "jsonl": "jsonl:<glob>",
    "hf": "hf:<name>[:<config>]",
    "mix": "mix (with data.mixture)",
}
DTYPES = ("auto", "fp32", "bf16")
# train.compile's values and what each asks for (None: the machine's default); true/false keep configs written when the
# field was a bool working (Hydra hands a bool to this string field as 'True'/'False')
COMPILE_CHOICES = {"auto": None, "true": True, "on": True, "false": False, "off": False}
DISTRIBUTED = ("auto", "off", "on")
WANDB_MODES = ("offline", "online", "disabled")
EARLY_STOP_MIN_FRAC = 0.05  # scaling.core.end_prior.WINDOW (a test holds them equal): the prior's window before a look
_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")
# every choice field and its allowed values, for the help (scaling/conf/config.yaml: ${choices:<field>})
CHOICES = {
    "model.arch": (*archs.BUILTIN, "<module>:<Class>"),
    "data.source": tuple(SOURCE_FORMS.values()),
    "data.shard_dtype": SHARD_DTYPES,
    "train.flops_convention": FLOP_CONVENTIONS,
    "train.schedule": SCHEDULES,
    "train.cooldown_shape": COOLDOWN_SHAPES,
    "branch.cooldown_shape": COOLDOWN_SHAPES,
    "train.dtype": DTYPES,
    "train.compile": tuple(COMPILE_CHOICES),
    "train.distributed": DISTRIBUTED,
    "log.wandb_mode": WANDB_MODES,
}


def _finite(section: Any, name: str) -> None:
    """Every float field must be a finite number: inf and nan pass many range checks (inf > 0) and then misbehave."""
    for f in fields(section):
        v = getattr(section, f.name)
        if isinstance(v, float) and not math.isfinite(v):
            raise ConfigError(f"{name}.{f.name}={v!r}: must be a finite number")


@dataclass
class ModelConfig:
    size: str = (
        "tiny"  # named size (scaling/core/family.py NAMED_SIZES) or target non-embedding params: 3e5, 300k, 0.3M
    )
    seq_len: int = 128
    aspect: float = 32.0  # d_model / n_layer
    head_size: int = 16
    mlp_ratio: int = 4
    min_layers: int = 2
    tie_embeddings: bool = True
    # the architecture (scaling/core/archs.py): gpt (GELU, LayerNorm, learned positions), llama (SwiGLU, RMSNorm,
    # rotary positions), or a class of your own as <module>:<Class> (its protocol: scaling/model/user.py)
    arch: str = "gpt"
    ffn_multiple: int = 32  # llama: the SwiGLU width 2/3 * mlp_ratio * d_model is rounded up to a multiple of this

    def check(self) -> None:
        _finite(self, "model")
        try:
            archs.check_name(self.arch)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        require(1 <= self.ffn_multiple <= 4096, "model.ffn_multiple", self.ffn_multiple, "an integer in [1, 4096]")
        if self.arch == "llama":
            require(self.head_size % 2 == 0, "model.head_size", self.head_size, "an even integer for rotary positions")
        try:
            parse_size(self.size)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        require(8 <= self.seq_len <= 65536, "model.seq_len", self.seq_len, "an integer in [8, 65536]")
        require(0 < self.aspect <= 1024, "model.aspect", self.aspect, "in (0, 1024]")
        require(1 <= self.head_size <= 1024, "model.head_size", self.head_size, "an integer in [1, 1024]")
        require(1 <= self.mlp_ratio <= 64, "model.mlp_ratio", self.mlp_ratio, "an integer in [1, 64]")
        require(1 <= self.min_layers <= 1024, "model.min_layers", self.min_layers, "an integer in [1, 1024]")


@dataclass
class DataConfig:
    source: str = "shakespeare"  # one of SOURCE_FORMS
    vocab_size: int = 512  # the BPE trained on the corpus; shards: their vocabulary (where no meta.json says)
    folio: bool = False
    val_fraction: float = 0.05
    cache_dir: Optional[str] = None  # default $SCALING_DATA_DIR or .cache/data
    # a Hugging Face tokenizer.json to use instead of training a BPE; its vocabulary sizes the model
    tokenizer: Optional[str] = None
    text_column: str = "text"  # hf:/disk:/parquet:/jsonl: sources: the column holding the text
    shard_dtype: str = "uint16"  # shards: the dtype of .bin shards, one of SHARD_DTYPES (.npy shards carry theirs)
    val_shards: Optional[str] = None  # shards: a glob of validation shards instead of held-out blocks
    # source=mix: the sources mixed and their weights, e.g. [{source: "text:a/*.txt", weight: 0.7}, ...]
    mixture: List[Dict[str, Any]] = field(default_factory=list)

    def check(self) -> None:
        _finite(self, "data")
        kind = self.source.split(":", 1)[0]
        require(kind in SOURCE_FORMS, "data.source", self.source, one_of(tuple(SOURCE_FORMS.values())))
        # markov: V^2 contexts must fit in memory; chain: V^order contexts, checked with its dials in data/sources.py
        lo, hi = (2, 1000) if kind == "markov" else (2, 4096) if kind == "chain" else (257, 65535)
        if kind in ("shards", "mix") or self.tokenizer:  # ids made elsewhere: data.vocab_size only bounds them
            lo, hi = 2, 2**31
        require(
            lo <= self.vocab_size <= hi,
            "data.vocab_size",
            self.vocab_size,
            f"an integer in [{lo}, {hi}] for this source",
        )
        require(0 < self.val_fraction <= 0.5, "data.val_fraction", self.val_fraction, "in (0, 0.5]")
        require(
            self.cache_dir is None or "\0" not in self.cache_dir, "data.cache_dir", self.cache_dir, "a path (or null)"
        )
        require(self.shard_dtype in SHARD_DTYPES, "data.shard_dtype", self.shard_dtype, one_of(SHARD_DTYPES))
        require(bool(self.text_column), "data.text_column", self.text_column, "a column name")
        require(
            self.tokenizer is None or kind not in ("markov", "chain"),
            "data.tokenizer",
            self.tokenizer,
            "null for a synthetic source (it has no text)",
        )
        require(
            self.val_shards is None or kind == "shards",
            "data.val_shards",
            self.val_shards,
            "null unless data.source is shards:<glob>",
        )
        require(not self.mixture or kind == "mix", "data.mixture", self.mixture, "empty unless data.source=mix")
        try:
            check_source(self.source, self.val_fraction, self.mixture)
            if kind == "chain":  # its dials (order, support, tokens, ...) are checked before any run starts
                parse_chain_source(self.source, self.vocab_size)
            if self.tokenizer is not None:
                vocab_size_of(self)  # parses the file (once per version of it): a bad one is a one-line error
        except ValueError as e:
            raise ConfigError(str(e)) from None


@dataclass
class TrainConfig:
    budget: Optional[float] = None  # training FLOPs C; tokens = C / FLOPs-per-token under flops_convention
    tokens: Optional[float] = None  # training tokens D (give budget or tokens, not both)
    flops_convention: str = "chinchilla"  # one of FLOP_CONVENTIONS (scaling/core/flops.py)
    batch_size: int = 16  # sequences per optimizer step
    micro_batch_size: Optional[int] = None  # sequences per forward pass; default batch_size (no accumulation)
    # tokens per optimizer step; when set it replaces batch_size (= tokens_per_step / model.seq_len sequences), and
    # micro_batch_size then sets the gradient accumulation. The planner sets it per budget from a rule (sweep/sizes.py)
    tokens_per_step: Optional[int] = None
    lr: Optional[float] = None  # peak LR; None: per-size rule lr_ref * (N / lr_ref_params) ** -lr_exponent
    lr_ref: float = 3e-3
    lr_ref_params: float = 1e5
    lr_exponent: float = 0.25
    # a rule for the peak LR instead of lr_ref/lr_exponent: a file `python -m analysis.lr <sweep>` wrote, or a published
    # rule by name (`deepseek`: DeepSeek LLM 2024, lr = 0.3118 C^-0.125); see config/lr_rule.py. train.lr wins over it
    lr_rule: Optional[str] = None
    schedule: str = "cosine"  # one of SCHEDULES: cosine | wsd | constant
    warmup_frac: float = 0.05
    final_lr_frac: float = 0.1
    cooldown_frac: float = 0.2  # WSD: fraction of steps in the final decay
    cooldown_shape: str = "linear"  # WSD: one of COOLDOWN_SHAPES: linear | 1-sqrt (Hägele et al. 2024)
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
    # early stop (scaling/train/callbacks/early_stop.py; off at 0): at the first evaluation from this fraction of the
    # steps, stop the run (status stopped) when the low end of its extrapolated end's 90% interval lies more than
    # early_stop_margin (relative) above the best final loss of the finished runs of its budget in its sweep folder
    early_stop_frac: float = 0.0
    early_stop_margin: float = 0.02
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    dtype: str = (
        "auto"  # one of DTYPES: auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32) | fp32 | bf16
    )
    # torch.compile of the forward pass, one of COMPILE_CHOICES: auto (scaling/launch/machine.py compile_default: on
    # CUDA; on CPU only for long bf16 runs from 1M parameters, where measured to pay) | true | false (on/off too).
    # Recorded as it resolved
    compile: str = "auto"
    threads: int = 0  # torch CPU threads; 0: the machine's default for the model size (scaling/launch/machine.py)
    # data parallelism (scaling/launch/distributed.py), one of DISTRIBUTED: auto joins the ranks torchrun or SLURM tasks
    # started, on requires them, off trains alone in each process
    distributed: str = "auto"

    def check(self, seq_len: int) -> None:
        """This section's fields; ``seq_len`` (model.seq_len) bounds the evaluation sizes."""
        require(
            (self.budget is None) != (self.tokens is None),
            "train.budget/train.tokens",
            (self.budget, self.tokens),
            "exactly one of them set (a FLOP budget C or a token count D)",
        )
        if self.budget is not None:  # before the finite check: a non-finite budget keeps the budget's own wording
            require(
                math.isfinite(self.budget) and self.budget > 0,
                "train.budget",
                self.budget,
                "a positive number of FLOPs",
            )
        if self.tokens is not None:
            require(
                math.isfinite(self.tokens) and self.tokens > 0,
                "train.tokens",
                self.tokens,
                "a positive number of tokens",
            )
        _finite(self, "train")
        require(
            self.flops_convention in FLOP_CONVENTIONS,
            "train.flops_convention",
            self.flops_convention,
            f"one of {FLOP_CONVENTIONS}",
        )
        require(self.batch_size >= 1, "train.batch_size", self.batch_size, "an integer >= 1")
        if self.micro_batch_size is not None:
            require(
                1 <= self.micro_batch_size <= self.batch_size and self.batch_size % self.micro_batch_size == 0,
                "train.micro_batch_size",
                self.micro_batch_size,
                f"a divisor of train.batch_size={self.batch_size}",
            )
        if self.lr is not None:
            require(0 < self.lr <= 1, "train.lr", self.lr, "in (0, 1]")
        require(0 < self.lr_ref <= 1, "train.lr_ref", self.lr_ref, "in (0, 1]")
        require(self.lr_ref_params > 0, "train.lr_ref_params", self.lr_ref_params, "> 0")
        require(-2 <= self.lr_exponent <= 2, "train.lr_exponent", self.lr_exponent, "in [-2, 2]")
        require(self.schedule in SCHEDULES, "train.schedule", self.schedule, f"one of {SCHEDULES}")
        require(0 <= self.warmup_frac < 1, "train.warmup_frac", self.warmup_frac, "in [0, 1)")
        require(0 <= self.final_lr_frac <= 1, "train.final_lr_frac", self.final_lr_frac, "in [0, 1]")
        require(0 < self.cooldown_frac <= 1, "train.cooldown_frac", self.cooldown_frac, "in (0, 1]")
        require(
            self.cooldown_shape in COOLDOWN_SHAPES,
            "train.cooldown_shape",
            self.cooldown_shape,
            f"one of {COOLDOWN_SHAPES}",
        )
        if self.lr_rule is not None:
            try:
                lr_rule.load(self.lr_rule)
            except ValueError as e:
                raise ConfigError(str(e)) from None
        require(0 <= self.weight_decay <= 10, "train.weight_decay", self.weight_decay, "in [0, 10]")
        require(0 <= self.beta1 < 1, "train.beta1", self.beta1, "in [0, 1)")
        require(0 <= self.beta2 < 1, "train.beta2", self.beta2, "in [0, 1)")
        require(self.grad_clip >= 0, "train.grad_clip", self.grad_clip, ">= 0 (0 disables clipping)")
        require(self.eval_interval >= 0, "train.eval_interval", self.eval_interval, ">= 0 (0: automatic)")
        require(self.eval_tokens >= seq_len, "train.eval_tokens", self.eval_tokens, f">= model.seq_len={seq_len}")
        require(
            self.final_eval_tokens == 0 or self.final_eval_tokens >= seq_len,
            "train.final_eval_tokens",
            self.final_eval_tokens,
            f"0 (the whole validation split) or >= model.seq_len={seq_len}",
        )
        require(self.checkpoint_seconds > 0, "train.checkpoint_seconds", self.checkpoint_seconds, "> 0")
        require(self.diverge_factor > 1, "train.diverge_factor", self.diverge_factor, "> 1")
        require(
            self.early_stop_frac == 0 or EARLY_STOP_MIN_FRAC <= self.early_stop_frac < 1,
            "train.early_stop_frac",
            self.early_stop_frac,
            f"0 (off) or in [{EARLY_STOP_MIN_FRAC}, 1): the sweep prior averages the last "
            f"{EARLY_STOP_MIN_FRAC:.0%} of the run's steps before the look",
        )
        require(self.early_stop_margin >= 0, "train.early_stop_margin", self.early_stop_margin, ">= 0")
        require(0 <= self.seed < 2**63, "train.seed", self.seed, "an integer >= 0 (and < 2**63)")
        require(bool(_DEVICE.fullmatch(self.device)), "train.device", self.device, "'auto', 'cpu', 'cuda' or 'cuda:N'")
        require(self.dtype in DTYPES, "train.dtype", self.dtype, one_of(DTYPES))
        require(
            str(self.compile).lower() in COMPILE_CHOICES,
            "train.compile",
            self.compile,
            "'auto' (the machine's default for the device, dtype and size), 'true' or 'false' ('on' and 'off' too)",
        )
        require(
            0 <= self.threads <= 4096,
            "train.threads",
            self.threads,
            "an integer in [0, 4096] (0: the machine's default for the model size)",
        )
        require(self.distributed in DISTRIBUTED, "train.distributed", self.distributed, one_of(DISTRIBUTED))

    def check_plan(self, p: Plan) -> None:
        """What only the plan knows: the learning rate the rule gives this size, and the last step."""
        require(
            0 < p.lr <= 1,
            "train.lr_ref/train.lr_ref_params/train.lr_exponent",
            (self.lr_ref, self.lr_ref_params, self.lr_exponent),
            f"a rule whose peak learning rate for N={p.shape.params_non_embedding():,} is in (0, 1], not {p.lr:.3g}",
        )
        if self.halt_after_step is not None:
            require(
                1 <= self.halt_after_step <= p.steps,
                "train.halt_after_step",
                self.halt_after_step,
                f"in [1, steps={p.steps}]",
            )


@dataclass
class LogConfig:
    progress: bool = True
    wandb: bool = False
    wandb_project: str = "scaling-harness"
    wandb_mode: str = "offline"  # one of WANDB_MODES: offline | online | disabled
    wandb_entity: Optional[str] = None

    def check(self) -> None:
        require(self.wandb_mode in WANDB_MODES, "log.wandb_mode", self.wandb_mode, one_of(WANDB_MODES))
        require(
            not self.wandb or bool(self.wandb_project.strip()),
            "log.wandb_project",
            self.wandb_project,
            "a non-empty project name when log.wandb=true",
        )


@dataclass
class BranchConfig:
    """Cooldown branches (WSD-S, Hägele et al. 2024): one constant-LR trunk per run, a short cooldown branched off it
    for each token count (or budget) listed; each branch end is a run directory of its own.
    See scaling/sweep/branches.py."""

    tokens: List[float] = field(default_factory=list)  # each branch's total training tokens D (trunk + cooldown)
    budgets: List[float] = field(default_factory=list)  # or each branch's FLOPs C under train.flops_convention
    cooldown_frac: float = 0.2  # cooldown length as a fraction of the tokens trained at the branch point
    cooldown_shape: str = "linear"  # one of COOLDOWN_SHAPES: linear | 1-sqrt

    def check(self) -> None:
        require(
            not (self.tokens and self.budgets),
            "branch.tokens/branch.budgets",
            (list(self.tokens), list(self.budgets)),
            "at most one of them set",
        )
        for name, xs in (("branch.tokens", self.tokens), ("branch.budgets", self.budgets)):
            for x in xs:
                require(
                    isinstance(x, (int, float)) and math.isfinite(x) and x > 0,
                    name,
                    list(xs),
                    "a list of positive numbers",
                )
        require(0 < self.cooldown_frac <= 1, "branch.cooldown_frac", self.cooldown_frac, "in (0, 1]")
        require(
            self.cooldown_shape in COOLDOWN_SHAPES,
            "branch.cooldown_shape",
            self.cooldown_shape,
            f"one of {COOLDOWN_SHAPES}",
        )


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
    # budget its own sizes: point={budget:1e12,size:2e4}. Keys: budget, size, tokens (see scaling/config/points.py).
    point: Dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """The top-level fields: where the run's folder goes."""
        require(
            bool(self.sweep)
            and "/" not in self.sweep
            and "\\" not in self.sweep
            and "\0" not in self.sweep
            and not self.sweep.startswith((".", "_")),
            "sweep",
            self.sweep,
            "a non-empty folder name without '/', '\\' or NUL, not starting with '.' or '_'",
        )
        require(
            bool(self.results_dir.strip()) and "\0" not in self.results_dir,
            "results_dir",
            self.results_dir,
            "a non-empty path",
        )


def validate(cfg: Config) -> None:
    """Every check of a config, once: each section's own, then what only its plan can tell. Raises ConfigError."""
    cfg.model.check()
    cfg.data.check()
    cfg.train.check(cfg.model.seq_len)
    cfg.branch.check()
    cfg.log.check()
    cfg.check()
    cfg.train.check_plan(plan(cfg))
