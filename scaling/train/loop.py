"""The step loop: one optimizer step, one evaluation, and the loop over steps that turns a run's state forward.

Nothing here knows about run directories, checkpoints, signals or summaries (scaling/train/lifecycle.py does that
bookkeeping), so data parallelism can wrap ``optimizer_step`` and a benchmark can time it on its own. A step is a
pure function of (state, step): the batch is drawn from (seed, step, micro-batch index), so a resumed or branched
state goes on exactly as the original would have.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Iterator

import torch

from scaling.config.schema import COMPILE_CHOICES, ConfigError, Plan, TrainConfig
from scaling.data.batches import Dataset
from scaling.launch import machine
from scaling.launch.distributed import SINGLE, World, no_sync, shard
from scaling.train.state import RunState


@dataclass(frozen=True)
class Compute:
    """Where and in what precision a run computes."""

    device: torch.device
    bf16: bool

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()

    @property
    def fused_optimizer(self) -> bool:
        """Fused AdamW on CUDA, and in bf16 (whose numbers differ from fp32's anyway); fp32 on CPU keeps the
        per-tensor loop, so ``train.dtype=fp32`` trains bit for bit as it always did."""
        return self.device.type == "cuda" or self.bf16

    def sync(self) -> None:
        """CUDA work is asynchronous: a step is timed only once it has finished."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def device_for(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device={name!r}: must be cuda:0 .. cuda:{torch.cuda.device_count() - 1} here")
    return dev


def compute_for(t: TrainConfig) -> Compute:
    """The device and precision a train config asks for, on this machine: ``auto`` is bf16 autocast on CUDA and on CPUs
    that compute bf16 natively (AVX512_BF16, AMX: faster than fp32 there; figures in README.md, "One run"), fp32
    elsewhere. ``train.dtype=fp32`` trains bit for bit as before bf16 became the CPU default."""
    device = device_for(t.device)
    bf16 = t.dtype == "bf16" or (t.dtype == "auto" and (device.type == "cuda" or machine.detect().native_bf16))
    if bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if t.dtype == "bf16":
            raise ConfigError(f"train.dtype='bf16': {torch.cuda.get_device_name(device)} does not support bf16")
        bf16 = False  # auto on an older GPU: fp32 (recorded as such)
    return Compute(device, bf16)


def compile_for(t: TrainConfig, compute: Compute, plan: Plan) -> bool:
    """Whether the run compiles its forward pass: ``train.compile`` when set, else the machine's default for the
    device, dtype, size and length (scaling/launch/machine.py ``compile_default``)."""
    choice = COMPILE_CHOICES[str(t.compile).lower()]
    if choice is not None:
        return choice
    return machine.compile_default(compute.device.type, compute.bf16, plan.shape.params_non_embedding(), plan.steps)


@dataclass(frozen=True)
class LoopSpec:
    """What the loop needs from a run's config and plan: batches, clipping, schedule, evaluation."""

    plan: Plan
    seed: int
    micro_batch_size: int
    n_micro: int
    grad_clip: float
    eval_interval: int
    eval_tokens: int
    final_eval_tokens: int  # 0: the whole validation split
    world: World = SINGLE  # data parallelism: this rank's share of each batch (scaling/launch/distributed.py)

    @classmethod
    def of(cls, t: TrainConfig, plan: Plan) -> "LoopSpec":
        micro = t.micro_batch_size or t.batch_size
        return cls(
            plan,
            t.seed,
            micro,
            t.batch_size // micro,
            t.grad_clip,
            t.eval_interval or auto_eval_interval(plan.steps, plan.tokens_per_step, t.eval_tokens),
            t.eval_tokens,
            t.final_eval_tokens,
        )


# Intermediate evaluations draw the curves; the fits use the final loss (whole validation split). A forward pass costs
# about a third of a training step per token, so this share of the trained tokens, evaluated, costs ~5% of training.
EVAL_TOKEN_SHARE = 0.15


def auto_eval_interval(steps: int, tokens_per_step: int, eval_tokens: int) -> int:
    """Steps between intermediate evaluations when train.eval_interval=0: 16 per run, fewer where 16 would cost more
    than ~5% of training (short runs), at least 2 (a midpoint and the end)."""
    n = min(16, max(2, int(EVAL_TOKEN_SHARE * steps * tokens_per_step / eval_tokens)))
    return max(1, math.ceil(steps / n))


def optimizer_step(
    model: torch.nn.Module,
    forward,
    opt: torch.optim.Optimizer,
    ds: Dataset,
    spec: LoopSpec,
    step: int,
    compute: Compute,
) -> tuple[float, float]:
    """Step ``step`` (0-based): accumulate the batch's gradients over micro-batches, clip, update. (train loss, lr)."""
    lr = spec.plan.schedule.lr_at(step)
    for g in opt.param_groups:
        g["lr"] = lr
    seq_len, device = spec.plan.shape.seq_len, compute.device
    losses = []
    mine = shard(spec.world, spec.n_micro, spec.micro_batch_size)  # every (micro, rows) in one process
    for i, (k, rows) in enumerate(mine):
        x, y = ds.train_batch(spec.seed, step, k, spec.micro_batch_size, seq_len)
        x, y = x[rows], y[rows]
        xb, yb = torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(y).to(device, non_blocking=True)
        with no_sync(forward, last=i == len(mine) - 1):
            with compute.autocast():
                _, loss = forward(xb, yb)
            # one micro-batch: no division (x / 1 and its backward are exact, so the numbers are the same)
            (loss / len(mine) if len(mine) > 1 else loss).backward()
        losses.append(loss.detach())
    if spec.grad_clip > 0:
        # foreach: one fused norm over all gradients (10x faster on CPU for small models, the same numbers bit for bit)
        torch.nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip, foreach=True)
    opt.step()
    opt.zero_grad(set_to_none=True)
    # one host sync per step, not one per micro-batch; summed in Python, in order, as before
    total = losses[0].item() if len(losses) == 1 else sum(torch.stack(losses).tolist())
    return spec.world.mean(total / len(mine), device), lr


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, ds: Dataset, *, eval_tokens: int, batch_size: int, seq_len: int, compute: Compute
) -> float:
    """Mean validation loss (nats/token) over a fixed, evenly spread ``eval_tokens`` of the validation split."""
    model.eval()
    total, count = 0.0, 0
    for x, y in ds.val_batches(eval_tokens, batch_size, seq_len):
        xb, yb = torch.from_numpy(x).to(compute.device), torch.from_numpy(y).to(compute.device)
        with compute.autocast():
            _, loss = model(xb, yb)
        total += loss.item() * y.size
        count += y.size
    model.train()
    return total / count


def steps(state: RunState, ds: Dataset, spec: LoopSpec, compute: Compute, forward=None) -> Iterator[dict]:
    """Train ``state`` forward one optimizer step at a time until the plan's last step; yield each step's metrics row.

    The row is also appended to ``state.rows`` and the FLOP counters advanced before it is yielded, so the caller
    sees a consistent state at every yield and may stop there (checkpoint, halt, preemption, divergence).
    """
    p = spec.plan
    forward = state.model if forward is None else forward  # not `or`: a compiled module has no truth value
    state.model.train()
    while state.step < p.steps:
        compute.sync()
        t0 = time.perf_counter()
        train_loss, lr = optimizer_step(state.model, forward, state.optimizer, ds, spec, state.step, compute)
        compute.sync()
        dt = time.perf_counter() - t0
        state.step += 1
        step = state.step
        for c in state.counters:
            state.counters[c] += p.flops_per_token[c] * p.tokens_per_step
        val = subset = float("nan")
        if step % spec.eval_interval == 0 or step == p.steps:
            # the final loss, the number every fit uses, is measured on the whole validation split by default; the
            # final step also measures the intermediate points' subset, so a curve has one measure from start to end
            n_eval = (spec.final_eval_tokens or len(ds.val)) if step == p.steps else spec.eval_tokens
            for n in dict.fromkeys((spec.eval_tokens, n_eval)):  # one evaluation where the two are the same
                loss = evaluate(
                    state.model,
                    ds,
                    eval_tokens=n,
                    batch_size=max(spec.micro_batch_size, 32),
                    seq_len=p.shape.seq_len,
                    compute=compute,
                )
                subset = loss if n == spec.eval_tokens else subset
                val = loss if n == n_eval else val
        row = {
            "step": step,
            "tokens": step * p.tokens_per_step,
            **{f"flops_{c}": float(v) for c, v in state.counters.items()},
            "train_loss": float(train_loss),
            "val_loss": float(val),
            "lr": float(lr),
            "tokens_per_second": p.tokens_per_step / dt,
            "schedule_complete": bool(p.schedule.is_complete(step - 1)),
            "subset_val_loss": float(subset),
        }
        state.rows.append(row)
        yield row
