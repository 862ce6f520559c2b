"""Training FLOPs per token under each common convention. Pure Python: no torch, importable by analysis.

Every run records all conventions (scaling.core.records.FLOP_CONVENTIONS) so a fit can choose. All figures are training
FLOPs (forward + backward) per token of a sequence of ``seq_len`` tokens; multiply by tokens trained for C.

- ``6n``                 6 N, N = non-embedding parameters (Kaplan et al. 2020 §2.1: C ~= 6 N per token).
- ``6n_attn``            6 N + 6 n_layer seq_len d_attn (Kaplan et al. 2020 Table 1: forward 2N + 2 n_layer n_ctx
                         d_attn, training = 3x forward).
- ``chinchilla``         Hoffmann et al. 2022 Appendix F, every matmul plus softmax, embeddings and final logits
                         included; backward = 2x forward.
- ``chinchilla_noembed`` The same without the embedding and final-logit terms. Chinchilla's Table A4 ratios to 6ND
                         are reproduced only in this form.
- ``deepseek_m``         DeepSeek LLM 2024 §3.1, M: non-embedding FLOPs per token including attention, excluding
                         the vocabulary computation. Their 72 n_layer d^2 + 12 n_layer d seq is 6x the matmul weights
                         of a layer (for their 12 d^2 per layer) plus 3x the forward attention 2 (QK^T) + 2 (AV)
                         per token per d_attn per position. For our shapes: 6 n_layer (4 d d_attn + 2 d d_ff)
                         + 12 n_layer d_attn seq, which with d_ff = 4d is exactly 72 n_layer d^2 + 12 n_layer d seq.
                         For SwiGLU (``llama``) the MLP has 3 matrices: 6 n_layer (4 d d_attn + 3 d d_ff) + the same
                         attention term (rotary positions add no matmul, so nothing here).

Architectures (scaling/core/archs.py) give the Chinchilla terms; ``6n`` and ``6n_attn`` follow from N alone, so
SwiGLU enters through N and rotary positions through nothing (Kaplan's attention term has no position cost).
"""

from __future__ import annotations

from scaling.core import archs
from scaling.core.family import Shape


def chinchilla_forward_flops_per_sequence(shape: Shape, *, embeddings: bool = True) -> float:
    """Forward FLOPs for one sequence of seq_len tokens, Hoffmann et al. 2022 Appendix F, term by term: the
    architecture's terms (scaling/core/archs.py; SwiGLU and rotary attention for ``llama``)."""
    return float(sum(archs.get(shape.arch).forward_terms(shape, embeddings=embeddings).values()))


def flops_per_token(shape: Shape) -> dict[str, float]:
    """Training FLOPs per token under every convention, keyed as scaling.core.records.FLOP_CONVENTIONS. A user's
    architecture may give its own (or have them measured by the flop counter: scaling/model/user.py)."""
    arch = archs.get(shape.arch)
    own = arch.flops_per_token(shape)
    if own is not None:
        return dict(own)
    n = shape.params_non_embedding()
    L, s, d, a, f = shape.n_layer, shape.seq_len, shape.d_model, shape.d_attn, shape.d_ff
    fwd = chinchilla_forward_flops_per_sequence(shape, embeddings=True)
    fwd_noembed = chinchilla_forward_flops_per_sequence(shape, embeddings=False)
    return {
        "6n": 6.0 * n,
        "6n_attn": 6.0 * n + 6.0 * L * s * a,
        "chinchilla": 3.0 * fwd / s,
        "chinchilla_noembed": 3.0 * fwd_noembed / s,
        # 6 x every weight matrix of a layer (QKV, out, the MLP's m matrices) + 3 x forward attention 2 (QK^T) + 2 (AV)
        "deepseek_m": 6.0 * L * (4 * d * a + arch.mlp_matrices * d * f) + 12.0 * L * a * s,
    }
