"""Llama-style decoder-only Transformer built from a ``Shape`` with ``arch="llama"`` (Touvron et al. 2023 §2.2):
pre-norm RMSNorm blocks, causal SDPA attention with rotary positions (Su et al. 2021), SwiGLU MLP of width
``shape.d_ff`` (scaling/core/archs.py LlamaArch.d_ff), no biases, tied or untied output head. Counts are exact in
scaling/core/archs.py; ``check_param_count`` verifies that in place, as GPT's does.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from scaling.core.family import Shape
from scaling.model.gpt import GPT, _causal_attention_cpu_bf16

ROPE_BASE = 10000.0  # theta of RoFormer and Llama


def rotary_tables(seq_len: int, head_size: int, base: float = ROPE_BASE) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (seq_len, head_size) for the rotate-half form of rotary positions (RoFormer eq. 34)."""
    inv = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float32) / head_size))
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, h, T, hs) rotated pairwise by position: x cos + rotate_half(x) sin."""
    half = x.size(-1) // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class RotaryAttention(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        if shape.head_size % 2:
            raise ValueError(f"model.head_size={shape.head_size}: rotary positions need an even head size")
        self.n_head = shape.n_head
        self.head_size = shape.head_size
        self.qkv = nn.Linear(shape.d_model, 3 * shape.d_attn, bias=False)
        self.proj = nn.Linear(shape.d_attn, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.head_size, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.head_size).transpose(1, 2) for t in (q, k, v))
        q, k = apply_rotary(q, cos[:T], sin[:T]).to(v.dtype), apply_rotary(k, cos[:T], sin[:T]).to(v.dtype)
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:
            y = _causal_attention_cpu_bf16(q, k, v)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


class SwiGLU(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.gate = nn.Linear(shape.d_model, shape.d_ff, bias=False)
        self.up = nn.Linear(shape.d_model, shape.d_ff, bias=False)
        self.down = nn.Linear(shape.d_ff, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class LlamaBlock(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.norm1 = nn.RMSNorm(shape.d_model, eps=1e-5)
        self.attn = RotaryAttention(shape)
        self.norm2 = nn.RMSNorm(shape.d_model, eps=1e-5)
        self.mlp = SwiGLU(shape)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class Llama(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        shape.validate()
        if shape.arch != "llama":
            raise ValueError(f"Llama built from a shape of arch={shape.arch!r}")
        self.shape = shape
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.d_model)
        self.blocks = nn.ModuleList(LlamaBlock(shape) for _ in range(shape.n_layer))
        self.norm_f = nn.RMSNorm(shape.d_model, eps=1e-5)
        self.head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        if shape.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        cos, sin = rotary_tables(shape.seq_len, shape.head_size)
        self.register_buffer("rope_cos", cos, persistent=False)  # derived from the shape: not in checkpoints
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(GPT._init)
        # the same scaled init of residual projections as GPT's: std 0.02 / sqrt(2 n_layer)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        T = idx.size(1)
        if T > self.shape.seq_len:
            raise ValueError(f"sequence length {T} exceeds the model's seq_len={self.shape.seq_len}")
        x = self.tok_emb(idx)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)
        logits = self.head(self.norm_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    def param_counts(self) -> dict[str, int]:
        """The module's own counts (unique tensors, so a tied head is counted once)."""
        total = sum(p.numel() for p in self.parameters())
        emb = self.tok_emb.weight.numel() + (0 if self.shape.tie_embeddings else self.head.weight.numel())
        return {"total": total, "embedding": emb, "non_embedding": total - emb}

    def check_param_count(self) -> None:
        GPT.check_param_count(self)  # type: ignore[arg-type]  # the same check: counts against shape's analytic ones

    generate = GPT.generate  # the same sampling loop: it only calls self(idx)
