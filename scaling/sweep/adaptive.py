"""The adaptive stage of the sequential sweep: after the ladder's budgets, each next batch of runs is the one expected
to narrow the interval of N_opt at the target budget most per FLOP (scaling/core/design.py), refitted between batches.

Candidates: new sizes around each bracketed budget's minimum, another seed of a measured size, the next ladder budget
(a whole IsoFLOP curve of ``points`` sizes). Each is planned exactly as the trainer will train it (family sizes, whole
steps, FLOPs, this machine's predicted seconds); the best ones fill a batch of ``jobs`` runs (both workers busy), the
batch trains as one Hydra multirun, the fit is redone from the summaries (the complete runs, and any stopped early at
their predicted end: ``read_points``), and the next batch is chosen. A batch must fit the stage's seconds left (its
predicted time scaled by measured over predicted seconds so far, plus a batch's start-up): when the best one does
not, the best-scoring runs that do take its place, or the best single run on all the workers' threads
(scaling/sweep/batching.py); the stage stops when no run that would narrow the interval fits. Another seed of a size
whose every run was stopped early is no candidate (its curve said it is far above the minimum).

Everything is recorded in plan.json under ``adaptive``: the stage's budget of seconds and runs, and every batch with
its runs, why each was chosen (its kind, its expected width after, its score, its predicted seconds against the
seconds left, the fallback rule that chose it), the interval before and after, and its wall time; ``stopped`` says
why the stage ended; ``predicted_points``, the early-stopped runs its last fit read at their predicted end.
A rerun after a kill replays the recorded batches first (complete runs are skipped: nothing is retrained) and then
continues from the same budget, so a finished sweep rerun trains nothing.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

from scaling.core import design, records, stopped
from scaling.sweep import batching
from scaling.sweep.ladder import LADDER
from scaling.sweep.planned import PlannedRun, plan_points
from scaling.sweep.priors import Prior
from scaling.sweep.timing import wall_seconds

BATCH_OVERHEAD_SECONDS = 10.0  # a batch's Hydra multirun start and finish, before one has been measured


class Sweep(Protocol):
    """What the adaptive stage uses of its sweep (scaling.sweep.sequential.Sweep)."""

    out: Path
    plan_path: Path
    base: Any
    catalogue: list[tuple[float, int]]
    step: float
    points: int
    jobs: int
    n_train: int
    probe_seconds: float
    max_epochs: float

    def plan_budget(self, budget: float, prior: Prior, sizes: Optional[list[float]] = None) -> list[PlannedRun]: ...

    def train(self, name: str, runs: list[PlannedRun], threads: Optional[int] = None) -> None: ...

    def add_runs(self, runs: list[PlannedRun]) -> None: ...


def read_done(out: Path, run_ids: list[str]) -> list[records.RunSummary]:
    """The summaries of the complete runs with a finite final loss: the runs whose measured seconds time the sweep.
    The sweep's data points are ``read_points``: these, and the early-stopped runs at their predicted end."""
    found = []
    for rid in run_ids:
        try:
            s = records.read_summary(out / rid)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if s.status == records.STATUS_COMPLETE and s.final_val_loss is not None and math.isfinite(s.final_val_loss):
            found.append(s)
    return found


@dataclass(frozen=True)
class Point:
    """One data point of the sweep's in-sweep fits: a run and the loss it enters them with."""

    summary: records.RunSummary
    loss: float
    predicted: bool  # an early-stopped run at its predicted end (final: never retrained), not a measured loss


def read_points(out: Path, run_ids: list[str]) -> list[Point]:
    """The sweep's data points among ``run_ids``, in their order (each once): the complete runs at their final loss,
    and the early-stopped ones at their predicted end mapped onto the final loss's measure by the median offset of
    the complete runs of the sweep folder ``out`` (scaling.core.stopped: the report's loader reads them the same
    way). Runs that ended otherwise (diverged, failed) are final too, so the trainer never retrains them, but are no
    data; nor is a stopped run's last loss (a summary left by an older trainer's two-write stop may carry one)."""
    summaries = []
    for rid in dict.fromkeys(run_ids):
        try:
            summaries.append(records.read_summary(out / rid))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    offset = None
    if any(s.status == records.STATUS_STOPPED for s in summaries):
        offset = stopped.subset_offset(_folder_summaries(out))
    points = []
    for s in summaries:
        loss = stopped.point_loss(s, offset)
        if loss is not None:
            points.append(Point(s, loss, s.status == records.STATUS_STOPPED))
    return points


def _folder_summaries(out: Path) -> list[records.RunSummary]:
    found = []
    for d in records.iter_run_dirs(out):
        try:
            found.append(records.read_summary(d))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _cost(runs: list[PlannedRun], workers: int, *, scale: float, overhead: float) -> float:
    """A batch's predicted seconds: the launcher's makespan of its runs on ``workers`` workers, scaled by the sweep's
    measured over predicted seconds, plus a batch's start-up and finish."""
    return wall_seconds(runs, workers) * scale + overhead


def batch_overhead(batches: list[dict]) -> float:
    """Seconds a batch costs beyond its runs (Hydra's start, the launcher's workers, imports): measured on earlier
    batches as their wall time less the makespan of their runs' own measured seconds (``runs_seconds``), else
    ``BATCH_OVERHEAD_SECONDS``. (Not wall less the batch's prediction: that prediction already holds this overhead,
    so the difference is the prediction's error, ~0 once a batch was predicted well.) A batch replayed after a kill
    records no ``runs_seconds``; one whose runs took longer than its wall time is not counted."""
    seen = [
        b["wall_seconds"] - b["runs_seconds"]
        for b in batches
        if b.get("wall_seconds") and b.get("runs_seconds") and b["wall_seconds"] >= b["runs_seconds"]
    ]
    return sum(seen) / len(seen) if seen else BATCH_OVERHEAD_SECONDS


def _say(msg: str) -> None:
    print(f"[adaptive] {msg}", file=sys.stderr, flush=True)


def _fmt_interval(iv: dict) -> str:
    if iv.get("n_opt_lo") is None:
        return "no interval yet (fewer than 3 bracketed budgets)"
    return (
        f"N_opt({iv['target']:.3g}) = {iv['n_opt']:.3g} [{iv['n_opt_lo']:.3g}, {iv['n_opt_hi']:.3g}] "
        f"(x{math.exp(iv['width']):.3g} wide), a = {iv['a']:.3f} [{iv['a_lo']:.3f}, {iv['a_hi']:.3f}]"
    )


def seed_spread(f: design.Fit) -> dict[str, Any]:
    """The measured seed-to-seed spread: each size run more than once (its runs' sd) and the pooled sd."""
    pts = []
    for b in f.budgets:
        for x, k, sd, y in zip(b.x, b.k, b.seed_sd, b.y):
            if k > 1:
                pts.append({"budget": b.budget, "N": round(math.exp(x)), "runs": int(k), "mean": y, "sd": sd})
    ss = sum((p["runs"] - 1) * p["sd"] ** 2 for p in pts)
    dof = sum(p["runs"] - 1 for p in pts)
    return {
        "points": pts,
        "pooled_sd": math.sqrt(ss / dof) if dof else None,
        "dof": dof,
        "noise_sd": f.sd,
        "noise_source": f.sd_source,
        "gated": [{"budget": r.budget, "N": round(r.n), "loss": r.loss, "why": why} for r, why in f.dropped],
    }


class Adaptive:
    """The adaptive stage of ``sweep`` (a scaling.sweep.sequential.Sweep whose ladder stages have run)."""

    def __init__(
        self,
        sweep: Sweep,
        prior: Prior,
        *,
        budget_seconds: float,
        max_runs: Optional[int] = None,
        target: Optional[float] = None,
        next_rungs: int = 2,
    ):
        self.sweep, self.prior = sweep, prior
        self.budget_seconds, self.max_runs, self.target, self.next_rungs = budget_seconds, max_runs, target, next_rungs
        self._cache: dict[tuple, PlannedRun] = {}  # (budget, family target[, seed]) -> its planned run
        self._threaded: dict[str, PlannedRun] = {}  # run id -> the run planned on all the workers' threads

    # -- what is on disk ---------------------------------------------------------------------------------------
    def _doc(self) -> dict:
        return json.loads(self.sweep.plan_path.read_text())

    def _save(self, doc: dict) -> None:
        records.write_json_atomic(self.sweep.plan_path, doc, indent=1)

    def _done(self, doc: dict) -> list[records.RunSummary]:
        return read_done(self.sweep.out, list(dict.fromkeys(r["run_id"] for r in doc["runs"])))

    def _points(self, doc: dict) -> list[Point]:
        return read_points(self.sweep.out, [r["run_id"] for r in doc["runs"]])

    def _fit(self, doc: dict) -> design.Fit:
        """The design fit through the sweep's data points: complete runs and early-stopped ones at their predicted
        end (``read_points``)."""
        runs = [
            design.Run(float(p.summary.budget or 0), float(p.summary.params_non_embedding), p.loss)
            for p in self._points(doc)
        ]
        return design.fit(runs, target=self.target)

    def _stopped_only(self, doc: dict) -> set[tuple[float, int]]:
        """(budget, N) of the points whose every run was stopped early: their curves said they are far above the
        minimum, so another seed there is no candidate."""
        seen: dict[tuple[float, int], bool] = {}
        for p in self._points(doc):
            key = (float(p.summary.budget or 0), int(p.summary.params_non_embedding))
            seen[key] = seen.get(key, True) and p.predicted
        return {k for k, only in seen.items() if only}

    def _scale(self, doc: dict) -> float:
        """Measured over predicted seconds of the sweep's complete runs (a loaded machine runs slower; an
        early-stopped run took less than its plan by design, so it says nothing of the machine)."""
        pred = {r["run_id"]: r["seconds"] for r in doc["runs"]}
        done = [(pred[s.run_id], s.wall_seconds) for s in self._done(doc) if s.run_id in pred and s.wall_seconds]
        p, m = sum(a for a, _ in done), sum(b for _, b in done)
        return m / p if p > 0 and m > 0 else 1.0

    def _runs_seconds(self, runs: list[PlannedRun], workers: int) -> float | None:
        """The makespan of ``runs``' measured seconds (their summaries' wall time) on ``workers`` workers, in launch
        order; None where a run has no measured time."""
        done = {}  # complete and early-stopped runs alike: a stopped run's seconds are what it took
        for r in runs:
            try:
                s = records.read_summary(self.sweep.out / r.run_id)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if s.status in (records.STATUS_COMPLETE, records.STATUS_STOPPED):
                done[r.run_id] = s.wall_seconds
        if any(not done.get(r.run_id) for r in runs):
            return None
        return wall_seconds([types.SimpleNamespace(seconds=float(done[r.run_id])) for r in runs], workers)

    def _base(self, threads: Optional[int]) -> Any:
        """The sweep's base config, with ``threads`` torch threads per run where given (a run alone on every core)."""
        if not threads:
            return self.sweep.base
        base = copy.deepcopy(self.sweep.base)
        base.train.threads = threads
        return base

    def _alone(self, run: PlannedRun) -> PlannedRun:
        """``run`` planned on all ``jobs`` threads (one run using every core: its seconds from a probe at that many
        threads, cached per machine and shape like every probe)."""
        if run.run_id not in self._threaded:
            (self._threaded[run.run_id],) = plan_points(
                self._base(self.sweep.jobs),
                [run.point],
                n_train=self.sweep.n_train,
                probe_seconds=self.sweep.probe_seconds,
            )
        return self._threaded[run.run_id]

    # -- candidates as planned runs ------------------------------------------------------------------------------
    def _planned(self, budget: float, n: float, doc: dict) -> PlannedRun:
        """The family size nearest ``n`` at ``budget``, with the next unused seed if that point has run before."""
        target = min(self.sweep.catalogue, key=lambda tn: abs(math.log(tn[1] / n)))[0]
        if (budget, target) not in self._cache:
            (self._cache[budget, target],) = self.sweep.plan_budget(budget, self.prior, [target])
        r = self._cache[budget, target]
        seeds = [int(x["point"].get("seed", 0)) for x in doc["runs"] if x["budget"] == budget and x["N"] == r.N]
        if seeds:
            key = (budget, target, max(seeds) + 1)
            if key not in self._cache:
                (self._cache[key],) = plan_points(
                    self.sweep.base,
                    [dict(r.point, seed=key[2])],
                    n_train=self.sweep.n_train,
                    probe_seconds=self.sweep.probe_seconds,
                )
            r = self._cache[key]
        return r

    def _candidates(self, f: design.Fit, doc: dict) -> list[tuple[design.Candidate, list[PlannedRun]]]:
        top = max(b.budget for b in f.budgets)
        nxt = [c for c in LADDER if c > top * 1.01][: self.next_rungs]
        out = []
        stopped_only = self._stopped_only(doc)
        for c in design.candidates(f, self.sweep.step, nxt, self.sweep.points):
            if c.kind == "budget":  # distinct family sizes around the line's N_opt, as a ladder stage plans them
                assert f.line is not None
                line = Prior("adaptive", f.c_ref, math.exp(f.line[0]), float(f.line[1]), "the design fit")
                runs = self.sweep.plan_budget(c.budget, line)
            else:
                runs = []
                for n in c.ns:
                    r = self._planned(c.budget, n, doc)
                    doc = dict(doc, runs=doc["runs"] + [r.row()])  # a later size of this candidate sees this seed
                    runs.append(r)
            if (c.kind == "budget" and len(runs) < 3) or max(r.epochs for r in runs) > self.sweep.max_epochs:
                continue  # a new budget needs 3 sizes for a minimum; no run may read the corpus too often
            if any((float(c.budget), int(r.N)) in stopped_only for r in runs):
                continue  # another seed of a size early stop already found far above its budget's minimum
            c.ns, c.flops = [float(r.N) for r in runs], sum(r.flops for r in runs)
            if c.kind == "size" and runs[0].point.get("seed"):
                c.kind, c.reason = "repeat", c.reason + f"; the nearest family size N={runs[0].N:,} has run: a new seed"
            out.append((c, runs))
        return out

    # -- the stage -----------------------------------------------------------------------------------------------
    def run(self) -> list[PlannedRun]:
        doc = self._doc()
        rec = doc.setdefault("adaptive", {})
        rec.setdefault("budget_seconds", design.finite(self.budget_seconds))  # a rerun keeps the first run's budget
        rec.setdefault("max_runs", self.max_runs)
        rec.setdefault("batches", [])
        rec["target"] = self.target
        self._save(doc)
        budget_s = math.inf if rec["budget_seconds"] is None else rec["budget_seconds"]
        max_runs = rec["max_runs"]
        trained: list[PlannedRun] = []
        # 1. replay what an earlier (killed) invocation chose: complete runs are skipped by the trainer
        for i, batch in enumerate(rec["batches"]):
            runs = plan_points(
                self._base(batch.get("threads")),
                [r["point"] for r in batch["runs"]],
                n_train=self.sweep.n_train,
                probe_seconds=self.sweep.probe_seconds,
            )
            trained += runs
            # a ladder stage of the rerun rewrote its budget's runs in plan.json: the adaptive ones go back in
            self.sweep.add_runs([r for r in runs if r.run_id not in {x["run_id"] for x in self._doc()["runs"]}])
            if batch.get("after") is None:
                self._train_batch(i, runs, batch.get("threads"))
        # 2. choose and train batches while time (and runs) are left
        while True:
            doc = self._doc()
            rec = doc["adaptive"]
            spent = sum(b.get("wall_seconds") or 0.0 for b in rec["batches"])
            n_runs = sum(len(b["runs"]) for b in rec["batches"])
            f = self._fit(doc)
            before = f.interval()
            rec["seed_spread"] = seed_spread(f)
            rec["interval"] = before
            # the early-stopped runs the fit read at their predicted end (final: never retrained)
            rec["predicted_points"] = [p.summary.run_id for p in self._points(doc) if p.predicted]
            self._save(doc)
            if max_runs is not None and n_runs >= max_runs:
                _say(f"done: {n_runs} run(s) (the most allowed); {_fmt_interval(before)}")
                break
            pairs = self._candidates(f, doc)
            slots = self.sweep.jobs if max_runs is None else min(self.sweep.jobs, max_runs - n_runs)
            scale, overhead = self._scale(doc), batch_overhead(rec["batches"])
            left = budget_s - spent
            choice = batching.choose_within(
                f,
                pairs,
                slots=slots,
                jobs=self.sweep.jobs,
                left=left,
                cost=functools.partial(_cost, scale=scale, overhead=overhead),
                alone=self._alone,
            )
            if not choice.chosen:
                _say(f"done: {choice.why} ({spent:.0f} s of {budget_s:.0f} s spent); {_fmt_interval(before)}")
                rec["stopped"] = {"why": choice.why, "left_seconds": design.finite(left)}
                self._save(doc)
                break
            if choice.mode == "alone":
                assert choice.alone is not None
                runs, why = [choice.alone], [f"{choice.chosen[0].kind}: {choice.chosen[0].reason}"]
            else:
                runs, why = self._runs_of(choice.chosen, pairs, doc)
            k = len(rec["batches"])
            rec["batches"].append(
                {
                    "batch": k,
                    "runs": [dict(r.row(), why=w) for r, w in zip(runs, why)],
                    "chosen": [
                        {
                            "kind": c.kind,
                            "budget": c.budget,
                            "N": [round(n) for n in c.ns],
                            "flops": c.flops,
                            "reason": c.reason,
                            "expected_width_after": design.finite(c.width_after),
                            "expected_a_width_after": design.finite(c.a_width_after),
                            "score_per_pflop": c.score * 1e15,
                            "predicted_seconds": secs,
                        }
                        for c, secs in zip(choice.chosen, choice.seconds)
                    ],
                    "mode": choice.mode,
                    "why": choice.why,
                    "threads": choice.threads,
                    "workers": choice.workers,
                    "left_seconds": design.finite(left),
                    "before": before,
                    "predicted_seconds": choice.predicted,
                    "after": None,
                    "wall_seconds": None,
                }
            )
            self._save(doc)
            _say(
                f"batch {k} ({choice.mode}: {choice.why}): {_fmt_interval(before)}; chose "
                + "; ".join(
                    f"{c.kind} at {c.budget:.3g} N={','.join(f'{n:.3g}' for n in c.ns)} ({c.reason}; score "
                    f"{c.score * 1e15:.3g}/PFLOP, about {secs:.0f} s; expected x{math.exp(c.width_after):.3g} wide)"
                    for c, secs in zip(choice.chosen, choice.seconds)
                )
            )
            self._train_batch(k, runs, choice.threads)
            trained += runs
        return trained

    def _runs_of(
        self, chosen: list[design.Candidate], pairs: list[tuple[design.Candidate, list[PlannedRun]]], doc: dict
    ) -> tuple[list[PlannedRun], list[str]]:
        """The planned runs of the chosen candidates, seeds renumbered so that a size chosen twice runs twice."""
        runs, why = [], []
        seen = dict(doc)
        for c in chosen:
            for r in batching.planned_runs(c, pairs):
                r2 = self._planned(c.budget, r.N, seen)
                seen = dict(seen, runs=seen["runs"] + [r2.row()])
                runs.append(r2)
                why.append(f"{c.kind}: {c.reason}")
        return runs, why

    def _train_batch(self, k: int, runs: list[PlannedRun], threads: Optional[int] = None) -> None:
        self.sweep.add_runs([r for r in runs if r.run_id not in {x["run_id"] for x in self._doc()["runs"]}])
        # a batch replayed after a kill: the trainer skips its complete runs and resumes the others from their
        # checkpoints, so this call's wall time is not the runs' makespan plus an overhead; it measures none
        resumed = any((self.sweep.out / r.run_id / records.SUMMARY_FILE).exists() for r in runs)
        t0 = time.time()
        self.sweep.train(f"adaptive_{k}", runs, threads=threads)
        wall = time.time() - t0
        doc = self._doc()
        f = self._fit(doc)
        b = doc["adaptive"]["batches"][k]
        b["after"] = f.interval()
        b["wall_seconds"] = (b.get("wall_seconds") or 0.0) + wall
        workers = int(b.get("workers") or (1 if threads else self.sweep.jobs))
        b["runs_seconds"] = None if resumed or b.get("resumed") else self._runs_seconds(runs, workers)
        b["resumed"] = b.get("resumed") or resumed
        doc["adaptive"]["seed_spread"] = seed_spread(f)
        self._save(doc)
        _say(f"batch {k} done in {wall:.0f} s: {_fmt_interval(b['before'])} -> {_fmt_interval(b['after'])}")
