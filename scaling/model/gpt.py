"""Decoder-only Transformer built from a ``Shape``: pre-norm blocks, causal SDPA attention, GELU MLP, learned
absolute positions, optional tied input/output embeddings. No biases on linear layers, so the analytic counts in
scaling/core/family.py are exact; ``GPT.check_param_count`` verifies that in place.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from scaling.core.family import Shape


class CausalSelfAttention(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.n_head = shape.n_head
        self.head_size = shape.head_size
        self.qkv = nn.Linear(shape.d_model, 3 * shape.d_attn, bias=False)
        self.proj = nn.Linear(shape.d_attn, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        q, k, v = self.qkv(x).split(self.n_head * self.head_size, dim=2)
        q, k, v = (t.view(B, T, self.n_head, self.head_size).transpose(1, 2) for t in (q, k, v))
        if q.device.type == "cpu" and q.dtype == torch.bfloat16:
            y = _causal_attention_cpu_bf16(q, k, v)
        else:  # flash / memory-efficient kernels on CUDA, the fused flash kernel on CPU in fp32
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(B, T, -1))


def _causal_attention_cpu_bf16(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention written out, for CPU under bf16 autocast: torch's CPU flash kernel in bf16 is slower than these
    two bf16 matmuls at our head sizes (8-16; figures: README.md, "One run"). The softmax runs in fp32."""
    T = q.size(-2)
    mask = torch.full((T, T), float("-inf"), device=q.device).triu_(1)
    scores = (q @ k.transpose(-2, -1)).float() * (q.size(-1) ** -0.5) + mask
    return scores.softmax(dim=-1).to(v.dtype) @ v


class MLP(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.up = nn.Linear(shape.d_model, shape.d_ff, bias=False)
        self.down = nn.Linear(shape.d_ff, shape.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        self.ln1 = nn.LayerNorm(shape.d_model)
        self.attn = CausalSelfAttention(shape)
        self.ln2 = nn.LayerNorm(shape.d_model)
        self.mlp = MLP(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, shape: Shape):
        super().__init__()
        shape.validate()
        self.shape = shape
        self.tok_emb = nn.Embedding(shape.vocab_size, shape.d_model)
        self.pos_emb = nn.Embedding(shape.seq_len, shape.d_model)
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.n_layer))
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        if shape.tie_embeddings:
            self.head.weight = self.tok_emb.weight
        self.apply(self._init)
        # GPT-2 scaled init of residual projections: std 0.02 / sqrt(2 n_layer)
        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        if T > self.shape.seq_len:
            raise ValueError(f"sequence length {T} exceeds the model's seq_len={self.shape.seq_len}")
        pos = torch.arange(T, device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    # ---- checks beside the thing they check ---------------------------------------------------------------
    def param_counts(self) -> dict[str, int]:
        """The module's own counts (unique tensors, so a tied head is counted once)."""
        total = sum(p.numel() for p in self.parameters())
        emb = self.tok_emb.weight.numel() + self.pos_emb.weight.numel()
        if not self.shape.tie_embeddings:
            emb += self.head.weight.numel()
        return {"total": total, "embedding": emb, "non_embedding": total - emb}

    def check_param_count(self) -> None:
        own = self.param_counts()
        analytic = {
            "total": self.shape.params_total(),
            "embedding": self.shape.params_embedding(),
            "non_embedding": self.shape.params_non_embedding(),
        }
        if own != analytic:
            raise AssertionError(f"analytic parameter counts {analytic} != module counts {own} for {self.shape}")

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        for _ in range(max_new_tokens):
            ctx = idx[:, -self.shape.seq_len :]
            logits, _ = self(ctx)
            logits = logits[:, -1, :].float()
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None and top_k > 0:
                    v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                    logits[logits < v[:, [-1]]] = -float("inf")
                probs = torch.softmax(logits, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator)
            idx = torch.cat([idx, nxt], dim=1)
        return idx
