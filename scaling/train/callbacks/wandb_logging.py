"""wandb logging of a run (rank 0, ``log.wandb``): each step's metrics, and the final loss and status."""

from __future__ import annotations

from typing import Any, cast

from omegaconf import OmegaConf

from scaling.core import records
from scaling.train.callbacks import Callback
from scaling.train.wandb_log import WandbLogger


class WandbLogging(Callback):
    def __init__(self):
        self.logger = WandbLogger(False)

    def on_start(self, run) -> None:
        cfg = run.spec.cfg
        self.logger = WandbLogger(
            cfg.log.wandb and run.world.is_writer,
            project=cfg.log.wandb_project,
            mode=cfg.log.wandb_mode,
            entity=cfg.log.wandb_entity,
            group=cfg.sweep,
            name=run.spec.run_id,
            run_dir=run.spec.run_dir,
            # to_container of a structured config is a dict (its stubs say any container)
            config=cast(dict[str, Any], OmegaConf.to_container(OmegaConf.structured(cfg)))
            | {"plan": run.spec.plan.row()},
        )

    def after_step(self, run, row) -> None:
        conv = run.spec.cfg.train.flops_convention
        self.logger.log(
            {
                "train_loss": row["train_loss"],
                "val_loss": row["val_loss"],
                "lr": row["lr"],
                "tokens": row["tokens"],
                "flops": row[f"flops_{conv}"],
                "tokens_per_second": row["tokens_per_second"],
            },
            row["step"],
        )

    def on_finish(self, run, summary) -> None:
        self.logger.summary({"final_val_loss": summary.final_val_loss, "status": summary.status})
        self.logger.finish(exit_code=0 if summary.status == records.STATUS_COMPLETE else 1)
