"""Model architectures as a registry: each entry's shape rule (the MLP width), exact parameter counts and forward FLOPs
term by term. Pure Python, no torch: the trainer and the analysis both read it.

An architecture is anything with the ``Arch`` protocol. ``gpt`` (scaling/model/gpt.py) and ``llama``
(scaling/model/llama.py) are built in; a user's own class (``model.arch=<module>:<Class>``, scaling/model/user.py)
is registered here by the trainer once it has checked the class, so ``Shape.params_*`` and
``scaling.core.flops.flops_per_token`` answer for it too. Counts must equal the module's own ``numel`` exactly
(tests/unit/scaling/model/test_archs.py); FLOPs are checked against torch's flop counter there and in
``python -m scaling.bench.flop_count``.

Forward FLOPs per sequence of s tokens (Hoffmann et al. 2022 Appendix F, generalised; d = d_model, a = d_attn,
h = n_head, f = d_ff, V = vocab), per layer unless said:
- ``qkv``        2·3·s·d·a             query, key, value projections (Appendix F)
- ``logits``     2·s²·a                K @ Q (Appendix F, "key @ query logits")
- ``softmax``    3·h·s²                (Appendix F)
- ``reduce``     2·s²·a                softmax @ V (Appendix F, "softmax @ query reductions")
- ``project``    2·s·a·d               attention output (Appendix F)
- ``dense``      2·s·m·d·f             m MLP matrices: 2 for GELU (Appendix F "dense block"), 3 for SwiGLU
                                       (Shazeer 2020, "GLU Variants Improve Transformer" §2:
                                       FFN_SwiGLU = (Swish(xW) ⊗ xV) W2)
- ``rotary``     3·2·s·a               llama only: q and k rotated as x·cos + rotate_half(x)·sin, 2 multiplies and 1
                                       add an element (Su et al. 2021, RoFormer §3.4.2 eq. 34). Counted like the
                                       softmax, the one other non-matmul term Appendix F counts; the MLP's GELU, the
                                       SwiGLU gate's Swish and product, and the norms are not counted (Appendix F
                                       leaves out nonlinearities and LayerNorm)
- ``embeddings`` 2·s·V·d               once, as a one-hot matmul (Appendix F)
- ``head``       2·s·d·V               once, the final logits (Appendix F)
Backward = 2 x forward (Appendix F), so training = 3 x forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from scaling.core.family import Shape


@runtime_checkable
class Arch(Protocol):
    """What the harness needs to know of an architecture, torch-free."""

    name: str
    mlp_matrices: int  # matrices of d x f in one MLP: 2 (up, down) or 3 (gate, up, down)
    source: str  # where its FLOPs come from: "analytic" (formulas) or "flop_counter" (measured once per shape)

    def d_ff(self, d_model: int, mlp_ratio: int, ffn_multiple: int) -> int:
        """The MLP width of the family rule at this width."""
        ...

    def params_embedding(self, shape: Shape) -> int: ...

    def params_non_embedding(self, shape: Shape) -> int: ...

    def forward_terms(self, shape: Shape, *, embeddings: bool = True) -> dict[str, int]:
        """Forward FLOPs of one sequence of seq_len tokens, term by term (whole model: layers x per-layer terms)."""
        ...

    def flops_per_token(self, shape: Shape) -> dict[str, float] | None:
        """Every convention's training FLOPs per token when the arch gives them itself (a user's class, or FLOPs
        measured by the flop counter); None: scaling/core/flops.py computes them from ``forward_terms``."""
        ...


def _attention_terms(s: int, d: int, a: int, h: int) -> dict[str, int]:
    return {
        "qkv": 2 * 3 * s * d * a,
        "logits": 2 * s * s * a,
        "softmax": 3 * h * s * s,
        "reduce": 2 * s * s * a,
        "project": 2 * s * a * d,
    }


class GPTArch:
    """Today's block (scaling/model/gpt.py): LayerNorm (weight and bias), GELU MLP of ``mlp_ratio`` d, learned
    absolute positions, no biases on linear layers, tied or untied output head."""

    name = "gpt"
    mlp_matrices = 2
    source = "analytic"

    def d_ff(self, d_model: int, mlp_ratio: int, ffn_multiple: int) -> int:
        return mlp_ratio * d_model

    def params_embedding(self, shape: Shape) -> int:
        p = shape.vocab_size * shape.d_model + shape.seq_len * shape.d_model  # tokens + learned positions
        if not shape.tie_embeddings:
            p += shape.vocab_size * shape.d_model
        return p

    def params_non_embedding(self, shape: Shape) -> int:
        d, a, f = shape.d_model, shape.d_attn, shape.d_ff
        per_layer = 4 * d + 3 * d * a + a * d + 2 * d * f  # 2 LayerNorms (weight + bias), QKV, out, MLP
        return shape.n_layer * per_layer + 2 * d  # + final LayerNorm

    def forward_terms(self, shape: Shape, *, embeddings: bool = True) -> dict[str, int]:
        s, d, a, h, f, V, L = _dims(shape)
        terms = {k: L * v for k, v in _attention_terms(s, d, a, h).items()}
        terms["dense"] = L * 2 * s * (d * f + d * f)
        if embeddings:
            terms["embeddings"] = 2 * s * V * d
            terms["head"] = 2 * s * d * V
        return terms

    def flops_per_token(self, shape: Shape) -> dict[str, float] | None:
        return None


class LlamaArch:
    """A Llama-style block (scaling/model/llama.py; Touvron et al. 2023 §2.2): RMSNorm (weight only), SwiGLU MLP,
    rotary positions (no position embedding), no biases, tied or untied output head. The MLP width is Llama's rule
    (meta-llama/llama model.py ``FeedForward``): int(2/3 · mlp_ratio · d) rounded up to a multiple of
    ``ffn_multiple`` (mlp_ratio 4: the usual 8/3 d), so the MLP's 3 d f matches a GELU MLP's 2·4·d² parameters."""

    name = "llama"
    mlp_matrices = 3
    source = "analytic"

    def d_ff(self, d_model: int, mlp_ratio: int, ffn_multiple: int) -> int:
        hidden = int(2 * mlp_ratio * d_model / 3)
        return ffn_multiple * ((hidden + ffn_multiple - 1) // ffn_multiple)

    def params_embedding(self, shape: Shape) -> int:
        p = shape.vocab_size * shape.d_model  # tokens; rotary positions have no parameters
        if not shape.tie_embeddings:
            p += shape.vocab_size * shape.d_model
        return p

    def params_non_embedding(self, shape: Shape) -> int:
        d, a, f = shape.d_model, shape.d_attn, shape.d_ff
        per_layer = 2 * d + 3 * d * a + a * d + 3 * d * f  # 2 RMSNorms (weight), QKV, out, SwiGLU (gate, up, down)
        return shape.n_layer * per_layer + d  # + final RMSNorm

    def forward_terms(self, shape: Shape, *, embeddings: bool = True) -> dict[str, int]:
        s, d, a, h, f, V, L = _dims(shape)
        terms = {k: L * v for k, v in _attention_terms(s, d, a, h).items()}
        terms["rotary"] = L * 3 * 2 * s * a
        terms["dense"] = L * 2 * s * 3 * d * f
        if embeddings:
            terms["embeddings"] = 2 * s * V * d
            terms["head"] = 2 * s * d * V
        return terms

    def flops_per_token(self, shape: Shape) -> dict[str, float] | None:
        return None


def _dims(shape: Shape) -> tuple[int, int, int, int, int, int, int]:
    return shape.seq_len, shape.d_model, shape.d_attn, shape.n_head, shape.d_ff, shape.vocab_size, shape.n_layer


BUILTIN = ("gpt", "llama")
_REGISTRY: dict[str, Arch] = {"gpt": GPTArch(), "llama": LlamaArch()}


def is_user_arch(name: str) -> bool:
    """``<module>:<Class>``: a user's own model class (scaling/model/user.py)."""
    return ":" in name


def check_name(name: str) -> None:
    """model.arch is a built-in name or ``<module>:<Class>``; ValueError naming the field otherwise."""
    if name in BUILTIN:
        return
    mod, _, cls = name.partition(":")
    if not (mod and cls and all(p.isidentifier() for p in mod.split(".")) and cls.isidentifier()):
        raise ValueError(f"model.arch={name!r}: must be one of {BUILTIN} or <module>:<Class> (e.g. mymodels:TinyNet)")


def register(name: str, arch: Arch) -> None:
    """Register (or replace) an architecture under ``name``: the trainer does this for a user's class it has checked."""
    if not isinstance(arch, Arch):
        raise TypeError(f"model.arch={name!r}: {arch!r} does not follow scaling.core.archs.Arch")
    _REGISTRY[name] = arch


def get(name: str) -> Arch:
    try:
        return _REGISTRY[name]
    except KeyError:
        hint = " (a user's class is registered when the trainer loads it: scaling.model.user.load)"
        raise ValueError(
            f"model.arch={name!r} is not registered; known: {sorted(_REGISTRY)}{hint if is_user_arch(name) else ''}"
        ) from None


def registered(name: str) -> bool:
    return name in _REGISTRY
