"""What this machine is (cores, ISA, memory) and the run defaults that fit it: threads per run, runs in parallel, dtype,
torch.compile.

Torch-free, so a sweep launcher or the dry run can ask without paying for torch's import. The choices are recorded in
each run's summary (``threads``, ``dtype``, ``cpu_isa``, ``compile``) and each can be overridden (train.threads,
train.dtype, train.compile, the launcher's n_jobs).

The ISA is the CPU's, capped where torch is told to use less of it: ``ATEN_CPU_CAPABILITY=avx2`` (ATen's vectorised
kernels) and ``ONEDNN_MAX_CPU_ISA=AVX2`` (oneDNN, which runs torch's bf16 matmuls) make a newer CPU compute like an
AVX2-only one, and the defaults follow (fp32, since bf16 is then emulated). That emulates the instruction set only,
not an older chip's clock, caches or memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
from dataclasses import dataclass
from functools import lru_cache

# below this many non-embedding parameters a run cannot keep two cores busy (its matmuls are a few KB): one thread
# per run and one run per core trains more tokens per second in all (the CPU preset's measured choice)
SMALL_MODEL_PARAMS = 1_000_000
# a run's resident memory at the CPU preset's sizes (interpreter, torch, the memory-mapped corpus), with margin
RUN_MEMORY_BYTES = 1 << 30
ISA_ORDER = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")  # best first
# the best ISA each setting of torch's own switches lets it use (None: no cap); a value not listed caps nothing
ATEN_CAPS = {"default": "baseline", "avx2": "avx2", "avx512": None}
ONEDNN_CAPS = {
    "sse41": "baseline",
    "avx": "baseline",
    "avx2": "avx2",
    "avx2_vnni": "avx2",
    "avx2_vnni_2": "avx2",
    "avx512_core": "avx512f",
    "avx512_core_vnni": "avx512f",
    "avx512_core_bf16": "avx512_bf16",
    "avx512_core_fp16": "avx512_bf16",
    "avx10_1_512": "avx512_bf16",
    "avx512_core_amx": "amx_bf16",
    "avx512_core_amx_fp16": "amx_bf16",
    "avx10_1_512_amx": "amx_bf16",
    "avx10_1_512_amx_fp16": "amx_bf16",
    "all": None,
    "default": None,
}


@dataclass(frozen=True)
class Machine:
    cores: int  # cores this process may run on (affinity), not the host's
    flags: frozenset[str]  # CPU feature flags torch may use: /proc/cpuinfo's, less those an ISA cap turns off
    memory_bytes: int | None  # available memory; None where unknown
    capped_by: str = ""  # the environment setting that capped the ISA (e.g. "ATEN_CPU_CAPABILITY=avx2"), if any

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
        cap = f" capped by {self.capped_by}" if self.capped_by else ""
        return f"{self.cores} core(s), ISA {self.isa}{cap} (native bf16: {'yes' if self.native_bf16 else 'no'}), {mem}"


# torch.compile on CPU pays only where the compiled step saves more than compiling costs: fp32 steps are no faster
# compiled, bf16 steps are, by less than compiling costs in short runs. So on CPU: bf16, from 1M parameters, runs of at
# least twice the 1M break-even (the figures, measured with `python -m scaling.bench --compile`: README.md, "One run").
COMPILE_CPU_MIN_PARAMS = 900_000  # the bench's "1e6" is 997,920
COMPILE_CPU_MIN_STEPS = 4_000


def compile_default(device_type: str, bf16: bool, params_non_embedding: int, steps: int) -> bool:
    """Whether ``train.compile=auto`` compiles the forward pass: on CUDA, yes (not measured here; the usual advice,
    and the GPU preset turns it off for its short runs); on CPU, only where it was measured to pay (see above), and
    only with a C++ compiler for inductor to use."""
    if device_type == "cuda":
        return True
    return (
        device_type == "cpu"
        and bf16
        and params_non_embedding >= COMPILE_CPU_MIN_PARAMS
        and steps >= COMPILE_CPU_MIN_STEPS
        and shutil.which(os.environ.get("CXX", "g++")) is not None
    )


def isa_cap(environ=os.environ) -> tuple[str | None, str]:
    """The best ISA torch is allowed to use under ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA (DNNL_MAX_CPU_ISA), the
    lowest of them, and the setting that imposes it; (None, "") when nothing caps it."""
    caps = []
    for var, table in (
        ("ATEN_CPU_CAPABILITY", ATEN_CAPS),
        ("ONEDNN_MAX_CPU_ISA", ONEDNN_CAPS),
        ("DNNL_MAX_CPU_ISA", ONEDNN_CAPS),
    ):
        value = environ.get(var, "").strip()
        cap = table.get(value.lower())
        if cap is not None:
            caps.append((_rank(cap), cap, f"{var}={value}"))
    if not caps:
        return None, ""
    _, cap, setting = max(caps)  # the highest rank is the lowest ISA
    return cap, setting


def _rank(isa: str) -> int:
    return ISA_ORDER.index(isa) if isa in ISA_ORDER else len(ISA_ORDER)


def _capped(flags: frozenset[str], cap: str | None) -> frozenset[str]:
    return flags if cap is None else frozenset(f for f in flags if _rank(f) >= _rank(cap))


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
    cap, setting = isa_cap()
    flags = _cpu_flags()
    capped = _capped(flags, cap)
    return Machine(
        cores=cores, flags=capped, memory_bytes=_memory_available(), capped_by=setting if capped != flags else ""
    )


# glibc's malloc: M_TRIM_THRESHOLD and M_MMAP_THRESHOLD (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's ceiling for M_MMAP_THRESHOLD on 64-bit
_TRIM_THRESHOLD = 1 << 30


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for reuse instead of handing it back to the kernel after every step.

    A training step frees its activations (the 2048 x vocab logits and their gradients are 4 MB each at seq 128, batch
    16) and allocates them again the next step; by default glibc returns such blocks to the kernel and every new one is
    faulted in page by page, a large share of a small model's step (figures: README.md, "One run"). With allocations
    up to 32 MB served from the heap and the heap trimmed only above 1 GiB free, a step faults in almost no pages. The
    numbers are the same; the process's resident memory stays at its peak. glibc only (elsewhere a no-op,
    False); SCALING_KEEP_FREED_MEMORY=0 turns it off. Returns whether it was applied.
    """
    if os.environ.get("SCALING_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
