"""What this machine is (cores, ISA, memory) and the run defaults that fit it: threads per run, runs in parallel, dtype.

Torch-free, so a sweep launcher or the dry run can ask without paying for torch's import. The choices are recorded in
each run's summary (``threads``, ``dtype``, ``cpu_isa``) and each can be overridden (train.threads, train.dtype,
the launcher's n_jobs).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

# below this many non-embedding parameters a run cannot keep two cores busy (its matmuls are a few KB): one thread
# per run and one run per core trains more tokens per second in all (the CPU preset's measured choice)
SMALL_MODEL_PARAMS = 1_000_000
# a run's resident memory at the CPU preset's sizes (interpreter, torch, the memory-mapped corpus), with margin
RUN_MEMORY_BYTES = 1 << 30
ISA_ORDER = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


@dataclass(frozen=True)
class Machine:
    cores: int  # cores this process may run on (affinity), not the host's
    flags: frozenset[str]  # CPU feature flags of interest, from /proc/cpuinfo
    memory_bytes: int | None  # available memory; None where unknown

    @property
    def isa(self) -> str:
        """The best vector ISA present: amx_bf16, avx512_bf16, avx512f, avx2 or 'baseline'."""
        return next((f for f in ISA_ORDER if f in self.flags), "baseline")

    @property
    def native_bf16(self) -> bool:
        """bf16 matmuls in hardware (AVX512_BF16 or AMX): bf16 autocast speeds training up instead of emulating."""
        return bool({"avx512_bf16", "amx_bf16"} & self.flags)

    def threads_per_run(self, params_non_embedding: int) -> int:
        return 1 if params_non_embedding < SMALL_MODEL_PARAMS else self.cores

    def runs_in_parallel(self, params_non_embedding: int) -> int:
        by_cores = max(1, self.cores // self.threads_per_run(params_non_embedding))
        if self.memory_bytes is None:
            return by_cores
        return max(1, min(by_cores, self.memory_bytes // RUN_MEMORY_BYTES))

    def cpu_dtype(self) -> str:
        """fp32, or bf16 autocast where the CPU computes bf16 natively (elsewhere it is emulated and slower)."""
        return "bf16" if self.native_bf16 else "fp32"

    def describe(self) -> str:
        mem = f"{self.memory_bytes / 2**30:.1f} GiB available" if self.memory_bytes else "memory unknown"
        return f"{self.cores} core(s), ISA {self.isa} (native bf16: {'yes' if self.native_bf16 else 'no'}), {mem}"


def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split()) & frozenset(ISA_ORDER)
    except OSError:
        pass
    return frozenset()


def _memory_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@lru_cache(maxsize=1)
def detect() -> Machine:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return Machine(cores=cores, flags=_cpu_flags(), memory_bytes=_memory_available())
