"""One training run per call: ``python -m scaling.train [overrides]``; a sweep with ``-m`` (Hydra multirun).

    python -m scaling.train model.size=0.3M train.budget=3e12
    python -m scaling.train -m model.size=30k,100k,300k train.budget=1e12,3e12
    python -m scaling.train -cd sweeps -cn isoflop_cpu            # a preset from sweeps/ (multirun by itself)
    python -m scaling.train -cd sweeps -cn isoflop_cpu dry_run=true hydra/launcher=basic   # print the plan only

A run turns one resolved config into one run directory ``results/<sweep>/<run_id>/`` (schema: scaling/records.py).
The run id is derived from the config: a complete run is skipped when launched again, an unfinished one resumes
from its checkpoint and sees exactly the batches it would have seen.
"""
from __future__ import annotations

import fcntl
import math
import os
import platform
import sys
import time
import traceback
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from scaling import records
from scaling.config import Config, ConfigError, apply_point, plan, run_id, validate
from scaling.data import Dataset, prepare
from scaling.model import GPT
from scaling.records import RunSummary
from scaling.wandb_log import WandbLogger

ConfigStore.instance().store(name="base_config", node=Config)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name!r}: CUDA is not available on this machine; use 'cpu' or 'auto'")
    dev = torch.device(name)
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"train.device={name!r}: must be cuda:0 .. cuda:{torch.cuda.device_count() - 1} here")
    return dev


def _versions() -> dict[str, str]:
    import hydra as _h
    import numpy as _np
    import scaling

    return {"scaling": scaling.__version__, "torch": torch.__version__, "numpy": _np.__version__,
            "hydra": _h.__version__, "python": platform.python_version()}


@torch.no_grad()
def evaluate(model: GPT, ds: Dataset, *, eval_tokens: int, batch_size: int, seq_len: int, device, autocast) -> float:
    model.eval()
    total, count = 0.0, 0
    for x, y in ds.val_batches(eval_tokens, batch_size, seq_len):
        xb, yb = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
        with autocast:
            _, loss = model(xb, yb)
        total += loss.item() * y.size
        count += y.size
    model.train()
    return total / count


def _save_checkpoint(run_dir: Path, state: dict) -> None:
    path = run_dir / records.CHECKPOINT_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(cfg: Config, resolved_yaml: str | None = None) -> RunSummary:
    """Train one run to completion (or resume it); return its summary. Raises ConfigError before any compute."""
    apply_point(cfg)
    validate(cfg)
    p = plan(cfg)
    rid = run_id(cfg)
    run_dir = Path(cfg.results_dir).absolute() / cfg.sweep / rid
    _device(cfg.train.device)  # a device this machine lacks is a config error, before anything is written

    prev = _finished(run_dir)
    if prev is not None:
        return prev
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = open(run_dir / ".lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise RuntimeError(f"{run_dir}: another process is training this run right now") from None
    try:
        prev = _finished(run_dir)  # it may have finished while we waited to look
        return prev if prev is not None else _train_locked(cfg, p, rid, run_dir, resolved_yaml)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def _finished(run_dir: Path) -> RunSummary | None:
    """The summary of a run that must not be trained again (complete, or diverged: rerunning would diverge again)."""
    if not (run_dir / records.SUMMARY_FILE).exists():
        return None
    try:
        prev = records.read_summary(run_dir)
    except (ValueError, OSError, KeyError, TypeError):
        return None  # unreadable summary: the run is redone
    if prev.status == records.STATUS_COMPLETE:
        print(f"[train] {prev.run_id}: already complete (final val loss {prev.final_val_loss:.4f}); skipping",
              file=sys.stderr)
        return prev
    if prev.status == records.STATUS_DIVERGED:
        print(f"[train] {prev.run_id}: diverged before ({prev.reason}); skipping. Delete {run_dir} to retry it.",
              file=sys.stderr)
        return prev
    return None


def _train_locked(cfg: Config, p, rid: str, run_dir: Path, resolved_yaml: str | None) -> RunSummary:
    t_cfg = cfg.train

    device = _device(t_cfg.device)
    if t_cfg.threads:
        torch.set_num_threads(t_cfg.threads)
    use_bf16 = t_cfg.dtype == "bf16" or (t_cfg.dtype == "auto" and device.type == "cuda")
    if use_bf16 and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if t_cfg.dtype == "bf16":
            raise ConfigError(f"train.dtype='bf16': {torch.cuda.get_device_name(device)} does not support bf16")
        use_bf16 = False  # auto on an older GPU: fp32 (recorded as such)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_bf16 else nullcontext()
    if device.type == "cuda":
        torch.set_float32_matmul_precision("high")  # TF32 matmuls for whatever runs outside autocast

    def sync() -> None:  # CUDA work is asynchronous: time a step only once it has finished
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # prepare() has just verified every file's checksum under its lock: loading need not hash them again
    ds = Dataset.load(prepare(cfg.data.source, vocab_size=cfg.data.vocab_size, cache_dir=cfg.data.cache_dir,
                              folio=cfg.data.folio, val_fraction=cfg.data.val_fraction), verified=True)
    if ds.vocab_size != cfg.data.vocab_size:
        raise ConfigError(f"data.vocab_size={cfg.data.vocab_size}: the prepared tokenizer has {ds.vocab_size} tokens")

    if resolved_yaml is None:
        resolved_yaml = OmegaConf.to_yaml(OmegaConf.structured(cfg))
    records.write_text_atomic(run_dir / records.CONFIG_FILE, resolved_yaml)

    shape, sched = p.shape, p.schedule

    def build():
        torch.manual_seed(t_cfg.seed)
        m = GPT(shape)
        m.check_param_count()
        m.to(device)
        decay = [q for q in m.parameters() if q.dim() >= 2]
        no_decay = [q for q in m.parameters() if q.dim() < 2]
        o = torch.optim.AdamW(
            [{"params": decay, "weight_decay": t_cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=sched.peak_lr, betas=(t_cfg.beta1, t_cfg.beta2), fused=device.type == "cuda",
        )
        return m, o

    model, opt = build()

    micro = t_cfg.micro_batch_size or t_cfg.batch_size
    n_micro = t_cfg.batch_size // micro
    eval_interval = t_cfg.eval_interval or max(1, math.ceil(p.steps / 16))
    summary = RunSummary(
        run_id=rid, sweep=cfg.sweep, size=str(cfg.model.size),
        n_layer=shape.n_layer, d_model=shape.d_model, n_head=shape.n_head, d_ff=shape.d_ff,
        vocab_size=shape.vocab_size, seq_len=shape.seq_len, tie_embeddings=shape.tie_embeddings,
        params_total=shape.params_total(), params_embedding=shape.params_embedding(),
        params_non_embedding=shape.params_non_embedding(),
        budget=t_cfg.budget, budget_convention=t_cfg.flops_convention if t_cfg.budget is not None else None,
        tokens=p.tokens, steps=p.steps, tokens_per_step=p.tokens_per_step,
        flops_per_token=p.flops_per_token, flops=p.flops,
        lr=sched.peak_lr, schedule=sched.name, warmup_steps=sched.warmup_steps, seed=t_cfg.seed,
        data_source=cfg.data.source, data_checksum=ds.checksum, unique_train_tokens=int(len(ds.train)),
        **ds.known_entropy(shape.seq_len),  # synthetic sources: data_entropy_rate, data_loss_floor (else None)
        device=str(device), dtype="bf16" if use_bf16 else "fp32", versions=_versions(), started=_now(),
    )

    # resume
    rows: list[dict] = []
    start_step, wall_before, best_val = 0, 0.0, math.inf
    ckpt_path = run_dir / records.CHECKPOINT_FILE
    if ckpt_path.exists():
        try:
            state = torch.load(ckpt_path, map_location=device, weights_only=False)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start_step, rows, wall_before = int(state["step"]), list(state["rows"]), float(state["wall_seconds"])
            summary.started = state["started"]
            best_val = min((r["val_loss"] for r in rows if r["val_loss"] == r["val_loss"]), default=math.inf)
            if not (0 < start_step < p.steps and len(rows) == start_step):
                raise ValueError(f"step {start_step} does not fit this run's {p.steps} steps / {len(rows)} rows")
            print(f"[train] {rid}: resuming at step {start_step}/{p.steps}", file=sys.stderr)
        except Exception as e:  # a checkpoint we cannot use is not half-trusted: start over from scratch, say so
            print(f"[train] {rid}: checkpoint unusable ({e}); starting from step 0", file=sys.stderr)
            model, opt = build()
            rows, start_step, wall_before, best_val = [], 0, 0.0, math.inf
            summary.started = _now()
    fwd = torch.compile(model) if t_cfg.compile else model
    records.write_summary(run_dir, summary)

    logger = WandbLogger(False)  # replaced inside the try below, so a wandb start-up error marks the run failed
    counters = {c: 0.0 for c in records.FLOP_CONVENTIONS}
    initial_loss_bound = t_cfg.diverge_factor * math.log(shape.vocab_size)

    def checkpoint(step: int, wall: float) -> None:
        _save_checkpoint(run_dir, {"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                                   "rows": rows, "wall_seconds": wall, "started": summary.started})
        records.write_metrics(run_dir, rows)

    def finish(status: str, reason: str | None, step: int, wall: float) -> RunSummary:
        summary.status, summary.reason = status, reason
        summary.tokens_trained = step * p.tokens_per_step
        summary.epochs = summary.tokens_trained / len(ds.train)
        train_losses = [r["train_loss"] for r in rows]
        vals = [r["val_loss"] for r in rows if r["val_loss"] == r["val_loss"]]
        summary.final_train_loss = train_losses[-1] if train_losses else None
        summary.final_val_loss = vals[-1] if vals else None
        summary.best_val_loss = min(vals) if vals else None
        summary.wall_seconds = round(wall, 3)
        tps = [r["tokens_per_second"] for r in rows]
        summary.tokens_per_second = float(np.median(tps)) if tps else None
        summary.finished = _now() if status != records.STATUS_RUNNING else None
        records.write_metrics(run_dir, rows)
        records.write_summary(run_dir, summary)
        logger.summary({"final_val_loss": summary.final_val_loss, "status": status})
        logger.finish(exit_code=0 if status == records.STATUS_COMPLETE else 1)
        return summary

    if rows:  # counters continue where the checkpoint left off
        counters = {c: rows[-1][f"flops_{c}"] for c in counters}

    t_start = time.perf_counter()
    last_ckpt = time.perf_counter()
    step = start_step
    bar = None
    if cfg.log.progress:
        from tqdm import tqdm

        bar = tqdm(total=p.steps, initial=start_step, desc=rid[:40], unit="step", dynamic_ncols=True,
                   file=sys.stderr, mininterval=1.0)
    try:
        logger = WandbLogger(cfg.log.wandb, project=cfg.log.wandb_project, mode=cfg.log.wandb_mode,
                             entity=cfg.log.wandb_entity, group=cfg.sweep, name=rid, run_dir=run_dir,
                             config=OmegaConf.to_container(OmegaConf.structured(cfg)) | {"plan": p.row()})
        model.train()
        while step < p.steps:
            sync()
            t0 = time.perf_counter()
            lr = sched.lr_at(step)
            for g in opt.param_groups:
                g["lr"] = lr
            loss_sum = 0.0
            for k in range(n_micro):
                x, y = ds.train_batch(t_cfg.seed, step, k, micro, shape.seq_len)
                xb, yb = torch.from_numpy(x).to(device, non_blocking=True), torch.from_numpy(y).to(device, non_blocking=True)
                with autocast:
                    _, loss = fwd(xb, yb)
                (loss / n_micro).backward()
                loss_sum += loss.item()
            if t_cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), t_cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            train_loss = loss_sum / n_micro
            sync()
            dt = time.perf_counter() - t0
            step += 1
            for c in counters:
                counters[c] += p.flops_per_token[c] * p.tokens_per_step
            val = float("nan")
            if step % eval_interval == 0 or step == p.steps:
                # the final loss, the number every fit uses, is measured on the whole validation split by default
                n_eval = (t_cfg.final_eval_tokens or len(ds.val)) if step == p.steps else t_cfg.eval_tokens
                val = evaluate(model, ds, eval_tokens=n_eval, batch_size=max(micro, 32), seq_len=shape.seq_len,
                               device=device, autocast=autocast)
                best_val = min(best_val, val)
            rows.append({"step": step, "tokens": step * p.tokens_per_step,
                         **{f"flops_{c}": counters[c] for c in counters},
                         "train_loss": train_loss, "val_loss": val, "lr": lr,
                         "tokens_per_second": p.tokens_per_step / dt, "schedule_complete": sched.is_complete(step - 1)})
            logger.log({"train_loss": train_loss, "val_loss": val, "lr": lr, "tokens": step * p.tokens_per_step,
                        "flops": counters[t_cfg.flops_convention], "tokens_per_second": p.tokens_per_step / dt}, step)
            if bar is not None:
                bar.update(1)
                if step % 10 == 0 or step == p.steps:
                    bar.set_postfix(loss=f"{train_loss:.3f}", val=f"{best_val:.3f}", tok_s=f"{p.tokens_per_step / dt:,.0f}",
                                    refresh=False)
            if not math.isfinite(train_loss) or (step > sched.warmup_steps and train_loss > initial_loss_bound):
                wall = wall_before + time.perf_counter() - t_start
                print(f"[train] {rid}: diverged at step {step} (train loss {train_loss})", file=sys.stderr)
                out = finish(records.STATUS_DIVERGED, f"train loss {train_loss} at step {step}", step, wall)
                ckpt_path.unlink(missing_ok=True)  # final: a relaunch skips a diverged run
                return out
            if time.perf_counter() - last_ckpt > t_cfg.checkpoint_seconds or step == t_cfg.halt_after_step:
                checkpoint(step, wall_before + time.perf_counter() - t_start)
                last_ckpt = time.perf_counter()
            if step == t_cfg.halt_after_step and step < p.steps:
                return finish(records.STATUS_RUNNING, f"halted after step {step} (train.halt_after_step)", step,
                              wall_before + time.perf_counter() - t_start)
    except Exception as e:
        wall = wall_before + time.perf_counter() - t_start
        finish(records.STATUS_FAILED, f"{type(e).__name__}: {e}", step, wall)
        raise
    finally:
        if bar is not None:
            bar.close()

    wall = wall_before + time.perf_counter() - t_start
    torch.save(model.state_dict(), run_dir / f".{records.WEIGHTS_FILE}.tmp")
    os.replace(run_dir / f".{records.WEIGHTS_FILE}.tmp", run_dir / records.WEIGHTS_FILE)
    out = finish(records.STATUS_COMPLETE, None, step, wall)
    ckpt_path.unlink(missing_ok=True)
    print(f"[train] {rid}: done: N={shape.params_non_embedding():,} D={p.tokens:,} val loss {out.final_val_loss:.4f} "
          f"({wall:.1f} s, {out.tokens_per_second:,.0f} tok/s)", file=sys.stderr)
    return out


def _print_plan(cfg: Config) -> None:
    p = plan(cfg)
    r = p.row()
    amount = f"C={cfg.train.budget:.3g}" if cfg.train.budget is not None else f"D={cfg.train.tokens:.3g}"
    print(f"[plan] {run_id(cfg):<40} {amount:<10} size={cfg.model.size:<6} L={r['n_layer']} d={r['d_model']:<4} "
          f"N={r['N']:>10,} D={r['tokens']:>11,} steps={r['steps']:>6,} D/N={r['tokens_per_param']:>7.1f} "
          f"lr={r['lr']:.2e} C[{cfg.train.flops_convention}]={r['C_' + cfg.train.flops_convention]:.3e} "
          f"C[6n]={r['C_6n']:.3e}", flush=True)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(dcfg: DictConfig):
    cfg: Config = OmegaConf.to_object(dcfg)
    multirun = HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"
    try:
        apply_point(cfg)
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if multirun:  # one bad point must not abandon the rest of a sweep; `dry_run=true` checks them all first
            return None
        sys.exit(2)
    if cfg.dry_run:
        _print_plan(cfg)
        return None
    try:
        # the config as trained (a sweep point applied), not as composed
        summary = train(cfg, OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if multirun:
            return None
        sys.exit(2)
    except Exception:
        if not multirun:
            raise
        # in a sweep, one failed run is recorded as failed (summary.json) and the sweep goes on
        traceback.print_exc()
        return None
    return summary.final_val_loss


if __name__ == "__main__":
    # Call main through its importable name, not as __main__: the joblib launcher pickles the task function, and a
    # function from __main__ would be pickled by value (dragging torch's modules along) instead of by reference.
    from scaling.train import main as _main

    _main()
