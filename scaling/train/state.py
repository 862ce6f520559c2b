"""A run's state as one value (model, optimizer, step, metric rows, wall time, FLOP counters) and its save and restore.

The state is everything a run needs to continue exactly where it stopped, so ``state.copy()`` (a deep copy: the copied
optimizer points at the copied model's parameters) is a branch of the run that can go its own way, and a checkpoint is
this value on disk. Checkpoints and weights are read with ``torch.load(..., weights_only=True)``: only tensors and
plain containers (dict, list, str, int, float, bool, None) load, so a tampered or foreign file is refused instead of
running the code a pickle can carry (``UnsafeFile``).
"""

from __future__ import annotations

import copy
import math
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from scaling.core import records
from scaling.core.family import Shape
from scaling.model import registry
from scaling.train import faults

CHECKPOINT_FORMAT = 2  # 1: the trainer before the reshape (no counters); still read, when it loads safely


class UnsafeFile(ValueError):
    """A checkpoint or weights file holding Python objects that ``weights_only=True`` refuses to rebuild."""


@dataclass
class RunState:
    model: torch.nn.Module  # scaling/model/registry.py: GPT, Llama or a user's class
    optimizer: torch.optim.Optimizer
    step: int = 0  # optimizer steps taken
    rows: list[dict] = field(default_factory=list)  # one metrics row per step taken (records.METRICS_COLUMNS)
    wall_seconds: float = 0.0  # wall time spent on the run up to the last save, over every process that ran it
    started: str = ""  # when step 0 began (ISO 8601, UTC)
    counters: dict[str, float] = field(default_factory=lambda: {c: 0.0 for c in records.FLOP_CONVENTIONS})
    resumes: int = 0  # times this state was restored from a checkpoint
    preemptions: int = 0  # times the run stopped on a signal with a checkpoint

    def copy(self) -> "RunState":
        """An independent copy (model, optimizer moments, rows): a branch that can train on without touching this
        one."""
        return copy.deepcopy(self)

    @property
    def best_val_loss(self) -> float:
        return min((r["val_loss"] for r in self.rows if not math.isnan(r["val_loss"])), default=math.inf)


# Below this many parameters the CPU's unfused AdamW runs as foreach (one call over all tensors): it computes the same
# numbers bit for bit as the per-tensor loop and saves its per-tensor Python overhead (349 -> 256 us a step at 6k
# non-embedding parameters). Above it the per-tensor loop is faster on CPU (1.9 vs 4.1 ms at 1M, 14 vs 19 ms at 5M:
# foreach materialises each intermediate for every tensor at once and falls out of cache). Measured on this project's
# 2-core EPYC, scaling/bench/side_by_side.py sizes, one thread.
FOREACH_MAX_PARAMS = 300_000


def new_state(
    shape: Shape,
    device: torch.device,
    *,
    seed: int,
    lr: float,
    weight_decay: float,
    betas,
    started: str,
    fused: bool | None = None,
) -> RunState:
    """Step 0: the model initialised from ``seed`` and a fresh AdamW (decay on matrices only). ``fused``: the fused
    AdamW kernel (default: on CUDA); on CPU it is 3x faster than the per-tensor loop but rounds differently. Unfused on
    CPU, small models take the foreach implementation, which rounds exactly as the per-tensor loop does."""
    torch.manual_seed(seed)
    model = registry.build(shape)  # its parameter count checked against the analytic one
    model.to(device)
    decay = [q for q in model.parameters() if q.dim() >= 2]
    no_decay = [q for q in model.parameters() if q.dim() < 2]
    fused = device.type == "cuda" if fused is None else fused
    # None: torch's own choice (foreach on CUDA, the per-tensor loop on CPU)
    foreach = True if not fused and device.type == "cpu" and shape.params_total() < FOREACH_MAX_PARAMS else None
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=lr,
        betas=tuple(betas),
        fused=fused,
        foreach=foreach,
    )
    return RunState(model, opt, started=started)


def save_checkpoint(state: RunState, path: Path) -> None:
    """Write the state atomically: a crash leaves the previous checkpoint, never a half-written one."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": state.model.state_dict(),
        "optimizer": state.optimizer.state_dict(),
        "step": int(state.step),
        "rows": [_plain(r) for r in state.rows],
        "wall_seconds": float(state.wall_seconds),
        "started": str(state.started),
        "counters": {k: float(v) for k, v in state.counters.items()},
        "resumes": int(state.resumes),
        "preemptions": int(state.preemptions),
    }
    records.write_file_atomic(
        Path(path), lambda tmp: torch.save(payload, tmp), faults.before_replace("checkpoint.write")
    )


def restore(state: RunState, path: Path, *, total_steps: int) -> None:
    """Load a checkpoint into ``state`` (in place). Raises UnsafeFile, or ValueError for one that does not fit."""
    ck = safe_load(path, map_location=next(state.model.parameters()).device)
    if not isinstance(ck, dict) or ck.get("format", 1) not in (1, CHECKPOINT_FORMAT):
        got = ck.get("format") if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"checkpoint format {got!r}, this trainer reads formats 1 and {CHECKPOINT_FORMAT}")
    step, rows = int(ck["step"]), list(ck["rows"])
    if not (0 < step < total_steps and len(rows) == step and [r["step"] for r in rows] == list(range(1, step + 1))):
        raise ValueError(f"step {step} does not fit this run's {total_steps} steps / {len(rows)} rows")
    state.model.load_state_dict(ck["model"])
    state.optimizer.load_state_dict(ck["optimizer"])
    state.step, state.rows = step, rows
    state.wall_seconds, state.started = float(ck["wall_seconds"]), str(ck["started"])
    # format 1 (before the reshape) kept no counters: they are the last row's cumulative FLOPs
    counters = ck.get("counters") or {c: rows[-1][f"flops_{c}"] for c in records.FLOP_CONVENTIONS}
    state.counters = {k: float(v) for k, v in counters.items()}
    state.resumes, state.preemptions = int(ck.get("resumes", 0)) + 1, int(ck.get("preemptions", 0))


def save_weights(model: torch.nn.Module, path: Path) -> None:
    records.write_file_atomic(
        Path(path), lambda tmp: torch.save(model.state_dict(), tmp), faults.before_replace("weights.write")
    )


def safe_load(path: Path, map_location="cpu"):
    """``torch.load`` that rebuilds tensors and plain containers only; anything else is refused, never executed."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        what = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln), first)
        raise UnsafeFile(
            f"{path}: refused to load: it holds Python objects other than tensors and plain containers "
            f"({what}); unpickling them could run code, so it was not loaded (weights_only=True). "
            f"Only a file written by this harness loads; if you trust this one, re-save its tensors "
            f"with torch.save(state_dict)."
        ) from None


def _plain(row: dict) -> dict:
    """A metrics row as plain Python types, which weights_only=True loads (numpy scalars would be refused)."""
    return {
        k: bool(v) if isinstance(v, (bool, np.bool_)) else int(v) if isinstance(v, (int, np.integer)) else float(v)
        for k, v in row.items()
    }
