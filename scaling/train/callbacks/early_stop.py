"""Early stop (issue 18, item 5; off unless ``train.early_stop_frac`` > 0): at the first evaluation from that fraction
of the steps, the Tissue law (``scaling.core.curve_law``) is fitted to the run's curve so far and its end extrapolated
with a 90% interval. If even the interval's low end lies more than ``train.early_stop_margin`` (relative) above the
best final loss among the finished runs of the same budget in the run's sweep folder (its IsoFLOP neighbours), the
run cannot be that budget's minimum: it ends as ``stopped`` (final: a relaunch skips it), with no final loss and the
prediction in its summary, and its remaining compute goes to whatever the sweep trains next.

A look decides only once the curve so far holds at least ``MIN_ANNEAL_SHARE`` of the run's annealing area (Tissue's
S2 at that step over S2 at the end, from the run's own schedule): before a WSD cooldown S2 is 0 on every point, the
law's annealing term is fitted as 0 and the extrapolated end misses the whole cooldown drop (a near-minimum run would
be stopped). Until then each evaluation defers to the next; a run that never gets there is not stopped, and its
summary's ``early_stop_note`` says why no decision was made.

Both sides of the comparison are on one measure: the curve's points are the ``train.eval_tokens`` subset, and so is
each neighbour's ``final_subset_val_loss`` (its ``final_val_loss`` for runs that did not log it).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from scaling.core import records
from scaling.core.curve_law import MIN_ANNEAL_SHARE, annealing_shares, decision_ready, tissue_end
from scaling.train.callbacks import Callback

N_BOOT = 50  # bootstrap refits of the extrapolated end (milliseconds each)


def neighbours_best(run_dir, budget: float | None, run_id: str) -> float:
    """The lowest final loss (on the intermediate evaluations' measure where logged) among the complete runs of
    ``budget`` in ``run_dir``'s sweep folder other than ``run_id``; inf where there is none."""
    best = math.inf
    if budget is None:
        return best
    for d in records.iter_run_dirs(run_dir.parent):
        if d.name == run_id or not (d / records.SUMMARY_FILE).exists():
            continue
        try:
            s = records.read_summary(d)
        except (ValueError, OSError, KeyError, TypeError):
            continue
        if s.status != records.STATUS_COMPLETE or s.budget is None or not math.isclose(s.budget, budget, rel_tol=1e-6):
            continue
        loss = s.final_subset_val_loss if s.final_subset_val_loss is not None else s.final_val_loss
        if loss is not None and math.isfinite(loss):
            best = min(best, loss)
    return best


class EarlyStop(Callback):
    def __init__(self) -> None:
        self.checked = False
        self.eta: np.ndarray | None = None  # the run's rates, update by update (from its schedule)
        self.shares: np.ndarray | None = None  # annealing_shares(eta)

    def on_start(self, run) -> None:
        self.checked = False
        self.eta = self.shares = None

    def _rates(self, run) -> tuple[np.ndarray, np.ndarray]:
        if self.eta is None or self.shares is None:
            p = run.spec.plan
            self.eta = np.array([p.schedule.lr_at(i) for i in range(p.steps)], dtype=float)
            self.shares = annealing_shares(self.eta)
        return self.eta, self.shares

    def after_eval(self, run, row) -> None:
        t, p = run.spec.cfg.train, run.spec.plan
        step = row["step"]
        if self.checked or t.early_stop_frac <= 0 or step >= p.steps or step < t.early_stop_frac * p.steps:
            return
        # the same on every rank (the schedule alone decides it), so the ranks' collectives stay in step
        shares = self._rates(run)[1]
        if not decision_ready(shares, step, p.steps, t.early_stop_frac):  # the decay's drop not seen yet: look later
            share = float(shares[step - 1])
            note = (
                f"early stop: no decision at step {step} of {p.steps}: the curve so far holds {share:.0%} of the "
                f"run's annealing area (a decision needs {MIN_ANNEAL_SHARE:.0%}; {p.schedule.name} schedule)"
            )
            if run.summary.early_stop_note is None:
                print(f"[train] {run.spec.run_id}: {note}; deferred to later evaluations", file=sys.stderr)
            run.summary.early_stop_note = note
            return
        self.checked = True  # one decision a run: the first evaluation from the fraction with enough annealing seen
        run.summary.early_stop_note = None
        # the writer decides (neighbours may finish while ranks read them); every rank stops with it
        best, end = self._look(run, self._rates(run)[0]) if run.world.is_writer else (math.inf, None)
        stop = end is not None and end[1] > (1 + t.early_stop_margin) * best
        if run.world.any(stop, run.compute.device):
            self._stop(run, row["step"], best, end or (math.nan, math.nan, math.nan))

    @staticmethod
    def _look(run, eta: np.ndarray) -> tuple[float, tuple[float, float, float] | None]:
        """The best finished neighbour and the extrapolated end (None where there is nothing to compare)."""
        t = run.spec.cfg.train
        best = neighbours_best(run.spec.run_dir, t.budget, run.spec.run_id)
        if not math.isfinite(best):
            return best, None
        rows = [r for r in run.state.rows if not math.isnan(r["val_loss"])]
        steps = np.array([r["step"] for r in rows], dtype=np.int64)
        loss = np.array([r["val_loss"] for r in rows], dtype=float)
        try:
            return best, tissue_end(eta, steps, loss, n_boot=N_BOOT)
        except ValueError:  # too few points after warmup for the law: no decision
            return best, None

    @staticmethod
    def _stop(run, step: int, best: float, end: tuple[float, float, float]) -> None:
        pred, lo, hi = end
        reason = (
            f"early stop at step {step}: predicted final loss {pred:.4f} [90%: {lo:.4f}, {hi:.4f}] > "
            f"(1 + {run.spec.cfg.train.early_stop_margin:g}) x {best:.4f}, the best finished run of its budget"
        )
        print(f"[train] {run.spec.run_id}: {reason}", file=sys.stderr)
        # one atomic summary write with the stop's fields already set: a kill at any moment leaves either the running
        # run (relaunched, it resumes) or the stopped one without a final loss, never a final status with a loss
        s = run.finish(
            records.STATUS_STOPPED,
            reason,
            dict(
                final_val_loss=None,  # it has no final loss
                final_val_bpb=None,
                final_subset_val_loss=None,
                stopped_step=int(step),
                predicted_final_loss=pred,
                predicted_final_loss_lo=lo,
                predicted_final_loss_hi=hi,
            ),
        )
        if run.world.is_writer:
            (run.spec.run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)
        run.stop(s)
