"""How much memory a run needs (an estimate made before any compute) and how much its device has.

Estimate, in bytes, for P parameters (unique tensors; a tied head counted once), a micro-batch of b sequences of T
tokens, n_layer layers of width d, n_head heads, MLP width d_ff, vocabulary V, and a bytes per activation (4 fp32,
2 under bf16 autocast):

    weights + gradients + AdamW (exp_avg, exp_avg_sq), all fp32      16 P
    activations kept for backward, per layer                       a (b T (10 d + m d_ff) + 2 b n_head T^2)
        (layer-norm in/out 2, q k v 3, attention out 1, projection in 1, residual 1, MLP in/norm 2 per d; MLP up and
         GELU out per d_ff, m = 2; SwiGLU's gate, Swish, up and product, m = 4; scores and softmax b n_head T^2
         where attention is not fused, so an upper bound on flash kernels; cf. Korthikanti et al. 2022, "Reducing
         Activation Recomputation", Sec. 4.1, 34 s b h bytes at 16 bit)
    embeddings and final norm                                       a 3 b T d
    logits: fp32 copy, log-softmax and its gradient                12 b T V

Measured against a real CPU run (tests/test_memory.py) the estimate is an upper bound within a small factor. A run
is refused when ``SAFETY`` x estimate + ``OVERHEAD_BYTES`` (the interpreter, torch, the data's page cache) exceeds
what the device has available: MemAvailable (and the cgroup limit, where one is set) on CPU, free device memory on
CUDA. ``SCALING_MEMORY_CHECK=0`` skips the check (the estimate is still recorded).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from scaling.core import archs
from scaling.core.family import Shape

SAFETY = 1.2
OVERHEAD_BYTES = 512 * 2**20
GiB = 2**30


@dataclass(frozen=True)
class MemoryEstimate:
    params: int
    state_bytes: int  # weights, gradients, AdamW moments
    activation_bytes: int  # for one micro-batch

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.activation_bytes

    @property
    def needed_bytes(self) -> int:
        """What must be available for the run to start: the estimate with a safety margin and a fixed overhead."""
        return int(SAFETY * self.total_bytes) + OVERHEAD_BYTES


def estimate(shape: Shape, micro_batch_size: int, *, bytes_per_activation: int = 4) -> MemoryEstimate:
    b, T, d, L, h = micro_batch_size, shape.seq_len, shape.d_model, shape.n_layer, shape.n_head
    P = shape.params_total()
    a = bytes_per_activation
    # GELU MLP: up and GELU out per d_ff; SwiGLU (3 matrices): gate, Swish, up and their product per d_ff
    mlp = 2 if archs.get(shape.arch).mlp_matrices == 2 else 4
    per_layer = b * T * (10 * d + mlp * shape.d_ff) + 2 * b * h * T * T
    acts = a * (L * per_layer + 3 * b * T * d) + 12 * b * T * shape.vocab_size
    return MemoryEstimate(P, 16 * P, acts)


def available_bytes(device) -> int | None:
    """Memory this process can still use on ``device`` (a torch.device); None where it cannot be told."""
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
    except OSError:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    try:  # a container's limit (cgroup v2) can be far below the machine's
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            used = int(Path("/sys/fs/cgroup/memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def check_enabled() -> bool:
    return os.environ.get("SCALING_MEMORY_CHECK", "1") != "0"
