"""One run from start to finish: resolve its config once, lock its directory, start or resume its state, drive the
step loop with the run's bookkeeping (checkpoints, halting, divergence, preemption), and write its records.

    summary = train(cfg)                      # resolve, then run: the Python entry point
    spec = resolve(cfg); summary = run(spec)  # what the Hydra entry point (scaling/train/entry.py) does

Exit statuses of ``python -m scaling.train`` (see ``EXIT_*``): 0 done (complete, diverged, or skipped because it
already was), 2 a config error before any compute, 3 another process holds the run's lock (single runs; a multirun
skips that run and says so), 75 preempted: SIGTERM or SIGUSR1 arrived, the run wrote a checkpoint at the next step
boundary, marked itself ``running`` with reason "preempted (SIGTERM) at step k", and launching the same command again
resumes it exactly (75 is sysexits' EX_TEMPFAIL: try again later).
"""
from __future__ import annotations

import fcntl
import math
import os
import platform
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from scaling.launch import distributed

from scaling.train import faults

from scaling.launch import machine

from scaling.model import memory

from scaling.core import records

from scaling.launch import requeue
from scaling.config.schema import Config, ConfigError, Plan, apply_point, plan, run_id, validate
from scaling.data.cache import prepare
from scaling.data.batches import Dataset
from scaling.train.loop import Compute, LoopSpec, compile_for, compute_for, steps
from scaling.core.records import RunSummary
from scaling.train.state import RunState, UnsafeFile, new_state, restore, save_checkpoint, save_weights
from scaling.train.wandb_log import WandbLogger

EXIT_CONFIG = 2
EXIT_BUSY = 3
EXIT_PREEMPTED = 75
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class RunBusy(RuntimeError):
    """Another live process holds this run's lock (is training it right now)."""


class Preempted(Exception):
    """The run stopped on SIGTERM/SIGUSR1 after writing a checkpoint; launching it again resumes it exactly."""

    def __init__(self, summary: RunSummary, signal_name: str):
        super().__init__(summary.reason)
        self.summary, self.signal_name = summary, signal_name


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


def train(cfg: Config, resolved_yaml: str | None = None) -> RunSummary:
    """Train one run to completion (or resume it); return its summary. Raises ConfigError before any compute."""
    return run(resolve(cfg), resolved_yaml)


def run(spec: RunSpec, resolved_yaml: str | None = None) -> RunSummary:
    """Run a resolved config: skip it if final, refuse it if it cannot fit, else lock its directory and train it."""
    t = spec.cfg.train
    world = distributed.setup(t.distributed, t.device)  # one process, or this rank of a data-parallel run
    distributed.check_shardable(world, t.batch_size, t.micro_batch_size or t.batch_size)
    # a device this machine lacks is a config error, before anything is written
    compute = compute_for(replace(t, device=distributed.device_name(world, t.device)))
    prev = _finished(spec.run_dir, quiet=True)
    world.barrier()  # every rank has looked before rank 0 writes anything
    if prev is not None and not _leftovers(spec.run_dir):
        return _finished(spec.run_dir)
    mem = _check_memory(spec, compute) if prev is None else None  # a final run only needs its leftovers removed
    if not world.is_writer:  # rank 0 holds the lock and writes; the others restore the same state and compute
        return prev or Run.start(spec, compute, mem or _check_memory(spec, compute), resolved_yaml, world).train()
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    with RunLock(spec.run_dir):
        prev = _finished(spec.run_dir)  # it may have finished while we waited to look
        _remove_leftovers(spec.run_dir, finished=prev is not None)
        if prev is not None:
            return prev
        return Run.start(spec, compute, mem or _check_memory(spec, compute), resolved_yaml, world).train()


class RunLock:
    """An exclusive flock on ``<run_dir>/.lock`` holding the owner's pid. The kernel drops a flock when its process
    dies, however it dies, so a lock left by a killed process never blocks a relaunch."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.fd = run_dir, run_dir / ".lock", None

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunBusy(f"{self.run_dir}: another process ({holder}) is training this run right now") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _finished(run_dir: Path, quiet: bool = False) -> RunSummary | None:
    """The summary of a run that must not be trained again (complete, or diverged: rerunning would diverge again)."""
    if not (run_dir / records.SUMMARY_FILE).exists():
        return None
    try:
        prev = records.read_summary(run_dir)
    except (ValueError, OSError, KeyError, TypeError):
        return None  # unreadable summary: the run is redone
    if prev.status not in (records.STATUS_COMPLETE, records.STATUS_DIVERGED):
        return None
    if quiet:
        return prev
    if prev.status == records.STATUS_COMPLETE:
        print(f"[train] {prev.run_id}: already complete (final val loss {prev.final_val_loss:.4f}); skipping",
              file=sys.stderr)
    else:
        print(f"[train] {prev.run_id}: diverged before ({prev.reason}); skipping. Delete {run_dir} to retry it.",
              file=sys.stderr)
    return prev


def _leftovers(run_dir: Path) -> list[Path]:
    """What a process killed mid-write leaves: temp files, and the checkpoint of a run already marked final."""
    out = sorted(run_dir.glob(".*.tmp"))
    if (run_dir / records.CHECKPOINT_FILE).exists() and _finished(run_dir, quiet=True) is not None:
        out.append(run_dir / records.CHECKPOINT_FILE)
    return out


def _remove_leftovers(run_dir: Path, finished: bool) -> None:
    """Under the lock, so no live writer owns them."""
    for p in sorted(run_dir.glob(".*.tmp")):
        p.unlink(missing_ok=True)
    if finished:
        (run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)


def _check_memory(spec: RunSpec, compute: Compute) -> tuple[memory.MemoryEstimate, int | None]:
    t, shape = spec.cfg.train, spec.plan.shape
    a = 2 if compute.bf16 else 4
    micro = t.micro_batch_size or t.batch_size
    est = memory.estimate(shape, micro, bytes_per_activation=a)
    avail = memory.available_bytes(compute.device)
    if avail is None or not memory.check_enabled() or est.needed_bytes <= avail:
        return est, avail
    fits = [m for m in range(micro, 0, -1) if t.batch_size % m == 0
            and memory.estimate(shape, m, bytes_per_activation=a).needed_bytes <= avail]
    G = memory.GiB
    fix = (f"set train.micro_batch_size={fits[0]} (gradient accumulation keeps train.batch_size={t.batch_size}), "
           f"or use another device" if fits else
           "even one sequence per micro-batch does not fit: use a device with more memory, a shorter model.seq_len or "
           "a smaller model.size")
    raise ConfigError(
        f"train.micro_batch_size={t.micro_batch_size} ({micro} sequences of {shape.seq_len} tokens per forward pass): "
        f"this run needs an estimated {est.total_bytes / G:.2f} GiB (weights, gradients and AdamW state "
        f"{est.state_bytes / G:.2f} GiB for {est.params:,} parameters; activations {est.activation_bytes / G:.2f} GiB), "
        f"{est.needed_bytes / G:.2f} GiB with margin, but {compute.device} has {avail / G:.2f} GiB available: {fix} "
        f"(train.device). Formula: scaling/model/memory.py; SCALING_MEMORY_CHECK=0 skips this check.")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict[str, str]:
    import hydra as _h

    import scaling

    return {"scaling": scaling.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "hydra": _h.__version__, "python": platform.python_version()}


def _fresh_state(spec: RunSpec, compute: Compute) -> RunState:
    t = spec.cfg.train
    return new_state(spec.plan.shape, compute.device, seed=t.seed, lr=spec.plan.schedule.peak_lr,
                     weight_decay=t.weight_decay, betas=(t.beta1, t.beta2), started=_now(),
                     fused=compute.fused_optimizer)


class _SignalFlag:
    """While active, SIGTERM/SIGUSR1 only set a flag; the run checks it at each step boundary."""

    def __init__(self):
        self.signum, self._prev = None, {}

    def __enter__(self) -> "_SignalFlag":
        if threading.current_thread() is threading.main_thread():  # handlers can only be set from the main thread
            for s in PREEMPT_SIGNALS + requeue.signals():  # + submitit's own (USR2) under Hydra's submitit launcher
                self._prev[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        self.signum = signum

    def __exit__(self, *exc) -> None:
        for s, h in self._prev.items():
            signal.signal(s, h)


@dataclass
class Run:
    """A run being trained: its resolved spec, data, device, state and summary, with its start-up and finish."""

    spec: RunSpec
    compute: Compute
    ds: Dataset
    state: RunState
    summary: RunSummary
    logger: WandbLogger
    wall_before: float = 0.0
    t_start: float = 0.0
    world: distributed.World = distributed.SINGLE  # only rank 0 (is_writer) writes records and checkpoints

    @classmethod
    def start(cls, spec: RunSpec, compute: Compute, mem, resolved_yaml: str | None,
              world: distributed.World = distributed.SINGLE) -> "Run":
        """Load the data, write the config, build the state (restored from the checkpoint where one is usable)."""
        cfg, p, t = spec.cfg, spec.plan, spec.cfg.train
        fit = machine.detect()
        if t.threads or compute.device.type == "cpu":
            torch.set_num_threads(t.threads or fit.threads_per_run(p.shape.params_non_embedding()))
        if compute.device.type == "cpu":
            machine.keep_freed_memory()  # no page faults on each step's activations (up to 1.3x tokens/s, small models)
        if compute.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever runs outside autocast
        # prepare() has just verified every file's checksum under its lock: loading need not hash them again
        ds = Dataset.load(prepare(cfg.data.source, vocab_size=cfg.data.vocab_size, cache_dir=cfg.data.cache_dir,
                                  folio=cfg.data.folio, val_fraction=cfg.data.val_fraction), verified=True)
        if ds.vocab_size != cfg.data.vocab_size:
            raise ConfigError(f"data.vocab_size={cfg.data.vocab_size}: the prepared tokenizer has {ds.vocab_size} tokens")
        if resolved_yaml is None:
            resolved_yaml = OmegaConf.to_yaml(OmegaConf.structured(cfg))
        if world.is_writer:
            records.write_text_atomic(spec.run_dir / records.CONFIG_FILE, resolved_yaml)

        state = cls._initial_state(spec, compute)
        shape, sched = p.shape, p.schedule
        est, avail = mem
        summary = RunSummary(
            run_id=spec.run_id, sweep=cfg.sweep, size=str(cfg.model.size),
            n_layer=shape.n_layer, d_model=shape.d_model, n_head=shape.n_head, d_ff=shape.d_ff,
            vocab_size=shape.vocab_size, seq_len=shape.seq_len, tie_embeddings=shape.tie_embeddings,
            params_total=shape.params_total(), params_embedding=shape.params_embedding(),
            params_non_embedding=shape.params_non_embedding(),
            budget=t.budget, budget_convention=t.flops_convention if t.budget is not None else None,
            tokens=p.tokens, steps=p.steps, tokens_per_step=p.tokens_per_step,
            flops_per_token=p.flops_per_token, flops=p.flops,
            lr=sched.peak_lr, schedule=sched.name, warmup_steps=sched.warmup_steps, seed=t.seed,
            data_source=cfg.data.source, data_checksum=ds.checksum, unique_train_tokens=int(len(ds.train)),
            **ds.known_entropy(shape.seq_len),  # synthetic sources: data_entropy_rate, data_loss_floor (else None)
            device=str(compute.device), dtype="bf16" if compute.bf16 else "fp32", versions=_versions(),
            started=state.started, resumes=state.resumes, preemptions=state.preemptions,
            memory_estimate_bytes=est.total_bytes, memory_available_bytes=avail,
            threads=torch.get_num_threads(), cpu_cores=fit.cores, cpu_isa=fit.isa,
            runs_in_parallel=fit.runs_in_parallel(p.shape.params_non_embedding()),
            compile=compile_for(t, compute, p),
        )
        if world.is_writer:
            records.write_summary(spec.run_dir, summary, faults.before_replace("summary.write"))
        faults.hit("start")
        return cls(spec, compute, ds, state, summary, WandbLogger(False), wall_before=state.wall_seconds, world=world)

    @staticmethod
    def _initial_state(spec: RunSpec, compute: Compute) -> RunState:
        ckpt = spec.run_dir / records.CHECKPOINT_FILE
        state = _fresh_state(spec, compute)
        if not ckpt.exists():
            return state
        try:
            restore(state, ckpt, total_steps=spec.plan.steps)
            print(f"[train] {spec.run_id}: resuming at step {state.step}/{spec.plan.steps}", file=sys.stderr)
            return state
        except UnsafeFile as e:
            print(f"[train] {spec.run_id}: {e}; starting from step 0", file=sys.stderr)
        except Exception as e:  # a checkpoint we cannot use is not half-trusted: start over from scratch, say so
            print(f"[train] {spec.run_id}: checkpoint unusable ({type(e).__name__}: {e}); starting from step 0",
                  file=sys.stderr)
        return _fresh_state(spec, compute)  # restore may have loaded part of the state before it failed

    def wall(self) -> float:
        return self.wall_before + time.perf_counter() - self.t_start

    def checkpoint(self) -> None:
        """The state on disk, then the metrics up to the same step."""
        self.state.wall_seconds = self.wall()
        if not self.world.is_writer:
            return
        save_checkpoint(self.state, self.spec.run_dir / records.CHECKPOINT_FILE)
        faults.hit("checkpoint.after")
        records.write_metrics(self.spec.run_dir, self.state.rows, faults.before_replace("metrics.write"))

    def finish(self, status: str, reason: str | None) -> RunSummary:
        """Write the final metrics and summary for ``status``; close the logger."""
        s, st, p = self.summary, self.state, self.spec.plan
        s.status, s.reason = status, reason
        s.tokens_trained = st.step * p.tokens_per_step
        s.epochs = s.tokens_trained / len(self.ds.train)
        vals = [r["val_loss"] for r in st.rows if not math.isnan(r["val_loss"])]
        s.final_train_loss = st.rows[-1]["train_loss"] if st.rows else None
        s.final_val_loss = vals[-1] if vals else None
        s.best_val_loss = min(vals) if vals else None
        s.wall_seconds = round(self.wall(), 3)
        tps = [r["tokens_per_second"] for r in st.rows]
        s.tokens_per_second = float(np.median(tps)) if tps else None
        s.finished = _now() if status != records.STATUS_RUNNING else None
        s.resumes, s.preemptions = st.resumes, st.preemptions
        if not self.world.is_writer:
            return s
        records.write_metrics(self.spec.run_dir, st.rows, faults.before_replace("metrics.write"))
        records.write_summary(self.spec.run_dir, s, faults.before_replace("summary.write"))
        self.logger.summary({"final_val_loss": s.final_val_loss, "status": status})
        self.logger.finish(exit_code=0 if status == records.STATUS_COMPLETE else 1)
        return s

    def fail(self, e: BaseException) -> None:
        """Mark the run failed with the reason. On a full disk the records may not be writable either: say so."""
        try:
            self.finish(records.STATUS_FAILED, f"{type(e).__name__}: {e}")
        except OSError as e2:
            print(f"[train] {self.spec.run_id}: could not record the failure ({e2}); the last checkpoint and "
                  f"records on disk are intact", file=sys.stderr)
            try:  # the summary alone is small: one more try, without the metrics
                self.summary.status, self.summary.reason = records.STATUS_FAILED, f"{type(e).__name__}: {e}"
                records.write_summary(self.spec.run_dir, self.summary)
            except OSError:
                pass

    def train(self) -> RunSummary:
        """Drive the step loop to the end of the plan, with checkpoints, halting, divergence and preemption."""
        spec, cfg, p, st = self.spec, self.spec.cfg, self.spec.plan, self.state
        t = cfg.train
        rid, ckpt_path = spec.run_id, spec.run_dir / records.CHECKPOINT_FILE
        loss_bound = t.diverge_factor * math.log(p.shape.vocab_size)
        bar = None
        if cfg.log.progress and self.world.is_writer:
            from tqdm import tqdm

            bar = tqdm(total=p.steps, initial=st.step, desc=rid[:40], unit="step", dynamic_ncols=True,
                       file=sys.stderr, mininterval=1.0)
        self.t_start = last_ckpt = time.perf_counter()
        preempted = None
        try:
            with _SignalFlag() as flag:
                self.logger = WandbLogger(cfg.log.wandb and self.world.is_writer, project=cfg.log.wandb_project,
                                          mode=cfg.log.wandb_mode,
                                          entity=cfg.log.wandb_entity, group=cfg.sweep, name=rid, run_dir=spec.run_dir,
                                          config=OmegaConf.to_container(OmegaConf.structured(cfg)) | {"plan": p.row()})
                forward = distributed.wrap(st.model, self.world, self.compute.device)
                forward = torch.compile(forward) if self.summary.compile else forward  # as recorded
                loop = replace(LoopSpec.of(t, p), world=self.world)
                for row in steps(st, self.ds, loop, self.compute, forward):
                    step, loss = row["step"], row["train_loss"]
                    self.logger.log({"train_loss": loss, "val_loss": row["val_loss"], "lr": row["lr"],
                                     "tokens": row["tokens"], "flops": row[f"flops_{t.flops_convention}"],
                                     "tokens_per_second": row["tokens_per_second"]}, step)
                    if bar is not None:
                        bar.update(1)
                        if step % 10 == 0 or step == p.steps:
                            bar.set_postfix(loss=f"{loss:.3f}", val=f"{st.best_val_loss:.3f}",
                                            tok_s=f"{row['tokens_per_second']:,.0f}", refresh=False)
                    faults.hit("step")
                    if not math.isfinite(loss) or (step > p.schedule.warmup_steps and loss > loss_bound):
                        print(f"[train] {rid}: diverged at step {step} (train loss {loss})", file=sys.stderr)
                        out = self.finish(records.STATUS_DIVERGED, f"train loss {loss} at step {step}")
                        ckpt_path.unlink(missing_ok=True)  # final: a relaunch skips a diverged run
                        return out
                    # all ranks stop at the same step, whichever of them the signal reached first
                    if step < p.steps and self.world.any(flag.signum is not None, self.compute.device):
                        preempted = signal.Signals(flag.signum or signal.SIGTERM).name
                        st.preemptions += 1
                        self.checkpoint()
                        self.finish(records.STATUS_RUNNING, f"preempted ({preempted}) at step {step}")
                        break
                    # no checkpoint after the last step: completion follows, and it is safe to die in
                    if step < p.steps and (time.perf_counter() - last_ckpt > t.checkpoint_seconds
                                           or step == t.halt_after_step):
                        self.checkpoint()
                        last_ckpt = time.perf_counter()
                    if step == t.halt_after_step and step < p.steps:  # after its checkpoint, above
                        return self.finish(records.STATUS_RUNNING, f"halted after step {step} (train.halt_after_step)")
        except Exception as e:
            self.fail(e)
            raise
        finally:
            if bar is not None:
                bar.close()
        if preempted is not None:
            print(f"[train] {rid}: {self.summary.reason}: checkpoint written; launch the same command again to resume "
                  f"(exit status {EXIT_PREEMPTED})", file=sys.stderr)
            raise Preempted(self.summary, preempted)
        return self.complete()

    def complete(self) -> RunSummary:
        """Final weights, then the summary marked complete, then the checkpoint removed (each step safe to die in)."""
        rid, run_dir = self.spec.run_id, self.spec.run_dir
        try:
            if self.world.is_writer:
                save_weights(self.state.model, run_dir / records.WEIGHTS_FILE)
            out = self.finish(records.STATUS_COMPLETE, None)
        except Exception as e:
            self.fail(e)
            raise
        if not self.world.is_writer:
            return out
        faults.hit("finish.unlink")
        (run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)
        shape = self.spec.plan.shape
        print(f"[train] {rid}: done: N={shape.params_non_embedding():,} D={self.spec.plan.tokens:,} val loss "
              f"{out.final_val_loss:.4f} ({out.wall_seconds:.1f} s, {out.tokens_per_second:,.0f} tok/s)", file=sys.stderr)
        return out
