"""Optional wandb logging: one wandb run per harness run, grouped by sweep. Local files are always written anyway.

Offline mode needs no network: wandb writes ``<run_dir>/wandb/offline-run-*/`` which ``wandb sync`` can upload later.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast


class WandbLogger:
    def __init__(
        self,
        enabled: bool,
        *,
        project: str = "",
        mode: str = "disabled",
        entity: str | None = None,
        group: str = "",
        name: str = "",
        run_dir: Path | None = None,
        config: dict[str, Any] | None = None,
    ):
        self.run = None
        if not enabled or mode == "disabled":
            return
        os.environ.setdefault("WANDB_SILENT", "true")
        import hashlib

        import wandb

        # one wandb run per harness run: the id covers the sweep too, so the same config in two sweeps is two runs
        run_id = hashlib.sha256(f"{group}/{name}".encode()).hexdigest()[:16]
        self.run = wandb.init(
            project=project,
            entity=entity,
            group=group,
            name=name,
            id=run_id,
            resume="allow",
            mode=cast(Literal["online", "offline"], mode),  # LogConfig.check: one of WANDB_MODES, not disabled here
            dir=str(run_dir),
            config=config,
            reinit=True,
            settings=wandb.Settings(console="off", x_disable_stats=True),
        )

    def log(self, metrics: dict[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log({k: v for k, v in metrics.items() if v == v}, step=step)  # drop NaNs (no eval this step)

    def summary(self, values: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.summary.update({k: v for k, v in values.items() if v is not None})

    def finish(self, exit_code: int = 0) -> None:
        if self.run is not None:
            self.run.finish(exit_code=exit_code)
            self.run = None
