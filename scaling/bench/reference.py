"""A plain nanoGPT-style model and training step, written the way a researcher would, for
scaling/bench/side_by_side.py to time the harness against: same shapes, threads and dtype, nothing of the harness
imported except the ``Shape`` it is built from.

Modelled on karpathy/nanoGPT's model.py and train.py: pre-norm blocks, ``c_attn``/``c_proj`` attention through SDPA,
a GELU MLP, tied embeddings, AdamW with decay on matrices only (fused on CUDA, torch's default elsewhere), gradient
clipping, batches cut from the memory-mapped token array with ``torch.randint`` and ``torch.stack``, and the loss read
back to the host once per step.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d_model: int, n_head: int, head_size: int):
        super().__init__()
        self.n_head, self.head_size = n_head, head_size
        self.c_attn = nn.Linear(d_model, 3 * n_head * head_size, bias=False)
        self.c_proj = nn.Linear(n_head * head_size, d_model, bias=False)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_head * self.head_size, dim=2)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, -1))


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int, head_size: int, d_ff: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_head, head_size)
        self.ln_2 = nn.LayerNorm(d_model)
        self.c_fc = nn.Linear(d_model, d_ff, bias=False)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(self.gelu(self.c_fc(self.ln_2(x))))


class ReferenceGPT(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.wte = nn.Embedding(shape.vocab_size, shape.d_model)
        self.wpe = nn.Embedding(shape.seq_len, shape.d_model)
        self.h = nn.ModuleList(
            Block(shape.d_model, shape.n_head, shape.head_size, shape.d_ff) for _ in range(shape.n_layer)
        )
        self.ln_f = nn.LayerNorm(shape.d_model)
        self.lm_head = nn.Linear(shape.d_model, shape.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * shape.n_layer))

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        t = idx.size(1)
        pos = torch.arange(0, t, dtype=torch.long, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


class ReferenceTrainer:
    """nanoGPT's train.py loop body: get_batch, forward under autocast, backward, clip, step, zero_grad, loss.item()."""

    def __init__(
        self,
        shape,
        data: np.ndarray,
        *,
        batch_size: int,
        device: torch.device,
        bf16: bool,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        grad_clip: float = 1.0,
    ):
        self.model = ReferenceGPT(shape).to(device)
        params = [p for p in self.model.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), fused=device.type == "cuda")
        self.data, self.batch_size, self.block_size = data, batch_size, shape.seq_len
        self.device, self.grad_clip = device, grad_clip
        self.ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else nullcontext()

    def get_batch(self):
        ix = torch.randint(len(self.data) - self.block_size, (self.batch_size,))
        x = torch.stack([torch.from_numpy(self.data[i : i + self.block_size].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(self.data[i + 1 : i + 1 + self.block_size].astype(np.int64)) for i in ix])
        return x.to(self.device), y.to(self.device)

    def step(self) -> float:
        x, y = self.get_batch()
        with self.ctx:
            loss = self.model(x, y)
        loss.backward()
        if self.grad_clip != 0.0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()
