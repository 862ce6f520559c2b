"""The progress bar of a run (rank 0, ``log.progress``): steps, train loss, best validation loss, tokens/s."""

from __future__ import annotations

import sys

from scaling.train.callbacks import Callback


class ProgressBar(Callback):
    def __init__(self):
        self.bar = None

    def on_start(self, run) -> None:
        if not (run.spec.cfg.log.progress and run.world.is_writer):
            return
        from tqdm import tqdm  # only where a bar is drawn

        self.bar = tqdm(
            total=run.spec.plan.steps,
            initial=run.state.step,
            desc=run.spec.run_id[:40],
            unit="step",
            dynamic_ncols=True,
            file=sys.stderr,
            mininterval=1.0,
        )

    def after_step(self, run, row) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if row["step"] % 10 == 0 or row["step"] == run.spec.plan.steps:
            self.bar.set_postfix(
                loss=f"{row['train_loss']:.3f}",
                val=f"{run.state.best_val_loss:.3f}",
                tok_s=f"{row['tokens_per_second']:,.0f}",
                refresh=False,
            )

    def on_finish(self, run, summary) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
