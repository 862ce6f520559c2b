"""This machine's training throughput per shape: a few real optimizer steps, timed, cached per machine and shape.

The planner (scaling/sweep/planned.py) turns these tokens/s into each run's predicted seconds. The cache lives in
``.cache/probe/throughput.json``, keyed by the machine (host, CPU or GPU, torch version, threads) and the shape (layers,
width, heads, MLP, vocabulary, sequence length, sequences per step); ``refresh=True`` measures again.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from scaling.config.schema import Config
from scaling.config.schema import plan as plan_run
from scaling.core import records

PROBE_DIR = Path(".cache/probe")
PROBE_MICRO = 16


def machine_key(threads: int) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"{cpu} {os.cpu_count()} cpus"
    return f"{platform.node()} | {dev} | torch {torch.__version__} | threads {threads}"


def probe(cfg: Config, *, seconds: float = 0.5, cache_dir: Path | None = None, refresh: bool = False) -> float:
    """Training tokens per second of ``cfg``'s shape and batch on this machine: a few real optimizer steps on random
    tokens after two warm-up steps, timed for about ``seconds``. Cached per machine and shape (.cache/probe/)."""
    import torch

    from scaling.model import registry
    from scaling.train.loop import compute_for

    p = plan_run(cfg)
    t = cfg.train
    threads = t.threads or torch.get_num_threads()
    mkey = machine_key(threads)
    s = p.shape
    # per-token cost hardly changes with batch beyond a few sequences on one core: probe at most PROBE_MICRO sequences
    # per step, so a 1e15-FLOP plan's big batches are probed in seconds (the optimizer's share is overstated a little)
    micro = min(t.micro_batch_size or t.batch_size, PROBE_MICRO)
    skey = (
        "" if s.arch == "gpt" else f"{s.arch} "
    ) + f"L{s.n_layer} d{s.d_model} h{s.n_head} ff{s.d_ff} V{s.vocab_size} s{s.seq_len} b{micro}"
    cache = (cache_dir or PROBE_DIR) / "throughput.json"
    table = json.loads(cache.read_text()) if cache.exists() else {}
    if not refresh and skey in table.get(mkey, {}):
        return float(table[mkey][skey])
    if t.threads:
        torch.set_num_threads(t.threads)
    compute = compute_for(t)
    torch.manual_seed(0)
    model = registry.build(s).to(compute.device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, s.vocab_size, (micro, s.seq_len + 1), device=compute.device)

    def step():
        with compute.autocast():
            _, loss = model(x[:, :-1], x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(2):
        step()
    compute.sync()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        step()
        n += 1
    compute.sync()
    tps = n * micro * s.seq_len / (time.perf_counter() - t0)
    table = json.loads(cache.read_text()) if cache.exists() else {}  # re-read: another probe may have written
    table.setdefault(mkey, {})[skey] = tps
    records.write_json_atomic(cache, table, indent=1, sort_keys=True)
    return tps
