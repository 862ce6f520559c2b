"""Early stop (issue 18, item 5; off unless ``train.early_stop_frac`` > 0): at the first evaluation from that fraction
of the steps, the run's end is predicted with a 90% interval. If even the interval's low end lies more than
``train.early_stop_margin`` (relative) above the best final loss among the finished runs of the same budget in the
run's sweep folder (its IsoFLOP neighbours), the run cannot be that budget's minimum: it ends as ``stopped`` (final: a
relaunch skips it), with no final loss and the prediction in its summary, and its remaining compute goes to whatever
the sweep trains next.

The predictor: the sweep prior (``scaling.core.end_prior``: the run's training loss over the last 5% of steps before
the look times the end / training-loss ratio of the sweep folder's finished runs of its schedule, as a power of run
length; interval from the leave-one-out errors of that rule on those runs) where the folder holds at least
``end_prior.MIN_POOL`` such runs; else the Tissue law (``scaling.core.curve_law``) fitted to the curve so far and
extrapolated, with a bootstrap interval. On the harness's CPU sweep the prior's end from 50% is several times closer
(RESULTS.md, issue 18). The summary's ``reason`` (stopped) or ``early_stop_note`` (not stopped) names the predictor.

The prior looks at the first evaluation from the fraction (it needs no annealing seen: its ratio carries the rest of
the schedule's drop). Tissue decides only once the curve so far holds at least ``MIN_ANNEAL_SHARE`` of the run's
annealing area (Tissue's S2 at that step over S2 at the end, from the run's own schedule): before a WSD cooldown S2
is 0 on every point, the law's annealing term is fitted as 0 and the extrapolated end misses the whole cooldown drop
(a near-minimum run would be stopped). Until then each evaluation defers to the next (the prior is tried again at
each); a run that never gets there is not stopped, and its summary's ``early_stop_note`` says why no decision was
made. Ranks stay in step: the writer alone reads the folder, and at each look one collective tells every rank
whether the prior decided, a second whether to stop.

Both sides of the comparison are on one measure: the curve's points and the prior's pool ends are the
``train.eval_tokens`` subset, and so is each neighbour's ``final_subset_val_loss`` (its ``final_val_loss`` for runs
that did not log it).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from scaling.core import end_prior, records
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


def prior_end(run, step: int) -> tuple[tuple[float, float, float], str] | None:
    """The sweep prior's end of ``run`` at ``step`` with its 90% interval (``end_prior.end_interval``) and a line
    naming it; None where the sweep folder holds fewer than ``end_prior.MIN_POOL`` finished runs of the run's
    schedule, or the run's own training loss before ``step`` is not at hand."""
    p, run_dir = run.spec.plan, run.spec.run_dir
    frac = step / p.steps
    try:
        key = end_prior.config_schedule_key(run_dir)
        rows = run.state.rows
        level = end_prior.level(
            np.array([r["step"] for r in rows], dtype=np.int64),
            np.array([r["train_loss"] for r in rows], dtype=float),
            p.steps,
            frac,
        )
        ratios, lengths, _ = end_prior.read_pool(run_dir.parent, key, frac, exclude=(run.spec.run_id,))
        if len(ratios) < end_prior.MIN_POOL:
            return None
        end = end_prior.end_interval(level, ratios, p.steps, lengths)
    except (ValueError, OSError):
        return None
    return end, f"the sweep prior ({len(ratios)} finished runs of its schedule)"


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
        # the writer reads the sweep folder (neighbours may finish while ranks read it): the best finished run of the
        # budget and, where enough runs of the schedule have finished, the sweep prior's end, which needs no annealing
        # seen and decides at once; every rank learns whether it did (one collective at each look, on every rank)
        best, prior = math.inf, None
        if run.world.is_writer:
            best = neighbours_best(run.spec.run_dir, t.budget, run.spec.run_id)
            prior = prior_end(run, step) if math.isfinite(best) else None
        by_prior = run.world.any(prior is not None, run.compute.device)
        # else the Tissue law, once the schedule says so: the same on every rank (the schedule alone decides it)
        shares = self._rates(run)[1]
        if not by_prior and not decision_ready(shares, step, p.steps, t.early_stop_frac):  # look later
            share = float(shares[step - 1])
            note = (
                f"early stop: no decision at step {step} of {p.steps}: the curve so far holds {share:.0%} of the "
                f"run's annealing area (a decision needs {MIN_ANNEAL_SHARE:.0%}; {p.schedule.name} schedule), and "
                f"the sweep prior needs a finished run of its budget and {end_prior.MIN_POOL} of its schedule"
            )
            if run.summary.early_stop_note is None:
                print(f"[train] {run.spec.run_id}: {note}; deferred to later evaluations", file=sys.stderr)
            run.summary.early_stop_note = note
            return
        self.checked = True  # one decision a run: the prior's first look, or the first with enough annealing seen
        run.summary.early_stop_note = None
        end, how = prior if prior is not None else (None, "")
        if run.world.is_writer and prior is None and math.isfinite(best):
            end = self._tissue(run, self._rates(run)[0])
            how = "the Tissue law (too few finished runs of its schedule for the sweep prior)"
        stop = end is not None and end[1] > (1 + t.early_stop_margin) * best
        if run.world.any(stop, run.compute.device):  # every rank stops with the writer
            self._stop(run, row["step"], best, end or (math.nan, math.nan, math.nan), how)
        elif end is not None:
            pred, lo, hi = end
            run.summary.early_stop_note = (
                f"early stop: decided at step {step} of {p.steps} by {how}: predicted final loss {pred:.4f} "
                f"[90%: {lo:.4f}, {hi:.4f}], not above (1 + {t.early_stop_margin:g}) x {best:.4f}, the best finished "
                "run of its budget: trained on"
            )

    @staticmethod
    def _tissue(run, eta: np.ndarray) -> tuple[float, float, float] | None:
        """The Tissue law's extrapolated end of the curve so far (None where it has too few points)."""
        rows = [r for r in run.state.rows if not math.isnan(r["val_loss"])]
        steps = np.array([r["step"] for r in rows], dtype=np.int64)
        loss = np.array([r["val_loss"] for r in rows], dtype=float)
        try:
            return tissue_end(eta, steps, loss, n_boot=N_BOOT)
        except ValueError:  # too few points after warmup for the law: no decision
            return None

    @staticmethod
    def _stop(run, step: int, best: float, end: tuple[float, float, float], how: str) -> None:
        pred, lo, hi = end
        reason = (
            f"early stop at step {step} by {how}: predicted final loss {pred:.4f} [90%: {lo:.4f}, {hi:.4f}] > "
            f"(1 + {run.spec.cfg.train.early_stop_margin:g}) x {best:.4f}, the best finished run of its budget"
        )
        if run.world.is_writer:  # the other ranks stop with it but know no prediction
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
