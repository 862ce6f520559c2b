"""Training throughput of the model family on this machine: tokens/s and achieved FLOP/s per size.

    python -m scaling.bench [--sizes 1e4 3e4 1e5 3e5 1e6] [--seq-len 128] [--batch-size 16] [--threads 1 2]

Measures real optimizer steps (forward, backward, AdamW) on random tokens after a warm-up, fp32 on CPU, bf16 autocast
on CUDA. Prints figures; asserts nothing (these machines are noisy: compare ratios measured in one run).
"""
from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from scaling.family import shape_for
from scaling.flops import flops_per_token
from scaling.model import GPT


def measure(size: str, *, seq_len: int, batch_size: int, vocab_size: int, device: str, head_size: int = 8,
            steps: int = 10) -> dict:
    shape = shape_for(size, vocab_size=vocab_size, seq_len=seq_len, head_size=head_size)
    model = GPT(shape).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.startswith("cuda"))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else nullcontext()
    x = torch.randint(0, vocab_size, (batch_size, seq_len), device=device)

    def step():
        with autocast:
            _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    tps = steps * batch_size * seq_len / dt
    fpt = flops_per_token(shape)
    return {"size": size, "N": shape.params_non_embedding(), "tokens_per_s": tps,
            "gflops_chinchilla": tps * fpt["chinchilla"] / 1e9, "gflops_6n": tps * fpt["6n"] / 1e9}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m scaling.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=["6e3", "1.4e4", "2.5e4", "4e4", "5.6e4", "7.6e4", "1e5", "1.55e5", "1e6"])
    p.add_argument("--head-size", type=int, default=8, help="8: the shapes of the CPU preset")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--vocab-size", type=int, default=512)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = p.parse_args(argv)
    print(f"device={a.device} torch={torch.__version__} seq_len={a.seq_len} batch={a.batch_size} V={a.vocab_size}")
    threads = a.threads if a.device == "cpu" else [torch.get_num_threads()]
    print(f"{'size':>6} {'N':>10} " + " ".join(f"{'tok/s@' + str(t) + 'thr':>14} {'GFLOP/s':>8}" for t in threads))
    for size in a.sizes:
        cells = []
        n = None
        for t in threads:
            torch.set_num_threads(t)
            r = measure(size, seq_len=a.seq_len, batch_size=a.batch_size, vocab_size=a.vocab_size, device=a.device,
                        head_size=a.head_size)
            n = r["N"]
            cells.append(f"{r['tokens_per_s']:>14,.0f} {r['gflops_chinchilla']:>8.1f}")
        print(f"{size:>6} {n:>10,} " + " ".join(cells), flush=True)


if __name__ == "__main__":
    main()
