"""The run directory: the one on-disk contract between training (`scaling`) and fitting (`analysis`).

A finished run is a folder ``results/<sweep>/<run_id>/`` holding

- ``config.yaml``      the resolved Hydra config the run was launched with,
- ``metrics.parquet``  one row per optimizer step (see ``METRICS_COLUMNS``),
- ``summary.json``     one JSON object (see ``RunSummary``): sizes, tokens, FLOPs under every convention,
                       final losses, status, versions, wall time,
- ``model.pt``         final weights (training side only; analysis never opens it),
- ``checkpoint.pt``    the latest resumable state while the run is unfinished.

This module is imported by both sides, so it must stay free of torch: numpy, pandas and the standard library only.
Every file is written atomically (temp file in the same folder, then ``os.replace``) so a crash never leaves a
half-written file that a reader could mistake for a real one.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import tempfile
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

SCHEMA_VERSION = 1

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.parquet"
SUMMARY_FILE = "summary.json"
WEIGHTS_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"

# FLOP conventions recorded for every run (per token of training, forward + backward). Definitions live in
# scaling/core/flops.py; the keys are the column suffixes below and the keys of RunSummary.flops / .flops_per_token.
FLOP_CONVENTIONS = ("6n", "6n_attn", "chinchilla", "chinchilla_noembed", "deepseek_m")

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"
# stopped early (train.early_stop_frac; scaling/train/callbacks/early_stop.py): its curve so far predicted, with
# confidence, a final loss far above its IsoFLOP neighbours'; no final loss (final_val_loss is None), the prediction
# in predicted_final_loss*. Added later
STATUS_STOPPED = "stopped"
STATUSES = (STATUS_RUNNING, STATUS_COMPLETE, STATUS_DIVERGED, STATUS_FAILED, STATUS_STOPPED)
# a run in one of these is never trained again: complete, diverged (rerunning would diverge again), or stopped early
FINAL_STATUSES = (STATUS_COMPLETE, STATUS_DIVERGED, STATUS_STOPPED)

# metrics.parquet: one row per optimizer step. Cumulative counters are *after* that step's update.
#   step               1-based optimizer step
#   tokens             cumulative training tokens
#   flops_<conv>       cumulative training FLOPs under each convention in FLOP_CONVENTIONS
#   train_loss         mean cross-entropy (nats/token) over the step's batch
#   val_loss           validation loss measured after this step, NaN where no evaluation ran
#   lr                 learning rate used for this step's update
#   subset_val_loss    validation loss on the fixed train.eval_tokens subset, at every evaluated step including the
#                      final one (where val_loss is measured on the whole split, or final_eval_tokens): one measure on
#                      the whole curve, for curve fits. Added later: absent in older runs, read back as NaN
#   tokens_per_second  training throughput of this step (wall clock, excludes evaluation)
#   schedule_complete  True where the LR schedule had finished (end of cosine, end of a WSD cooldown): the only
#                      points of a curve that Chinchilla's Approach 1 may use
METRICS_COLUMNS = (
    ["step", "tokens"]
    + [f"flops_{c}" for c in FLOP_CONVENTIONS]
    + ["train_loss", "val_loss", "lr", "tokens_per_second", "schedule_complete", "subset_val_loss"]
)
# columns added after the first schema: a metrics file written before them still loads, with them as NaN
OPTIONAL_METRICS_COLUMNS = ("subset_val_loss",)


@dataclass
class RunSummary:
    """Contents of summary.json. Flat enough to become one DataFrame row (see ``flatten``)."""

    run_id: str
    sweep: str
    status: str = STATUS_RUNNING
    reason: str | None = None  # why a run failed or diverged
    # shape of the model
    size: str = ""  # the size asked for (a name or a target non-embedding parameter count)
    n_layer: int = 0
    d_model: int = 0
    n_head: int = 0
    d_ff: int = 0
    vocab_size: int = 0
    seq_len: int = 0
    tie_embeddings: bool = True
    # added later (defaults keep older summaries loadable: every run before them was a GPT with analytic FLOPs)
    arch: str = "gpt"  # scaling/core/archs.py: gpt, llama or a user's <module>:<Class>
    flops_source: str = "analytic"  # "analytic" (scaling/core/flops.py or the class's own) or "flop_counter"
    # (measured with torch's FlopCounterMode once per shape: scaling/model/user.py)
    # parameter counts (analytic, verified equal to the module's own count)
    params_total: int = 0
    params_embedding: int = 0
    params_non_embedding: int = 0
    # budget and tokens
    budget: float | None = None  # target training FLOPs C the run was sized from (None: tokens given directly)
    budget_convention: str | None = None  # which FLOP convention turned the budget into tokens
    tokens: int = 0  # training tokens D, exactly as planned (steps * tokens_per_step)
    tokens_trained: int = 0  # tokens actually trained so far (== tokens when complete)
    steps: int = 0
    tokens_per_step: int = 0
    flops_per_token: dict[str, float] = field(default_factory=dict)  # per convention
    flops: dict[str, float] = field(default_factory=dict)  # total planned training FLOPs per convention
    # optimisation
    lr: float = 0.0  # peak learning rate
    schedule: str = ""
    warmup_steps: int = 0
    seed: int = 0
    # data
    data_source: str = ""
    data_checksum: str = ""
    unique_train_tokens: int = 0
    epochs: float = 0.0  # tokens trained / unique training tokens
    # synthetic sources only (None otherwise): the data's exact entropy rate H (nats/token), and the loss floor of
    # a perfect model on this run's windows of seq_len tokens (H plus the cost of not seeing the context before a
    # window; scaling/data/sources.py window_entropy). The fitted irreducible loss E should recover the floor.
    data_entropy_rate: float | None = None
    data_loss_floor: float | None = None
    # outcome
    final_train_loss: float | None = None
    final_val_loss: float | None = None
    best_val_loss: float | None = None
    wall_seconds: float = 0.0
    tokens_per_second: float | None = None
    device: str = ""
    dtype: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    started: str = ""
    finished: str | None = None
    schema_version: int = SCHEMA_VERSION
    # reliability (added later; defaults keep older summaries loadable)
    resumes: int = 0  # how many times this run resumed from a checkpoint (a relaunch, a preemption, a crash)
    preemptions: int = 0  # how many times it stopped on SIGTERM/SIGUSR1 with a checkpoint (exit code 75)
    memory_estimate_bytes: int | None = None  # estimated peak training memory (scaling/model/memory.py estimate)
    memory_available_bytes: int | None = None  # what the device had available when the run started
    # cooldown branches (sweep/branches.py; Hägele et al. 2024): set only on a run branched off a constant-LR trunk.
    # Its steps, tokens and flops above are the whole run's (the trunk's share up to branch_step, then the cooldown),
    # exactly what a standalone run of its length would have; its metrics hold the trunk's rows up to branch_step.
    parent_run_id: str | None = None  # the trunk's run id (its directory: <sweep>/_trunks/<parent_run_id>/)
    branch_step: int | None = None  # the trunk step the branch was copied from
    branch_tokens: int | None = None  # tokens trained at that step
    cooldown_steps: int | None = None  # steps of the branch's own cooldown (steps - branch_step)
    cooldown_frac: float | None = None  # cooldown length asked for, as a fraction of the tokens at the branch point
    cooldown_shape: str | None = None  # linear | 1-sqrt
    # machine fit (added later; defaults keep older summaries loadable): scaling/launch/machine.py
    threads: int = 0  # torch CPU threads the run trained with (train.threads, or the machine's default for its size)
    cpu_cores: int = 0  # cores the run's process could use
    cpu_isa: str = ""  # best vector ISA of the CPU: amx_bf16, avx512_bf16, avx512f, avx2 or baseline
    runs_in_parallel: int = 0  # runs of this size the machine defaults would train side by side on this machine
    processes: int = 1  # processes that trained it together (data parallelism: torchrun or SLURM tasks), each a shard
    compile: bool | None = None  # whether the forward pass ran under torch.compile (train.compile as it resolved);
    # None: a summary written before it was recorded
    # data you bring and bits per byte (issue 16; added later, defaults keep older summaries loadable)
    data_tokenizer: str | None = None  # the tokenizer.json given (data.tokenizer); None: a BPE trained on the corpus
    data_mixture: list[dict[str, Any]] | None = None  # source=mix: each source and its weight (summing to 1)
    # UTF-8 bytes of text per target token over exactly the validation windows of the final evaluation (val_) and of
    # the intermediate ones (eval_); None where the data has no text (shards without a tokenizer, synthetic sources)
    val_bytes_per_token: float | None = None
    eval_bytes_per_token: float | None = None
    # final validation loss in bits per UTF-8 byte: final_val_loss / ln 2 / val_bytes_per_token (the Pile's BPB,
    # counted as scaling/data/batches.py val_bytes_per_token says); None where val_bytes_per_token is
    final_val_bpb: float | None = None
    # the final step's loss on the intermediate evaluations' subset (metrics' subset_val_loss; added later, None in
    # older runs): final_val_loss - final_subset_val_loss maps a curve fitted to the subset points onto the final loss
    final_subset_val_loss: float | None = None
    # early stop (status "stopped"; added later): the step it stopped after, and the Tissue law's end point with its
    # 90% interval, fitted to the curve so far, on the subset's measure (scaling.core.curve_law.tissue_end)
    stopped_step: int | None = None
    predicted_final_loss: float | None = None
    predicted_final_loss_lo: float | None = None
    predicted_final_loss_hi: float | None = None
    # why early stop made no decision (added later): its last look came before the curve saw enough of the schedule's
    # decay for the law to extrapolate (scaling/train/callbacks/early_stop.py); None where it decided or was off
    early_stop_note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSummary":
        known = {f for f in cls.__dataclass_fields__}
        missing = [k for k in ("run_id", "sweep", "status") if k not in d]
        if missing:
            raise ValueError(f"summary is missing required field(s) {missing}")
        if d["status"] not in STATUSES:
            raise ValueError(f"summary field 'status'={d['status']!r}: must be one of {STATUSES}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def flatten(self) -> dict[str, Any]:
        """One flat dict: nested per-convention dicts become ``flops_<conv>`` / ``flops_per_token_<conv>``."""
        d = self.to_dict()
        flops = d.pop("flops")
        fpt = d.pop("flops_per_token")
        versions = d.pop("versions")
        for c, v in flops.items():
            d[f"flops_{c}"] = v
        for c, v in fpt.items():
            d[f"flops_per_token_{c}"] = v
        for k, v in versions.items():
            d[f"version_{k}"] = v
        return d


# ---------------------------------------------------------------------------------------------------------------
# atomic writes


def _umask() -> int:
    mask = os.umask(0o022)  # read it the only way there is: set it, then put it back at once
    os.umask(mask)
    return mask


_UMASK = _umask()


def write_file_atomic(path: Path, write, before_replace=None) -> None:
    """``write(tmp)`` then rename over ``path``; ``before_replace(tmp)`` runs between the two
    (fault-injection tests)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_UMASK)  # as open() would create it (mkstemp makes 0600): others may read the results
    os.close(fd)
    try:
        write(tmp)
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        # some writers hide the errno (torch.save: "unexpected pos"): a disk left with almost nothing free says why
        full = isinstance(e, Exception) and not isinstance(e, OSError) and _free_bytes(path.parent) < 65536
        # The writer's frames, kept alive by the traceback, may still hold the temp file open (torch.save does): its
        # blocks then stay allocated after the unlink, and on a full disk the failure itself could not be recorded.
        _release_frames(e)
        if os.path.exists(tmp):
            os.unlink(tmp)
        if full:
            raise OSError(errno.ENOSPC, f"No space left on device writing {path} ({type(e).__name__}: {e})") from e
        raise


def _free_bytes(folder: Path) -> int:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 1 << 62  # unknown: not taken for a full disk


def _release_frames(e: BaseException | None) -> None:
    """Drop the locals of every finished frame of ``e`` and of the exceptions it was raised from or during, so the
    objects they held (an open file) are closed now rather than when the exception is collected."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        e = e.__cause__ or e.__context__
    gc.collect()


def write_text_atomic(path: Path, text: str, before_replace=None) -> None:
    def w(tmp):
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())

    write_file_atomic(path, w, before_replace)


def write_json_atomic(path: Path, obj: Any, before_replace=None, indent: int = 2, sort_keys: bool = False) -> None:
    """The one JSON writer of the harness (summaries, plans, the probe's table): atomic, numpy scalars as numbers."""
    write_text_atomic(
        path, json.dumps(obj, indent=indent, sort_keys=sort_keys, default=_json_default) + "\n", before_replace
    )


def _json_default(o):
    # numpy scalars and paths turn up in summaries; keep them readable
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def write_summary(run_dir: Path, summary: RunSummary, before_replace=None) -> None:
    write_json_atomic(Path(run_dir) / SUMMARY_FILE, summary.to_dict(), before_replace)


def write_metrics(run_dir: Path, rows: list[dict[str, Any]], before_replace=None) -> None:
    df = pd.DataFrame(rows, columns=METRICS_COLUMNS)
    write_file_atomic(Path(run_dir) / METRICS_FILE, lambda tmp: df.to_parquet(tmp, index=False), before_replace)


# ---------------------------------------------------------------------------------------------------------------
# reads


def read_summary(run_dir: Path) -> RunSummary:
    with open(Path(run_dir) / SUMMARY_FILE) as f:
        return RunSummary.from_dict(json.load(f))


def read_metrics(run_dir: Path) -> pd.DataFrame:
    df = pd.read_parquet(Path(run_dir) / METRICS_FILE)
    missing = [c for c in METRICS_COLUMNS if c not in df.columns and c not in OPTIONAL_METRICS_COLUMNS]
    if missing:
        raise ValueError(f"{Path(run_dir) / METRICS_FILE}: missing column(s) {missing}")
    for c in OPTIONAL_METRICS_COLUMNS:
        if c not in df.columns:
            df[c] = float("nan")
    return df


def is_run_dir(path: Path) -> bool:
    path = Path(path)
    return path.is_dir() and (
        (path / SUMMARY_FILE).exists() or (path / CONFIG_FILE).exists() or (path / CHECKPOINT_FILE).exists()
    )


def iter_run_dirs(root: Path) -> Iterator[Path]:
    """Every run directory under ``root`` (a sweep folder, a folder of sweeps, or one run), sorted by path.

    Folders whose name starts with ``.`` or ``_`` (Hydra's own logs, caches) are skipped.
    """
    root = Path(root)
    if is_run_dir(root):
        yield root
        return
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if child.name.startswith((".", "_")) or not child.is_dir():
            continue
        yield from iter_run_dirs(child)
