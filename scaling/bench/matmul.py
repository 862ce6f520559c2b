"""The matmul rate a device really reaches: the ceiling that the benchmarks measure MFU against, timed on this machine
rather than taken from a datasheet (a shared machine's load moves it, so callers time it beside what they compare)."""

from __future__ import annotations

import time

import torch


def matmul_rate(dtype: torch.dtype, n: int = 512, seconds: float = 0.3, device: str = "cpu") -> float:
    """FLOP/s of an n x n x n matmul (2 n^3 FLOPs) on ``device`` at this process's threads, after a warm-up: the best
    of 3 windows of ``seconds / 3`` each."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    cuda = device.startswith("cuda")
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        if cuda:
            torch.cuda.synchronize()
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            a @ b
            if cuda:  # CUDA is asynchronous: a matmul is timed once it has finished
                torch.cuda.synchronize()
            k += 1
        best = max(best, 2 * n**3 * k / (time.perf_counter() - t0))
    return best
