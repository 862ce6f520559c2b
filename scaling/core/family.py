"""The model family: one knob (size) -> one Transformer shape, and that shape's exact parameter counts.

The rule, in one place:

- Head size is fixed (``head_size``, default 16) and ``d_model`` is a multiple of it.
- The aspect ratio ``d_model / n_layer`` is held near ``aspect`` (default 32). Kaplan et al. 2020 (§3.1, Fig. 5)
  found loss depends only weakly on shape at fixed non-embedding N over a wide range of aspect ratios (roughly 20 to
  200), so one fixed ratio gives a family whose loss is a function of N alone. 32 is at the narrow end of that range.
- At least ``min_layers`` layers (default 2): Kaplan et al. 2020 (Fig. 6) found 1-layer models fall off the common
  trend, and a family that switched from 1 to 2 layers inside a sweep would put a step in every IsoFLOP curve (with
  aspect 32, models under ~45k parameters would otherwise get one layer).
- The MLP is 4x wide (``d_ff = 4 d_model``), as in GPT-2 and Kaplan.

Given a target non-embedding parameter count N, with N ~= 12 n_layer d_model^2 and d_model = aspect * n_layer,
the ideal width is d = (aspect * N / 12)^(1/3); n_layer is that over ``aspect`` rounded to a whole layer (at least
one), then d_model is re-solved from N for that depth and rounded to the head size. The resolved shape's N is the
one recorded, never the target.

The architecture (``arch``, scaling/core/archs.py) sets the MLP width at that d_model: ``gpt`` mlp_ratio * d_model,
``llama`` Llama's SwiGLU rule (2/3 * mlp_ratio * d_model rounded up to ``ffn_multiple``), whose three matrices hold
about as many parameters as the GELU MLP's two, so both families take the same n_layer and d_model at a size.

Parameter counts are the architecture's (scaling/core/archs.py), exact for its module (tests compare them with
``model.parameters()``). For ``gpt`` (scaling/model/gpt.py):
- embedding:       token embedding V*d + learned position embedding s*d + untied output head V*d (if not tied)
- per layer:       2 LayerNorms (4d) + QKV (3 d d_attn) + attention out (d_attn d) + MLP (2 d d_ff); no biases on
                   linear layers
- final LayerNorm: 2d
Non-embedding N is everything except the embedding group (Kaplan et al. 2020 §2.1 convention).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from scaling.core import archs

# Named sizes map to target non-embedding parameter counts. They span the CPU sweep range and beyond.
NAMED_SIZES: dict[str, float] = {
    "nano": 1e4,
    "micro": 3e4,
    "tiny": 1e5,
    "mini": 3e5,
    "small": 1e6,
    "medium": 3e6,
    "base": 1e7,
    "large": 1e8,
    "xl": 1e9,
}

MIN_TARGET_PARAMS = 1e3
MAX_TARGET_PARAMS = 1e12
_SUFFIX = {"": 1.0, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "b": 1e9, "B": 1e9, "g": 1e9, "G": 1e9}


@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int
    n_head: int
    d_ff: int
    vocab_size: int
    seq_len: int
    tie_embeddings: bool = True
    arch: str = "gpt"  # scaling/core/archs.py: gpt, llama or a user's <module>:<Class>

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_head

    @property
    def d_attn(self) -> int:
        return self.n_head * self.head_size

    def validate(self) -> None:
        for name in ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "seq_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"shape field {name}={v!r}: must be a positive integer")
        if self.d_model % self.n_head:
            raise ValueError(f"shape d_model={self.d_model} must be divisible by n_head={self.n_head}")

    # ---- exact parameter counts: the architecture's (scaling/core/archs.py) ------------------------------
    def params_embedding(self) -> int:
        return archs.get(self.arch).params_embedding(self)

    def params_non_embedding(self) -> int:
        return archs.get(self.arch).params_non_embedding(self)

    def params_total(self) -> int:
        return self.params_embedding() + self.params_non_embedding()

    def describe(self) -> str:
        return (
            (f"{self.arch} " if self.arch != "gpt" else "")
            + f"n_layer={self.n_layer} d_model={self.d_model} n_head={self.n_head} d_ff={self.d_ff} "
            f"V={self.vocab_size} seq={self.seq_len} N={self.params_non_embedding():,} "
            f"(total {self.params_total():,})"
        )


def parse_size(size: str | float | int) -> float:
    """A size is a name from NAMED_SIZES or a target non-embedding parameter count: 1e5, 100k, 0.3M, 2B."""
    allowed = (
        f"a positive parameter count in [{MIN_TARGET_PARAMS:g}, {MAX_TARGET_PARAMS:g}] (e.g. 3e5, 300k, 0.3M)"
        f" or one of {sorted(NAMED_SIZES)}"
    )
    if isinstance(size, bool):
        raise ValueError(f"model.size={size!r}: must be {allowed}")
    if isinstance(size, (int, float)):
        n = float(size)
    else:
        s = str(size).strip()
        if s in NAMED_SIZES:
            return NAMED_SIZES[s]
        m = re.fullmatch(r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*([kKmMbBgG]?)", s)
        if not m:
            raise ValueError(f"model.size={size!r}: must be {allowed}")
        n = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(n) or not (MIN_TARGET_PARAMS <= n <= MAX_TARGET_PARAMS):
        raise ValueError(f"model.size={size!r}: must be {allowed}")
    return n


def shape_for(
    size: str | float,
    *,
    vocab_size: int,
    seq_len: int,
    aspect: float = 32.0,
    head_size: int = 16,
    mlp_ratio: int = 4,
    tie_embeddings: bool = True,
    min_layers: int = 2,
    arch: str = "gpt",
    ffn_multiple: int = 32,
) -> Shape:
    """The family rule: a target non-embedding parameter count (or a named size) -> a shape."""
    if aspect <= 0:
        raise ValueError(f"model.aspect={aspect}: must be > 0")
    if head_size < 1:
        raise ValueError(f"model.head_size={head_size}: must be >= 1")
    if min_layers < 1:
        raise ValueError(f"model.min_layers={min_layers}: must be >= 1")
    if ffn_multiple < 1:
        raise ValueError(f"model.ffn_multiple={ffn_multiple}: must be >= 1")
    rule = archs.get(arch)
    n_target = parse_size(size)
    per_d2 = 4 + 2 * mlp_ratio  # matmul params per layer / d_model^2 (QKV 3 + out 1 + MLP 2*ratio)
    d_ideal = (aspect * n_target / per_d2) ** (1 / 3)
    n_layer = max(min_layers, round(d_ideal / aspect))
    d = math.sqrt(n_target / (per_d2 * n_layer))
    d_model = max(head_size, head_size * round(d / head_size))
    shape = Shape(
        n_layer=n_layer,
        d_model=d_model,
        n_head=d_model // head_size,
        d_ff=rule.d_ff(d_model, mlp_ratio, ffn_multiple),
        vocab_size=vocab_size,
        seq_len=seq_len,
        tie_embeddings=tie_embeddings,
        arch=arch,
    )
    shape.validate()
    return shape
