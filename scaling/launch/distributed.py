"""Data parallelism for one run across processes (torchrun, or SLURM tasks under submitit): start the process group,
say which rank this is, and shard the deterministic global batch between ranks.

    torchrun --nproc_per_node 2 -m scaling.train model.size=... train.tokens=... train.distributed=auto

The global batch of step ``s`` is ``train.batch_size`` sequences drawn as ``n_micro`` micro-batches, each a pure
function of (seed, s, micro index) (scaling/data/cache.py). With W ranks, rank r takes the micro-batches k with
k % W == r when W divides n_micro, else rows r, r+W, ... of every micro-batch when W divides the micro-batch size.
Each rank scales its loss by 1/(its micro-batches); DistributedDataParallel averages gradients over the W ranks, so the
update is the mean over the whole global batch, as in one process (up to the order of float additions). The train
loss recorded is the mean over ranks. Only rank 0 writes the run's records and checkpoints; every rank restores the
same checkpoint, so a resumed run goes on exactly as a one-process one would.

Backends: NCCL on CUDA (each rank on cuda:LOCAL_RANK), gloo on CPU.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass

import torch

from scaling.config.schema import ConfigError

MODES = ("auto", "off", "on")


@dataclass(frozen=True)
class World:
    """Where this process stands in a data-parallel run: rank, world size and local rank (1 process: 0, 1, 0)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes records, checkpoints and logs."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def mean(self, value: float, device: torch.device) -> float:
        """The mean of ``value`` over ranks (itself in one process)."""
        if not self.enabled:
            return value
        t = torch.tensor([value], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.size

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on any: ranks must stop (e.g. on a preemption signal) at one step."""
        if not self.enabled:
            return flag
        t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())


SINGLE = World()


def _env_world() -> World | None:
    """The world torchrun (RANK, WORLD_SIZE, LOCAL_RANK) or SLURM tasks under submitit describe; None when neither."""
    if "WORLD_SIZE" in os.environ and "RANK" in os.environ:
        return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit

        if submitit.JobEnvironment().num_tasks > 1:
            # several tasks of one submitit job (launcher preset slurm_ddp): submitit sets torchrun's variables
            env = submitit.helpers.TorchDistributedEnvironment().export()
            return World(env.rank, env.world_size, env.local_rank)
    return None


def setup(mode: str, device_name: str) -> World:
    """Join the process group this process was launched into (``train.distributed``): 'auto' when launched by
    torchrun or as several SLURM tasks, 'on' requires it, 'off' trains alone. Idempotent: a multirun reuses it."""
    if mode not in MODES:
        raise ConfigError(f"train.distributed={mode!r}: must be one of {MODES}")
    world = _env_world() if mode != "off" else None
    if world is None or world.size == 1:
        if mode == "on":
            raise ConfigError(
                "train.distributed='on': this process was not launched by torchrun (no RANK and "
                "WORLD_SIZE in its environment) nor as several SLURM tasks; launch it with "
                "`torchrun --nproc_per_node N -m scaling.train ...` or use 'auto'"
            )
        return SINGLE
    if not torch.distributed.is_initialized():
        cuda = device_name != "cpu" and torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(world.local_rank)
        torch.distributed.init_process_group("nccl" if cuda else "gloo", rank=world.rank, world_size=world.size)
        # left to interpreter teardown, the group's threads were sometimes still joinable when C++ destructors ran:
        # 'terminate called without an active exception', SIGABRT, exit -6 (seen once in ~10 torchrun test runs)
        atexit.register(_leave)
    return world


def _leave() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def device_name(world: World, name: str) -> str:
    """Each rank of a data-parallel CUDA run computes on its own GPU, cuda:LOCAL_RANK."""
    if world.enabled and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{world.local_rank}"
    return name


def check_shardable(world: World, batch_size: int, micro_batch_size: int) -> None:
    n_micro = batch_size // micro_batch_size
    if world.enabled and n_micro % world.size and micro_batch_size % world.size:
        raise ConfigError(
            f"train.batch_size={batch_size} with train.micro_batch_size={micro_batch_size} ({n_micro} micro-batches) "
            f"cannot be shared by {world.size} ranks: the number of micro-batches or the micro-batch size must be a "
            f"multiple of {world.size}"
        )


def shard(world: World, n_micro: int, micro_batch_size: int) -> list[tuple[int, slice]]:
    """This rank's part of the global batch: (micro-batch index, rows of that micro-batch) pairs."""
    if not world.enabled:
        return [(k, slice(None)) for k in range(n_micro)]
    if n_micro % world.size == 0:
        return [(k, slice(None)) for k in range(world.rank, n_micro, world.size)]
    return [(k, slice(world.rank, micro_batch_size, world.size)) for k in range(n_micro)]


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """The model as the step loop calls it: DistributedDataParallel over the ranks, or the model itself."""
    if not world.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def no_sync(forward, last: bool):
    """Accumulate gradients locally on every micro-batch but the last; DDP all-reduces once per optimizer step."""
    sync_off = getattr(forward, "no_sync", None)
    return sync_off() if sync_off is not None and not last else contextlib.nullcontext()
