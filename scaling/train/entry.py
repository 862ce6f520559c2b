"""The Hydra entry point: ``python -m scaling.train [overrides]`` trains one run; ``-m`` a sweep (Hydra multirun).

    python -m scaling.train model.size=0.3M train.budget=3e12
    python -m scaling.train -m model.size=30k,100k,300k train.budget=1e12,3e12
    python -m scaling.train -cd sweeps -cn isoflop_cpu            # a preset from sweeps/ (multirun by itself)
    python -m scaling.train -cd sweeps -cn isoflop_cpu dry_run=true hydra/launcher=basic   # print the plan only

A run turns one resolved config into one run directory ``results/<sweep>/<run_id>/`` (schema: scaling/core/records.py).
The run id is derived from the config: a complete run is skipped when launched again, an unfinished one resumes
from its checkpoint and sees exactly the batches it would have seen. The run itself lives in
scaling/train/lifecycle.py (start-up, bookkeeping, finish), scaling/train/loop.py (the step loop) and
scaling/train/state.py (its state, saved and restored); exit statuses are listed in scaling/train/lifecycle.py.
"""

from __future__ import annotations

import shutil
import sys
import traceback
from pathlib import Path
from typing import cast

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from scaling.config.hydra_tree import register
from scaling.config.schema import Config, ConfigError
from scaling.launch import placement, requeue
from scaling.train import faults
from scaling.train.lifecycle import (
    EXIT_BUSY,
    EXIT_CONFIG,
    EXIT_PREEMPTED,
    Preempted,
    RunBusy,
    RunSpec,
    UnsafeCheckpoint,
    resolve,
    run,
    train,
)

__all__ = ["main", "train"]

register()  # before @hydra.main composes scaling/conf/config.yaml over it


def _print_plan(spec: RunSpec) -> None:
    """One line per run; a run that would read its corpus more than planned.MAX_EPOCHS times is refused, by name."""
    from scaling.sweep.planned import MAX_EPOCHS, train_tokens

    cfg, r = spec.cfg, spec.plan.row()
    epochs = r["tokens"] / train_tokens(cfg)
    if epochs > MAX_EPOCHS:
        raise ConfigError(
            f"run {spec.run_id}: D={r['tokens']:,} tokens is {epochs:.2f} epochs of {cfg.data.source}; "
            f"must be at most {MAX_EPOCHS:g} (lower train.budget, raise model.size or use more data)"
        )
    amount = f"C={cfg.train.budget:.3g}" if cfg.train.budget is not None else f"D={cfg.train.tokens:.3g}"
    print(
        f"[plan] {spec.run_id:<40} {amount:<10} size={cfg.model.size:<6} L={r['n_layer']} d={r['d_model']:<4} "
        f"N={r['N']:>10,} D={r['tokens']:>11,} steps={r['steps']:>6,} D/N={r['tokens_per_param']:>7.1f} "
        f"lr={r['lr']:.2e} C[{cfg.train.flops_convention}]={r['C_' + cfg.train.flops_convention]:.3e} "
        f"C[6n]={r['C_6n']:.3e} epochs={epochs:.2f}",
        flush=True,
    )


def _branched(cfg: Config) -> float | None:
    from scaling.sweep.branches import BranchedPlan, trunk_plan
    from scaling.train.branched import run_branched

    if cfg.dry_run:
        print(BranchedPlan((trunk_plan(cfg),), cfg.train.flops_convention), flush=True)
        return None
    summaries = run_branched(cfg)
    return summaries[-1].final_val_loss if summaries else None


def _remove_hydra_folder() -> None:
    """Hydra's folder of this single run (its .hydra/ and log), made before the config reached the trainer."""
    if HydraConfig.initialized():
        out = Path(HydraConfig.get().runtime.output_dir)
        if out.parent.name == "_hydra" and out.name.startswith("run-"):  # only what Hydra made under our pattern
            shutil.rmtree(out, ignore_errors=True)
            for p in (out.parent, out.parent.parent):  # _hydra/ and the sweep folder, when nothing else is there
                if p.is_dir() and not any(p.iterdir()):
                    p.rmdir()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(dcfg: DictConfig):
    cfg = cast(Config, OmegaConf.to_object(dcfg))  # the structured schema's instance (stubs say Any)
    faults.hit("startup.composed")
    multirun = HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"
    try:
        if cfg.branch.tokens or cfg.branch.budgets:  # a trunk and its cooldown branches (scaling/train/branched.py)
            return _branched(cfg)
        spec = resolve(cfg)
        faults.hit("startup.resolved")
        if cfg.dry_run:
            _print_plan(spec)
            return None
        with placement.placed(
            spec.cfg.train.device
        ) as device:  # several GPUs: this job's one (scaling/launch/placement.py)
            spec.cfg.train.device = device
            # the config as trained (a sweep point applied), not as composed
            summary = run(spec, OmegaConf.to_yaml(OmegaConf.structured(spec.cfg)))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        if multirun:  # one bad point must not abandon the rest of a sweep; `dry_run=true` checks them all first
            return None
        _remove_hydra_folder()  # rejected before compute: the launch leaves nothing behind
        sys.exit(EXIT_CONFIG)
    except RunBusy as e:
        if multirun:  # two launches of one sweep share the work: each run is trained by whichever locked it first
            print(
                f"[train] {e}; skipping it in this launch (launch again later to pick it up if that process dies)",
                file=sys.stderr,
            )
            return None
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BUSY)
    except UnsafeCheckpoint as e:  # a file to inspect, not a failure to trace back
        print(f"error: {e}", file=sys.stderr)
        if multirun:
            return None
        sys.exit(1)
    except Preempted:
        requeue.hand_over()  # under submitit: its requeue of this job (exits); the requeued job resumes the run
        sys.exit(EXIT_PREEMPTED)  # the whole launch stops: the job is being taken away; a relaunch resumes
    except Exception:
        if not multirun:
            raise
        # in a sweep, one failed run is recorded as failed (summary.json) and the sweep goes on
        traceback.print_exc()
        return None
    return summary.final_val_loss
