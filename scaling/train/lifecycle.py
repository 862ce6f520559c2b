"""One run from start to finish: resolve its config once, lock its directory, start or resume its state, drive the
step loop, and write its records. Its side jobs (checkpoint timing, halting, divergence, preemption, progress, wandb,
fault points) are callbacks, one a file in scaling/train/callbacks/; a user's own are passed as ``callbacks``.

    summary = train(cfg)                      # resolve, then run: the Python entry point
    spec = resolve(cfg); summary = run(spec)  # what the Hydra entry point (scaling/train/entry.py) does

Exit statuses of ``python -m scaling.train`` (see ``EXIT_*``): 0 done (complete, diverged, or skipped because it
already was), 2 a config error before any compute, 3 another process holds the run's lock (single runs; a multirun
skips that run and says so), 75 preempted: SIGTERM or SIGUSR1 arrived, the run wrote a checkpoint at the next step
boundary, marked itself ``running`` with reason "preempted (SIGTERM) at step k", and launching the same command again
resumes it exactly (75 is sysexits' EX_TEMPFAIL: try again later).
"""

from __future__ import annotations

import math
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf

from scaling.config.schema import Config, ConfigError, Plan, apply_point, plan, run_id, validate
from scaling.core import archs, records
from scaling.core.records import RunSummary
from scaling.data.batches import Dataset
from scaling.data.cache import prepare_data
from scaling.launch import distributed, machine
from scaling.model import memory
from scaling.train import faults, rundir
from scaling.train.callbacks import Callback
from scaling.train.callbacks.defaults import check as check_callbacks
from scaling.train.callbacks.defaults import default_callbacks
from scaling.train.loop import Compute, LoopSpec, compile_for, compute_for, steps
from scaling.train.rundir import RunBusy, RunLock  # noqa: F401  (raised by run(); entry.py catches RunBusy)
from scaling.train.state import RunState, UnsafeFile, new_state, restore, save_checkpoint, save_weights

if TYPE_CHECKING:
    from typing_extensions import Self

EXIT_CONFIG = 2
EXIT_BUSY = 3
EXIT_PREEMPTED = 75


class Preempted(Exception):
    """The run stopped on SIGTERM/SIGUSR1 after writing a checkpoint; launching it again resumes it exactly."""

    def __init__(self, summary: RunSummary, signal_name: str):
        super().__init__(summary.reason)
        self.summary, self.signal_name = summary, signal_name


class UnsafeCheckpoint(RuntimeError):
    """The run's checkpoint.pt would run code when loaded: the run stops (exit 1) rather than overwrite it."""


@dataclass(frozen=True)
class RunSpec:
    """A config resolved once (sweep point applied, validated): its plan, its id, its directory."""

    cfg: Config
    plan: Plan
    run_id: str
    run_dir: Path


def resolve(cfg: Config) -> RunSpec:
    """Apply the sweep point, validate, plan: the one place a run's config is checked. Raises ConfigError."""
    apply_point(cfg)
    validate(cfg)
    rid = run_id(cfg)
    return RunSpec(cfg, plan(cfg), rid, Path(cfg.results_dir).absolute() / cfg.sweep / rid)


def train(cfg: Config, resolved_yaml: str | None = None, callbacks: Sequence[Callback] = ()) -> RunSummary:
    """Train one run to completion (or resume it); return its summary. Raises ConfigError before any compute.
    ``callbacks``: a user's own hooks (scaling/train/callbacks/__init__.py), called beside the built-in ones."""
    return run(resolve(cfg), resolved_yaml, callbacks)


def run(spec: RunSpec, resolved_yaml: str | None = None, callbacks: Sequence[Callback] = ()) -> RunSummary:
    """Run a resolved config: skip it if final, refuse it if it cannot fit, else lock its directory and train it."""
    check_callbacks(callbacks)  # before anything is written
    t = spec.cfg.train
    world = distributed.setup(t.distributed, t.device)  # one process, or this rank of a data-parallel run
    distributed.check_shardable(world, t.batch_size, t.micro_batch_size or t.batch_size)
    # a device this machine lacks is a config error, before anything is written
    compute = compute_for(replace(t, device=distributed.device_name(world, t.device)))
    prev = rundir.finished(spec.run_dir, quiet=True)
    world.barrier()  # every rank has looked before rank 0 writes anything
    if prev is not None and not rundir.leftovers(spec.run_dir):
        again = rundir.finished(spec.run_dir)  # the same summary, its skip now said aloud
        assert again is not None  # a final summary stays final
        return again
    mem = check_memory(spec, compute) if prev is None else None  # a final run only needs its leftovers removed
    if not world.is_writer:  # rank 0 holds the lock and writes; the others restore the same state and compute
        return (
            prev
            or Run.start(spec, compute, mem or check_memory(spec, compute), resolved_yaml, world, callbacks).train()
        )
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(spec.run_dir):
        prev = rundir.finished(spec.run_dir)  # it may have finished while we waited to look
        rundir.remove_leftovers(spec.run_dir, final=prev is not None)
        if prev is not None:
            return prev
        faults.hit("startup.locked", run_dir=spec.run_dir)
        return Run.start(spec, compute, mem or check_memory(spec, compute), resolved_yaml, world, callbacks).train()


def check_memory(spec: RunSpec, compute: Compute) -> tuple[memory.MemoryEstimate, int | None]:
    """The run's memory estimate and what the device has; a ConfigError naming a micro-batch that fits if it does
    not."""
    t, shape = spec.cfg.train, spec.plan.shape
    a = 2 if compute.bf16 else 4
    micro = t.micro_batch_size or t.batch_size
    est = memory.estimate(shape, micro, bytes_per_activation=a)
    avail = memory.available_bytes(compute.device)
    if avail is None or not memory.check_enabled() or est.needed_bytes <= avail:
        return est, avail
    fits = [
        m
        for m in range(micro, 0, -1)
        if t.batch_size % m == 0 and memory.estimate(shape, m, bytes_per_activation=a).needed_bytes <= avail
    ]
    G = memory.GiB
    fix = (
        f"set train.micro_batch_size={fits[0]} (gradient accumulation keeps train.batch_size={t.batch_size}), "
        f"or use another device"
        if fits
        else "even one sequence per micro-batch does not fit: use a device with more memory, a shorter "
        "model.seq_len or a smaller model.size"
    )
    raise ConfigError(
        f"train.micro_batch_size={t.micro_batch_size} ({micro} sequences of {shape.seq_len} tokens per forward pass): "
        f"this run needs an estimated {est.total_bytes / G:.2f} GiB (weights, gradients and AdamW state "
        f"{est.state_bytes / G:.2f} GiB for {est.params:,} parameters; "
        f"activations {est.activation_bytes / G:.2f} GiB), "
        f"{est.needed_bytes / G:.2f} GiB with margin, but {compute.device} has {avail / G:.2f} GiB available: {fix} "
        f"(train.device). Formula: scaling/model/memory.py; SCALING_MEMORY_CHECK=0 skips this check."
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    import hydra as _h

    import scaling

    return {
        "scaling": scaling.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "hydra": _h.__version__,
        "python": platform.python_version(),
    }


def _fresh_state(spec: RunSpec, compute: Compute) -> RunState:
    t = spec.cfg.train
    return new_state(
        spec.plan.shape,
        compute.device,
        seed=t.seed,
        lr=spec.plan.schedule.peak_lr,
        weight_decay=t.weight_decay,
        betas=(t.beta1, t.beta2),
        started=_now(),
        fused=compute.fused_optimizer,
    )


@dataclass
class Run:
    """A run being trained: its resolved spec, data, device, state and summary, with its start-up and finish. Its side
    jobs (progress, wandb, fault points, divergence, preemption, checkpoint timing) are ``callbacks``."""

    spec: RunSpec
    compute: Compute
    ds: Dataset
    state: RunState
    summary: RunSummary
    callbacks: list[Callback] = field(default_factory=default_callbacks)
    wall_before: float = 0.0
    t_start: float = 0.0
    world: distributed.World = distributed.SINGLE  # only rank 0 (is_writer) writes records and checkpoints
    stopped: RunSummary | None = None  # set by a callback that ended the run before the plan's last step
    preempted: str | None = None  # the signal's name, when that callback was preemption

    @classmethod
    def start(
        cls,
        spec: RunSpec,
        compute: Compute,
        mem,
        resolved_yaml: str | None,
        world: distributed.World = distributed.SINGLE,
        callbacks: Sequence[Callback] = (),
    ) -> Self:
        """Load the data, write the config, build the state (restored from the checkpoint where one is usable)."""
        cfg, p, t = spec.cfg, spec.plan, spec.cfg.train
        fit = machine.detect()
        if t.threads or compute.device.type == "cpu":
            torch.set_num_threads(t.threads or fit.threads_per_run(p.shape.params_non_embedding()))
        if compute.device.type == "cpu":
            machine.keep_freed_memory()  # no page faults on each step's activations (README.md: figures)
        if compute.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever runs outside autocast
        # prepare() has just verified every file's checksum under its lock: loading need not hash them again
        ds = Dataset.load(
            prepare_data(cfg.data),
            verified=True,
        )
        faults.hit("startup.data")
        if ds.vocab_size != p.shape.vocab_size:
            raise ConfigError(
                f"data.vocab_size={cfg.data.vocab_size}: the prepared data has {ds.vocab_size} tokens, "
                f"the model {p.shape.vocab_size}"
            )
        if resolved_yaml is None:
            resolved_yaml = OmegaConf.to_yaml(OmegaConf.structured(cfg))
        if world.is_writer:
            records.write_text_atomic(
                spec.run_dir / records.CONFIG_FILE, resolved_yaml, faults.before_replace("config.write")
            )

        state = cls.initial_state(spec, compute)
        faults.hit("startup.model")
        shape, sched = p.shape, p.schedule
        est, avail = mem
        summary = RunSummary(
            run_id=spec.run_id,
            sweep=cfg.sweep,
            size=str(cfg.model.size),
            n_layer=shape.n_layer,
            d_model=shape.d_model,
            n_head=shape.n_head,
            d_ff=shape.d_ff,
            vocab_size=shape.vocab_size,
            seq_len=shape.seq_len,
            tie_embeddings=shape.tie_embeddings,
            arch=shape.arch,
            flops_source=archs.get(shape.arch).source,
            params_total=shape.params_total(),
            params_embedding=shape.params_embedding(),
            params_non_embedding=shape.params_non_embedding(),
            budget=t.budget,
            budget_convention=t.flops_convention if t.budget is not None else None,
            tokens=p.tokens,
            steps=p.steps,
            tokens_per_step=p.tokens_per_step,
            flops_per_token=p.flops_per_token,
            flops=p.flops,
            lr=sched.peak_lr,
            schedule=sched.name,
            warmup_steps=sched.warmup_steps,
            seed=t.seed,
            data_source=cfg.data.source,
            data_checksum=ds.checksum,
            unique_train_tokens=int(len(ds.train)),
            **ds.known_entropy(shape.seq_len),  # synthetic sources: data_entropy_rate, data_loss_floor (else None)
            data_tokenizer=cfg.data.tokenizer,
            data_mixture=[dict(source=s["source"], weight=s["weight"]) for s in ds.segments] or None,
            # the windows of the final evaluation and of the intermediate ones (scaling/train/loop.py steps)
            val_bytes_per_token=ds.val_bytes_per_token(t.final_eval_tokens or len(ds.val), shape.seq_len),
            eval_bytes_per_token=ds.val_bytes_per_token(t.eval_tokens, shape.seq_len),
            device=str(compute.device),
            dtype="bf16" if compute.bf16 else "fp32",
            versions=_versions(),
            started=state.started,
            resumes=state.resumes,
            preemptions=state.preemptions,
            memory_estimate_bytes=est.total_bytes,
            memory_available_bytes=avail,
            threads=torch.get_num_threads(),
            cpu_cores=fit.cores,
            cpu_isa=fit.isa,
            runs_in_parallel=fit.runs_in_parallel(p.shape.params_non_embedding()),
            compile=compile_for(t, compute, p),
            processes=world.size,
        )
        if world.is_writer:
            records.write_summary(spec.run_dir, summary, faults.before_replace("summary.write"))
        return cls(
            spec, compute, ds, state, summary, default_callbacks(callbacks), wall_before=state.wall_seconds, world=world
        )

    @classmethod
    def initial_state(cls, spec: RunSpec, compute: Compute) -> RunState:
        """The state the run starts from: its checkpoint where one is usable, else a fresh one. A branched run
        (scaling/train/branched.py) overrides this to start from its trunk."""
        ckpt = spec.run_dir / records.CHECKPOINT_FILE
        state = _fresh_state(spec, compute)
        if not ckpt.exists():
            return state
        try:
            restore(state, ckpt, total_steps=spec.plan.steps)
            print(f"[train] {spec.run_id}: resuming at step {state.step}/{spec.plan.steps}", file=sys.stderr)
            return state
        except UnsafeFile as e:  # someone else's file, or tampering: not overwritten, kept for inspection
            raise UnsafeCheckpoint(
                f"{e}; the run stops and keeps the file: inspect it, then delete {ckpt} to start "
                f"the run again from step 0"
            ) from None
        except Exception as e:  # a checkpoint we cannot use is not half-trusted: start over from scratch, say so
            print(
                f"[train] {spec.run_id}: checkpoint unusable ({type(e).__name__}: {e}); starting from step 0",
                file=sys.stderr,
            )
        return _fresh_state(spec, compute)  # restore may have loaded part of the state before it failed

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t_start

    def stop(self, summary: RunSummary, preempted: str | None = None) -> None:
        """End the run after this step with ``summary`` (already written by ``finish``); for a callback's use."""
        self.stopped, self.preempted = summary, preempted

    def checkpoint(self) -> None:
        """The state on disk, then the metrics up to the same step; then the callbacks' ``after_checkpoint``."""
        self.state.wall_seconds = self.wall()
        if self.world.is_writer:
            save_checkpoint(self.state, self.spec.run_dir / records.CHECKPOINT_FILE)
            faults.hit("checkpoint.after")
            records.write_metrics(self.spec.run_dir, self.state.rows, faults.before_replace("metrics.write"))
        for cb in self.callbacks:
            cb.after_checkpoint(self)

    def finish(self, status: str, reason: str | None, overrides: dict[str, Any] | None = None) -> RunSummary:
        """Write the final metrics and summary for ``status``; ``overrides`` (summary fields) are set before the one
        atomic summary write, so no state without them reaches the disk (an early stop's: no final loss)."""
        s, st, p = self.summary, self.state, self.spec.plan
        unknown = sorted(set(overrides or {}) - set(RunSummary.__dataclass_fields__))
        if unknown:
            raise ValueError(f"finish overrides: {unknown} are not summary fields")
        s.status, s.reason = status, reason
        s.tokens_trained = st.step * p.tokens_per_step
        s.epochs = s.tokens_trained / len(self.ds.train)
        vals = [r["val_loss"] for r in st.rows if not math.isnan(r["val_loss"])]
        s.final_train_loss = st.rows[-1]["train_loss"] if st.rows else None
        s.final_val_loss = vals[-1] if vals else None
        s.best_val_loss = min(vals) if vals else None
        subs = [r.get("subset_val_loss", math.nan) for r in st.rows if not math.isnan(r["val_loss"])]
        s.final_subset_val_loss = subs[-1] if subs and not math.isnan(subs[-1]) else None
        s.final_val_bpb = (
            s.final_val_loss / math.log(2) / s.val_bytes_per_token
            if s.final_val_loss is not None and s.val_bytes_per_token
            else None
        )
        s.wall_seconds = round(self.wall(), 3)
        tps = [r["tokens_per_second"] for r in st.rows]
        s.tokens_per_second = float(np.median(tps)) if tps else None
        s.finished = _now() if status != records.STATUS_RUNNING else None
        s.resumes, s.preemptions = st.resumes, st.preemptions
        for k, v in (overrides or {}).items():
            setattr(s, k, v)
        if self.world.is_writer:
            records.write_metrics(self.spec.run_dir, st.rows, faults.before_replace("metrics.write"))
            records.write_summary(self.spec.run_dir, s, faults.before_replace("summary.write"))
        return s

    def fail(self, e: BaseException) -> None:
        """Mark the run failed with the reason. On a full disk the records may not be writable either: say so."""
        try:
            self.finish(records.STATUS_FAILED, f"{type(e).__name__}: {e}")
        except OSError as e2:
            print(
                f"[train] {self.spec.run_id}: could not record the failure ({e2}); the last checkpoint and "
                f"records on disk are intact",
                file=sys.stderr,
            )
            try:  # the summary alone is small: one more try, without the metrics
                self.summary.status, self.summary.reason = records.STATUS_FAILED, f"{type(e).__name__}: {e}"
                records.write_summary(self.spec.run_dir, self.summary)
            except OSError:
                pass

    def train(self) -> RunSummary:
        """Drive the step loop to the end of the plan, calling the callbacks' hooks; then complete the run, unless a
        callback stopped it (divergence, halting, preemption: raises ``Preempted`` once every callback finished)."""
        self.t_start = time.perf_counter()
        self.stopped, self.preempted = None, None
        try:
            try:
                for cb in self.callbacks:
                    cb.on_start(self)
                    if self.stopped is not None:  # preempted while it started: not one step
                        break
                out = self.stopped if self.stopped is not None else self._steps()
            except Exception as e:
                self.fail(e)
                raise
        finally:  # whatever ended the run: the bar closed, signal handlers and the wandb run released
            for cb in self.callbacks:
                cb.on_finish(self, self.summary)
        if self.preempted is not None:
            print(
                f"[train] {self.spec.run_id}: {self.summary.reason}: checkpoint written; launch the same command "
                f"again to resume (exit status {EXIT_PREEMPTED})",
                file=sys.stderr,
            )
            raise Preempted(self.summary, self.preempted)
        if out.status == records.STATUS_COMPLETE and self.world.is_writer:
            faults.hit("finish.unlink")
            (self.spec.run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)  # last: the run is already final
            shape = self.spec.plan.shape
            print(
                f"[train] {self.spec.run_id}: done: N={shape.params_non_embedding():,} D={self.spec.plan.tokens:,} "
                f"val loss {out.final_val_loss:.4f} ({out.wall_seconds:.1f} s, {out.tokens_per_second:,.0f} tok/s)",
                file=sys.stderr,
            )
        return out

    def _steps(self) -> RunSummary:
        t, p = self.spec.cfg.train, self.spec.plan
        forward: Callable[..., Any] = distributed.wrap(self.state.model, self.world, self.compute.device)
        forward = torch.compile(forward) if self.summary.compile else forward  # as recorded
        loop = replace(LoopSpec.of(t, p), world=self.world)
        for row in steps(self.state, self.ds, loop, self.compute, forward):
            if not math.isnan(row["val_loss"]):
                for cb in self.callbacks:
                    cb.after_eval(self, row)
            for cb in self.callbacks:
                cb.after_step(self, row)
                if self.stopped is not None:  # the callbacks after it do not see this step
                    return self.stopped
        return self.complete()

    def complete(self) -> RunSummary:
        """Final weights, then the summary marked complete (``train`` then removes the checkpoint: each step is safe
        to die in)."""
        if self.world.is_writer:
            save_weights(self.state.model, self.spec.run_dir / records.WEIGHTS_FILE)
        return self.finish(records.STATUS_COMPLETE, None)
