"""Training speed of the harness measured side by side with a plain nanoGPT-style loop, on this machine, in one process.

    python -m scaling.bench                   # step: harness vs reference per size, fp32 (+ bf16 where native)
    python -m scaling.bench --sizes 6e3 1e6 --dtypes fp32 --repeats 7
    python -m scaling.bench --run             # also a whole `scaling.train.entry` run against its step-only figure
    python -m scaling.bench --overhead        # the fixed cost of one run, stage by stage

    python -m scaling.bench --compile         # also the harness step under torch.compile (compile time apart)

The harness side calls scaling/train/loop.py's ``optimizer_step`` exactly as the trainer does (its model, AdamW groups,
clipping, loss read-back, batches from the real prepared Dataset, its process set up as scaling/train/lifecycle.py
sets it up); the reference side is scaling/bench/reference.py in a plain Python process. Each side runs in a process
of its own (spawned, so the reference inherits nothing of the harness's process settings, such as its allocator's), and
the parent has them run blocks of steps in turn (A B, B A, A B ...) so both see the same machine load; the ratio
(harness / reference tokens/s) is reported as the median with its min-max over the repeats. The compiled side (with
--compile) takes its turn in the same rotation; its compile time (its first step, less a steady one, with an empty
inductor cache) is reported apart from its tokens/s. MFU is against the matmul rate measured beside each round (one
512x512 matmul, same threads and dtype), with training FLOPs per token under the Chinchilla convention (every matmul,
embeddings and final logits included); faults/step are each side's page faults per step. Prints figures; asserts
nothing (shared machines are noisy: read ratios, not absolute numbers).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

import torch

from scaling.bench.matmul import matmul_rate
from scaling.bench.reference import ReferenceTrainer
from scaling.config.schema import Config, plan
from scaling.core.flops import flops_per_token
from scaling.data.batches import Dataset
from scaling.data.cache import prepare
from scaling.launch import machine
from scaling.train.loop import Compute, LoopSpec, optimizer_step
from scaling.train.state import new_state

DEFAULT_SIZES = ["6e3", "1e5", "1e6", "5e6"]


def bench_config(size: str, *, seq_len: int, batch_size: int, head_size: int, dtype: str) -> Config:
    cfg = Config()
    cfg.model.size, cfg.model.seq_len, cfg.model.head_size = size, seq_len, head_size
    cfg.train.tokens, cfg.train.batch_size, cfg.train.dtype = 1e9, batch_size, dtype
    return cfg


class HarnessStep:
    """The trainer's own step: state from ``new_state``, ``optimizer_step`` with the run's LoopSpec and Compute; with
    ``compile``, the forward pass under ``torch.compile`` as scaling/train/lifecycle.py wraps it."""

    def __init__(self, cfg: Config, ds: Dataset, compute: Compute, compile: bool = False):
        self.plan, t = plan(cfg), cfg.train
        self.state = new_state(
            self.plan.shape,
            compute.device,
            seed=0,
            lr=self.plan.lr,
            weight_decay=t.weight_decay,
            betas=(t.beta1, t.beta2),
            started="",
            fused=compute.fused_optimizer,
        )
        self.forward = torch.compile(self.state.model) if compile else self.state.model
        self.spec, self.ds, self.compute, self.k = LoopSpec.of(t, self.plan), ds, compute, 0

    def step(self) -> float:
        loss, _ = optimizer_step(
            self.state.model, self.forward, self.state.optimizer, self.ds, self.spec, self.k, self.compute
        )
        self.k += 1
        return loss


SIDES = ("harness", "reference", "compiled")


def _serve(conn, side: str, size: str, seq_len: int, batch_size: int, head_size: int, dtype: str, threads: int):
    """One side of the comparison, in its own process: build it, then run blocks of steps when asked."""
    torch.set_num_threads(threads)
    compute = Compute(torch.device("cpu"), dtype == "bf16")
    cfg = bench_config(size, seq_len=seq_len, batch_size=batch_size, head_size=head_size, dtype=dtype)
    if side != "reference":
        machine.keep_freed_memory()  # as scaling/train/lifecycle.py sets up a run's process
    cache = tempfile.TemporaryDirectory(prefix="scaling-bench-inductor-")
    if side == "compiled":  # a cold compile, as a fresh machine's first run of a shape pays (not inductor's disk cache)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache.name
    ds = Dataset.load(prepare("shakespeare", vocab_size=512), verified=True)
    trainer: ReferenceTrainer | HarnessStep
    if side == "reference":
        torch.manual_seed(0)
        trainer = ReferenceTrainer(
            plan(cfg).shape, ds.train, batch_size=batch_size, device=compute.device, bf16=compute.bf16
        )
    else:
        trainer = HarnessStep(cfg, ds, compute, compile=side == "compiled")
    t0 = time.perf_counter()
    trainer.step()  # the compiled side compiles here (forward and backward)
    first = time.perf_counter() - t0
    for _ in range(2):  # warm-up: allocator, optimizer state, first-call dispatch
        trainer.step()
    t0 = time.perf_counter()
    trainer.step()
    conn.send({"first_step": first, "step": time.perf_counter() - t0})
    while (n := conn.recv()) is not None:
        faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        for _ in range(n):
            trainer.step()
        conn.send((time.perf_counter() - t0, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / n))
    cache.cleanup()


class Side:
    """A side's process, spawned fresh: nothing of the parent's (or the other side's) process state is shared."""

    def __init__(self, side: str, **kwargs):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, side), kwargs=kwargs, daemon=True)
        self.proc.start()
        self.ready = self.conn.recv()

    def run(self, n_steps: int) -> tuple[float, float]:
        """(seconds, page faults per step) for ``n_steps`` steps."""
        self.conn.send(n_steps)
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(timeout=30)


def side_by_side(
    size: str,
    *,
    seq_len: int,
    batch_size: int,
    head_size: int,
    dtype: str,
    repeats: int,
    block_seconds: float,
    threads: int,
    compile: bool = False,
) -> dict:
    cfg = bench_config(size, seq_len=seq_len, batch_size=batch_size, head_size=head_size, dtype=dtype)
    shape = plan(cfg).shape
    names = [n for n in SIDES if compile or n != "compiled"]
    sides = {
        n: Side(n, size=size, seq_len=seq_len, batch_size=batch_size, head_size=head_size, dtype=dtype, threads=threads)
        for n in names
    }
    try:
        n_steps = max(2, round(block_seconds / max(sides["harness"].ready["step"], 1e-6)))
        tokens = n_steps * batch_size * seq_len
        fpt = flops_per_token(shape)["chinchilla"]
        rates: dict[str, list[float]] = {n: [] for n in names}
        mfu: dict[str, list[float]] = {n: [] for n in names}
        faults: dict[str, list[float]] = {n: [] for n in names}
        for i in range(repeats):
            # the matmul ceiling beside each round, since a shared machine's load moves; A B then B A, so drift cancels
            peak = matmul_rate(torch.bfloat16 if dtype == "bf16" else torch.float32, seconds=0.1)
            for name in names if i % 2 == 0 else names[::-1]:
                seconds, per_step = sides[name].run(n_steps)
                rates[name].append(tokens / seconds)
                mfu[name].append(rates[name][-1] * fpt / peak)
                faults[name].append(per_step)
    finally:
        for side in sides.values():
            side.close()
    out = {
        "size": size,
        "N": shape.params_non_embedding(),
        "shape": f"L{shape.n_layer} d{shape.d_model} h{shape.n_head}",
        "steps_per_block": n_steps,
    }
    for name in names:
        out[name] = statistics.median(rates[name])
        out[f"mfu_{name}"] = statistics.median(mfu[name])
        out[f"faults_{name}"] = statistics.median(faults[name])
        if name != "reference":
            ratios = [h / r for h, r in zip(rates[name], rates["reference"])]
            out[f"ratio_{name}"] = (statistics.median(ratios), min(ratios), max(ratios))
    if compile:
        c = sides["compiled"].ready
        out["compile_seconds"] = c["first_step"] - c["step"]
    return out


def whole_run(size: str, budget: float, *, threads: int, dtype: str) -> None:
    """A real run of the CPU preset's shape through ``python -m scaling.train``: whole-run against step-only tok/s."""
    from scaling.core import records

    with tempfile.TemporaryDirectory() as out:
        args = [
            sys.executable,
            "-m",
            "scaling.train",
            f"model.size={size}",
            f"train.budget={budget}",
            "model.head_size=8",
            "model.seq_len=128",
            f"train.threads={threads}",
            f"train.dtype={dtype}",
            "log.progress=false",
            f"results_dir={out}",
            "sweep=bench",
            "hydra.run.dir=" + out + "/hydra",
            "hydra.output_subdir=null",
        ]
        t0 = time.perf_counter()
        r = subprocess.run(args, capture_output=True, text=True)
        process = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr[-2000:])
            return
        run_dir = next((Path(out) / "bench").iterdir())
        s = records.read_summary(run_dir)
        m = records.read_metrics(run_dir)
        step_s = float((s.tokens_per_step / m["tokens_per_second"]).sum())
        print(
            f"\nwhole run: size={size} budget={budget:g} N={s.params_non_embedding:,} tokens={s.tokens_trained:,} "
            f"steps={s.steps} dtype={s.dtype} threads={threads}"
        )
        print(f"  step-only {s.tokens_trained / step_s:>10,.0f} tok/s   ({step_s:.2f} s in optimizer steps)")
        print(
            f"  in-run    {s.tokens_trained / s.wall_seconds:>10,.0f} tok/s   ({s.wall_seconds:.2f} s: steps, "
            f"evaluations, checkpoints, final writes)"
        )
        print(
            f"  process   {s.tokens_trained / process:>10,.0f} tok/s   ({process:.2f} s: the whole command, "
            f"interpreter start to exit)"
        )
        print(f"  outside training steps: {1 - step_s / process:.0%} of the process's wall time")


def overhead(threads: int) -> None:
    """The fixed cost of one small run, stage by stage, each stage in a fresh interpreter where that is the cost."""

    def timed(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - t0

    py = timed("pass")
    print(f"\nfixed cost of a run (threads={threads}; fresh interpreters, median of 3)")
    print(f"  {'interpreter start':<34} {py:6.2f} s")
    for name, code in [
        ("import torch", "import torch"),
        ("import scaling.train.entry (torch, hydra)", "import scaling.train.entry"),
    ]:
        print(f"  {name:<34} {statistics.median(timed(code) for _ in range(3)) - py:6.2f} s")
    # the stages of run(), in this process, as scaling/train/lifecycle.py does them
    from hydra import compose, initialize_config_module

    import scaling.train.entry  # noqa: F401  (registers the typed base config with Hydra)
    from scaling.core import records
    from scaling.train.lifecycle import resolve
    from scaling.train.loop import compute_for, evaluate
    from scaling.train.state import save_weights

    stages = {}
    t = time.perf_counter()
    with initialize_config_module("scaling.conf", version_base=None):
        dc = compose(
            "config",
            overrides=[
                "model.size=6e3",
                "train.budget=6e11",
                "model.head_size=8",
                f"train.threads={threads}",
                "log.progress=false",
            ],
        )
    stages["Hydra composition"] = time.perf_counter() - t
    from omegaconf import OmegaConf

    t = time.perf_counter()
    cfg = cast(Config, OmegaConf.to_object(dc))  # the structured schema's instance (stubs say Any)
    with tempfile.TemporaryDirectory() as out:
        cfg.results_dir = out
        spec = resolve(cfg)
        compute = compute_for(cfg.train)
        stages["resolve (validate, plan)"] = time.perf_counter() - t
        t = time.perf_counter()
        ds = Dataset.load(prepare(cfg.data.source, vocab_size=cfg.data.vocab_size), verified=True)
        stages["data opening (cache hit)"] = time.perf_counter() - t
        t = time.perf_counter()
        import torch._dynamo  # noqa: F401  (torch's optimizers import it on their first call; shown on its own)

        stages["torch._dynamo import (by AdamW)"] = time.perf_counter() - t
        t = time.perf_counter()
        h = HarnessStep(cfg, ds, compute)
        stages["model + optimizer build"] = time.perf_counter() - t
        t = time.perf_counter()
        h.step()
        stages["first optimizer step"] = time.perf_counter() - t
        t = time.perf_counter()
        h.step()
        later = time.perf_counter() - t
        t = time.perf_counter()
        evaluate(
            h.state.model, ds, eval_tokens=len(ds.val), batch_size=32, seq_len=spec.plan.shape.seq_len, compute=compute
        )
        stages["final evaluation (whole val split)"] = time.perf_counter() - t
        t = time.perf_counter()
        spec.run_dir.mkdir(parents=True)
        save_weights(h.state.model, spec.run_dir / records.WEIGHTS_FILE)
        records.write_metrics(spec.run_dir, [])
        stages["final writes (weights, metrics)"] = time.perf_counter() - t
    for k, v in stages.items():
        print(f"  {k:<34} {v:6.2f} s")
    print(f"  (a later optimizer step: {later:.3f} s; this run has {spec.plan.steps} steps)")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m scaling.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", nargs="+", default=DEFAULT_SIZES, help="non-embedding parameter targets")
    p.add_argument("--head-size", type=int, default=8, help="8: the shapes of the CPU preset")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the CPU preset runs 1 per run)")
    p.add_argument("--dtypes", nargs="+", default=None, help="fp32 and/or bf16; default fp32, plus bf16 where native")
    p.add_argument("--repeats", type=int, default=5, help="A/B pairs per size")
    p.add_argument("--block-seconds", type=float, default=0.5, help="about this long per timed block of steps")
    p.add_argument("--compile", action="store_true", help="also the harness step under torch.compile (slow to start)")
    p.add_argument(
        "--run", action="store_true", help="also a whole scaling.train.entry run against its step-only figure"
    )
    p.add_argument("--overhead", action="store_true", help="only the fixed cost of a run, stage by stage")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    m = machine.detect()
    load = os.getloadavg()
    print(
        f"{m.describe()}; torch {torch.__version__}, {a.threads} thread(s); load average {load[0]:.1f} "
        f"{load[1]:.1f} {load[2]:.1f}"
    )
    if a.overhead:
        overhead(a.threads)
        return
    dtypes = a.dtypes or (["fp32", "bf16"] if m.native_bf16 else ["fp32"])
    prepare("shakespeare", vocab_size=512)  # once, before the sides load it
    peak = {d: matmul_rate(torch.float32 if d == "fp32" else torch.bfloat16) for d in dtypes}
    print(
        "matmul rate (512x512, at start; MFU uses the rate measured beside each round): "
        + ", ".join(f"{d} {v / 1e9:.1f} GFLOP/s" for d, v in peak.items())
    )
    print(
        f"seq_len={a.seq_len} batch={a.batch_size} head_size={a.head_size} repeats={a.repeats} (A B, B A, ...); "
        f"each side in its own process\n"
    )
    head = (
        f"{'dtype':<5} {'size':>5} {'N':>10} {'shape':>13} {'harness tok/s':>14} {'reference':>10} "
        f"{'ratio':>6} {'min-max':>11} {'MFU harness':>11} {'MFU ref':>8} {'faults/step h r':>15}"
    )
    if a.compile:
        head += f" {'compiled tok/s':>14} {'ratio':>6} {'min-max':>11} {'MFU comp':>8} {'compile s':>9}"
    print(head)
    for d in dtypes:
        for size in a.sizes:
            r = side_by_side(
                size,
                seq_len=a.seq_len,
                batch_size=a.batch_size,
                head_size=a.head_size,
                dtype=d,
                repeats=a.repeats,
                block_seconds=a.block_seconds,
                threads=a.threads,
                compile=a.compile,
            )
            ratio, lo, hi = r["ratio_harness"]
            line = (
                f"{d:<5} {size:>5} {r['N']:>10,} {r['shape']:>13} {r['harness']:>14,.0f} {r['reference']:>10,.0f} "
                f"{ratio:>6.3f} {lo:>5.2f}-{hi:<5.2f} {r['mfu_harness']:>11.1%} {r['mfu_reference']:>8.1%} "
                f"{r['faults_harness']:>7,.0f} {r['faults_reference']:>7,.0f}"
            )
            if a.compile:
                ratio, lo, hi = r["ratio_compiled"]
                line += (
                    f" {r['compiled']:>14,.0f} {ratio:>6.3f} {lo:>5.2f}-{hi:<5.2f} {r['mfu_compiled']:>8.1%} "
                    f"{r['compile_seconds']:>9.1f}"
                )
            print(line, flush=True)
    if a.run:
        whole_run("6e3", 6e11, threads=a.threads, dtype="auto")


if __name__ == "__main__":
    main()
