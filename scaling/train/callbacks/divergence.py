"""Divergence: a non-finite train loss, or one above ``train.diverge_factor`` x ln(vocab) (worse than a uniform
guess) after warmup, ends the run as ``diverged``. That is final: its checkpoint goes, and a relaunch skips it."""

from __future__ import annotations

import math
import sys

from scaling.core import records
from scaling.train.callbacks import Callback


class Divergence(Callback):
    def after_step(self, run, row) -> None:
        p, step, loss = run.spec.plan, row["step"], row["train_loss"]
        bound = run.spec.cfg.train.diverge_factor * math.log(p.shape.vocab_size)
        if math.isfinite(loss) and (step <= p.schedule.warmup_steps or loss <= bound):
            return
        print(f"[train] {run.spec.run_id}: diverged at step {step} (train loss {loss})", file=sys.stderr)
        run.stop(run.finish(records.STATUS_DIVERGED, f"train loss {loss} at step {step}"))
        (run.spec.run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)
