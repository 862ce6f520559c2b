"""The sequential sweep: budgets run smallest first, and what each one measured places the next one's sizes.

    python -m scaling.sweep.sequential            # what `make sweep` runs for the default sweep: results/isoflop_cpu
    python -m scaling.sweep.sequential --budgets 6.25e10:1e12:5 --sweep mine --prior chinchilla     # -> results/mine
    python -m scaling.sweep.sequential --dry-run  # the plan as far as it is known before the first run

A fixed grid centres every budget's sizes on a prior for N_opt(C) chosen before anything was trained; when the prior
is off by 2x (the harness's was, at the smallest budgets), minima fall outside the sampled sizes and the IsoFLOP
estimate of each is only a bound. Here the budgets run one at a time, smallest (cheapest) first:

1. the budget's sizes are centred on the current estimate of N_opt(C) (``scaling.sweep.sizes.sizes_around``);
2. its runs train (a Hydra multirun of a generated preset, ``stage_<k>.yaml``; the launcher's parallelism as usual);
3. its minimum is read from the runs' summaries: a parabola in ln N through the lowest loss and its two neighbours
   (Hoffmann et al. 2022 §3.2); a run stopped early (``--early-stop``) counts at its predicted end, as the report
   reads it (``stage_minimum``; scaling/core/stopped.py). If the lowest loss is the smallest or largest sampled
   size, the minimum is not bracketed: up to ``--extend`` more family sizes beyond that edge (same log spacing)
   train, and it is read again;
4. N_opt(C) is refitted to the bracketed minima so far (ln N = ln N0 + a ln(C/C0): the slope once the minima span
   at least ``SLOPE_RANGE`` in compute, before that only the intercept, keeping the prior's slope; with no bracketed
   minimum yet, through the edge minima, which are still nearer than the prior) and the next budget is centred on it.

Everything is written into the sweep folder (``<results_dir>/<sweep>``, where the runs go) as it goes: plan.json
(every run, predicted and measured wall time, and each stage: its centre, sizes, minimum, whether it is bracketed),
the stage presets, a final ``sweep.yaml`` holding every point (``python -m scaling.train -cd <dir> -cn sweep``
retrains nothing: every run is complete) and ``prior.json``, the fitted N_opt(C), which ``--prior <dir>`` of a later
plan reads. Rerunning after a crash or a kill resumes: complete runs are skipped and the stages recompute the same
centres from the same summaries.

Training side only (no analysis import): the minimum here places sizes; the fits with their intervals are
``python -m analysis report``'s job.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from scaling.config.schema import EARLY_STOP_MIN_FRAC, ConfigError
from scaling.core import forms, records
from scaling.sweep.adaptive import Adaptive, Point, read_points
from scaling.sweep.command_line import add_plan_arguments, choose_runs, preset_setup
from scaling.sweep.planned import FRESH_EPOCHS, SAY_EPOCHS, PlannedRun, budget_of, check_epochs, plan_points, render
from scaling.sweep.presets import write_preset
from scaling.sweep.priors import Prior
from scaling.sweep.probe import machine_key
from scaling.sweep.sizes import family_sizes, isoflop_points
from scaling.sweep.timing import stagewise_wall

SLOPE_RANGE = 4.0  # fit the exponent of N_opt(C) only once the bracketed minima span this factor in compute
SLOPE_BOUNDS = (0.25, 1.0)  # ... and keep it inside this range (a 2-point slope over 4x can be wild)
DONE = records.FINAL_STATUSES
ADAPTIVE_SHARE = 0.4  # of the training time: the rest is the ladder's (enough budgets for a first fit of the line)
REPORT_SECONDS = (
    45.0  # kept for `python -m analysis report` after training: what it took on a default sweep (RESULTS.md)
)
PROBE_SECONDS = 20.0  # the throughput probe of a fresh machine, while the ladder is chosen
MARGIN_SECONDS = 10.0  # Hydra's start-up per batch and the last summaries
_T0 = time.time()  # this process's start: the whole command's when make sweep does not say (--started)


# ---------------------------------------------------------------------------------------------------------------
# one budget's minimum, and the law through the minima


@dataclass(frozen=True)
class Minimum:
    """Where one IsoFLOP curve is lowest: ``n`` (the parabola's vertex when bracketed, else the edge size)."""

    n: float
    loss: float
    edge: Optional[str]  # None (bracketed), 'low' (smallest sampled size is best) or 'high' (largest is)


def iso_minimum(ns: list[float], losses: list[float]) -> Minimum:
    """The minimum of one budget's runs: vertex of the parabola in ln N through the best run and its neighbours,
    kept between those neighbours; at an edge of the sampled sizes, that edge (not bracketed)."""
    pts = sorted((float(n), float(loss)) for n, loss in zip(ns, losses) if math.isfinite(loss))
    if not pts:
        raise ValueError("iso_minimum: no finite losses")
    i = min(range(len(pts)), key=lambda k: pts[k][1])
    if len(pts) < 3 or i in (0, len(pts) - 1):
        return Minimum(pts[i][0], pts[i][1], "low" if i == 0 else "high")
    (x0, y0), (x1, y1), (x2, y2) = [(math.log(n), loss) for n, loss in pts[i - 1 : i + 2]]
    # Lagrange parabola through the three points; its vertex
    d01, d12, d02 = (y1 - y0) / (x1 - x0), (y2 - y1) / (x2 - x1), x2 - x0
    curv = (d12 - d01) / d02  # the x^2 coefficient
    if curv <= 0:  # three equal losses: no curvature, take the best sampled size
        return Minimum(pts[i][0], pts[i][1], None)
    xv, _ = forms.parabola_vertex((x0 + x1) / 2, d01, curv)  # the slope at the midpoint of x0, x1 is d01
    xv = min(max(xv, x0), x2)
    yv = y0 + d01 * (xv - x0) + curv * (xv - x0) * (xv - x1)
    return Minimum(math.exp(xv), yv, None)


def refit_prior(prior: Prior, minima: list[tuple[float, float]]) -> Prior:
    """N_opt(C) through the bracketed minima ``[(C, N), ...]``: the slope by least squares once they span
    ``SLOPE_RANGE`` in C (clamped to ``SLOPE_BOUNDS``), otherwise the prior's slope; the intercept from the minima."""
    if not minima:
        return prior
    cs = [math.log(c) for c, _ in minima]
    ns = [math.log(n) for _, n in minima]
    c0 = max(c for c, _ in minima)
    a = prior.a
    if max(cs) - min(cs) >= math.log(SLOPE_RANGE) - 1e-9:
        mc, mn = sum(cs) / len(cs), sum(ns) / len(ns)
        a = sum((x - mc) * (y - mn) for x, y in zip(cs, ns)) / sum((x - mc) ** 2 for x in cs)
        a = min(max(a, SLOPE_BOUNDS[0]), SLOPE_BOUNDS[1])
    ln_n0 = sum(y - a * (x - math.log(c0)) for x, y in zip(cs, ns)) / len(cs)
    budgets = ", ".join(f"{c:.3g}" for c, _ in sorted(minima))
    return Prior(
        "sequential",
        c0,
        math.exp(ln_n0),
        a,
        f"IsoFLOP minima of budgets {budgets} (slope {'fitted' if a != prior.a else prior.name + ' prior'})",
    )


def beyond(edge: str, sampled: list[float], catalogue: list[tuple[float, int]], step: float, count: int) -> list[float]:
    """Up to ``count`` family sizes (targets) past the ``edge`` of the sampled Ns, spaced about ``step`` in ln N and
    each a different family shape from everything sampled."""
    lo, hi = min(sampled), max(sampled)
    taken = {round(n) for n in sampled}
    out: list[float] = []
    here = lo if edge == "low" else hi
    for _ in range(count):
        want = math.log(here) + (-step if edge == "low" else step)
        pool = [(t, n) for t, n in catalogue if round(n) not in taken and (n < here if edge == "low" else n > here)]
        if not pool:
            break
        t, n = min(pool, key=lambda tn: abs(math.log(tn[1]) - want))
        out.append(t)
        taken.add(round(n))
        here = n
    return out


# ---------------------------------------------------------------------------------------------------------------
# the stages


@dataclass
class Stage:
    budget: float
    centre: float  # N_opt(C) the sizes were centred on
    prior: str  # where that centre came from
    run_ids: list[str] = field(default_factory=list)
    minimum: Optional[dict] = None  # Minimum as a dict, after the runs
    extensions: int = 0  # runs added past an edge
    note: str = ""
    predicted: list[str] = field(default_factory=list)  # early-stopped runs read at their predicted end

    def row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def stage_minimum(out: Path, run_ids: list[str]) -> tuple[Optional[Minimum], list[Point], str]:
    """One budget's minimum from its data points among ``run_ids`` (``read_points``: the complete runs, and the
    early-stopped ones at their predicted end, as the report reads them), the points, and a note on the runs that
    are no data point or are predicted; None where no run is a data point."""
    points = read_points(out, run_ids)
    ids = list(dict.fromkeys(run_ids))
    notes = []
    if len(points) < len(ids):
        notes.append(
            f"{len(ids) - len(points)} run(s) of this budget are no data point (failed, diverged, or stopped early "
            f"with nothing to map its prediction by); the minimum is read from the {len(points)} that are"
        )
    if any(p.predicted for p in points):
        notes.append(f"{sum(p.predicted for p in points)} run(s) stopped early, read at their predicted end")
    m = iso_minimum([p.summary.params_non_embedding for p in points], [p.loss for p in points]) if points else None
    return m, points, "; ".join(notes)


def _stopped_beyond(out: Path, run_ids: list[str], edge: str, sampled: list[float]) -> bool:
    """Whether a run of ``run_ids`` past the ``edge`` of the ``sampled`` sizes was stopped early: its curve already
    said the loss is far higher there, so the minimum is bracketed on that side (no size is added past it). A
    stopped run is a data point (``read_points``) wherever its prediction can be mapped, so this holds only for one
    that cannot (no complete run of the folder logged the subset -> final offset)."""
    for rid in run_ids:
        try:
            s = records.read_summary(out / rid)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        n = s.params_non_embedding
        if s.status == records.STATUS_STOPPED and (n < min(sampled) if edge == "low" else n > max(sampled)):
            return True
    return False


def early_stops(out: Path, run_ids: list[str]) -> dict[str, Any]:
    """What early stop (``--early-stop``, scaling/train/callbacks/early_stop.py) did in this sweep: the runs stopped,
    at which step, and the training FLOPs they did not spend (under the budget's convention), which the adaptive
    stage, trained until the deadline, gets back as time."""
    stopped, planned, saved = [], 0.0, 0.0
    for rid in dict.fromkeys(run_ids):  # once each, however often a stage listed it
        try:
            s = records.read_summary(out / rid)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        total = float(s.flops.get(s.budget_convention or "chinchilla", 0.0))
        planned += total
        if s.status == records.STATUS_STOPPED and s.tokens:
            left = total * (1 - s.tokens_trained / s.tokens)
            saved += left
            stopped.append(dict(run_id=rid, step=s.stopped_step, steps=s.steps, flops_saved=left, reason=s.reason))
    return dict(stopped=stopped, flops_saved=saved, flops_planned=planned)


def _write_json(path: Path, doc: dict) -> None:
    records.write_json_atomic(path, doc, indent=1)


class Sweep:
    """One sequential sweep into ``out``: ``run()`` trains every stage and returns the final prior."""

    def __init__(
        self,
        preset: str,
        base,
        jobs: int,
        n_train: int,
        prior: Prior,
        *,
        points: int,
        spread: float,
        extend: int,
        batch_rule: Optional[str],
        lr_rule: str,
        probe_seconds: float,
        overrides: Optional[list[str]] = None,
        train_cmd: Optional[list[str]] = None,
        deadline: Optional[float] = None,
        adaptive_runs: Optional[int] = None,
        target: Optional[float] = None,
        times: Optional[dict[str, float]] = None,
    ):
        self.out = Path(base.results_dir) / base.sweep  # where the trainer writes this sweep's runs
        self.preset, self.base, self.jobs, self.n_train = preset, base, jobs, n_train
        self.overrides = list(overrides or [])  # the user's Hydra overrides: every stage trains with them
        self.prior, self.points, self.spread, self.extend = prior, points, spread, extend
        self.batch_rule, self.lr_rule, self.probe_seconds = batch_rule, lr_rule, probe_seconds
        self.train_cmd = train_cmd or [sys.executable, "-m", "scaling.train"]
        self.catalogue = family_sizes(base)
        self.step = 2 * math.log(spread) / max(1, points - 1)
        self.plan_path = self.out / "plan.json"
        self.max_epochs = FRESH_EPOCHS  # raised to SAY_EPOCHS by run() when the chosen plan needs it
        # the adaptive stage after the ladder (scaling/sweep/adaptive.py): it trains until ``deadline`` (epoch
        # seconds) and at most ``adaptive_runs`` runs; with neither, the sweep is the ladder alone
        self.deadline, self.adaptive_runs, self.target = deadline, adaptive_runs, target
        self.times = dict(times or {})  # seconds of the parts before training (set-up, planning), for plan.json

    # -- planning --------------------------------------------------------------------------------------------
    def plan_budget(self, budget: float, prior: Prior, sizes: Optional[list[float]] = None) -> list[PlannedRun]:
        pts = isoflop_points(
            [budget],
            self.base,
            prior,
            points=self.points,
            spread=self.spread,
            batch_rule=self.batch_rule,
            lr_rule=self.lr_rule,
            n_train=self.n_train,
            max_epochs=self.max_epochs,
        )
        if sizes is not None:  # the same rules (batch, lr) at other sizes
            pts = [dict(pts[0], size=s) for s in sizes]
        runs = plan_points(self.base, pts, n_train=self.n_train, probe_seconds=self.probe_seconds)
        check_epochs(runs)
        return runs

    # -- running ---------------------------------------------------------------------------------------------
    def train(self, name: str, runs: list[PlannedRun], threads: Optional[int] = None) -> None:
        """Train ``runs`` as one Hydra multirun of a generated preset ``<name>.yaml`` (``threads``: torch threads per
        run, where one run alone gets every core; not part of a run's identity, so a rerun skips it as usual)."""
        write_preset(
            self.out / f"{name}.yaml",
            self.preset,
            self.base.sweep,
            [r.point for r in runs],
            f"generated by python -m scaling.sweep.sequential: stage {name}",
            keep_start=True,
        )
        cmd = self.train_cmd + ["-cd", str(self.out), "-cn", name] + self.overrides
        if threads:
            cmd.append(f"train.threads={threads}")
        print(
            f"[sweep] {name}: {len(runs)} run(s) at budget {runs[0].budget:.3g}, N = "
            f"{', '.join(f'{r.N:,}' for r in runs)}" + (f" ({threads} threads each)" if threads else ""),
            file=sys.stderr,
            flush=True,
        )
        rc = subprocess.run(cmd).returncode
        if rc != 0:
            raise RuntimeError(
                f"stage {name} failed (exit code {rc}: {' '.join(cmd)}); complete runs are kept, and "
                f"running the same command again resumes the sweep where it stopped"
            )

    def run(self, budgets: list[float], reason: str) -> Prior:
        self.out.mkdir(parents=True, exist_ok=True)
        budgets = sorted(budgets)
        # the plan as far as it can be known in advance: every budget around the starting prior; sizes that would
        # read the corpus more than once are avoided where the budget allows (twice where the plan had to allow it)
        first = [r for c in budgets for r in self.plan_budget(c, self.prior)]
        if max(r.epochs for r in first) > FRESH_EPOCHS:
            self.max_epochs = SAY_EPOCHS
            first = [r for c in budgets for r in self.plan_budget(c, self.prior)]
        started = time.time()
        try:  # a rerun keeps what an earlier invocation's adaptive stage chose (it replays those runs first)
            earlier = json.loads(self.plan_path.read_text()).get("adaptive")
        except (OSError, ValueError, AttributeError):
            earlier = None
        doc = {
            "sweep": self.base.sweep,
            "preset": self.preset,
            "mode": "sequential",
            "reason": reason,
            "budgets": budgets,
            "prior": self.prior.__dict__,
            "jobs": self.jobs,
            "n_train_tokens": self.n_train,
            "predicted_wall_seconds": stagewise_wall(first, self.jobs),
            "predicted_total_flops": sum(r.flops for r in first),
            "machine": machine_key(self.base.train.threads or 0),
            "planned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "runs": [r.row() for r in first],
            "stages": [],
            "times": self.times,
        }
        if earlier:
            doc["adaptive"] = earlier
        _write_json(self.plan_path, doc)
        (self.out / "_progress_start").write_text(str(started))
        prior = self.prior
        minima: list[tuple[float, float]] = []
        edges: list[tuple[float, float]] = []
        all_runs: list[PlannedRun] = []
        for k, c in enumerate(budgets):
            stage = Stage(c, prior.n_opt(c), f"{prior.name}: {prior.source}")
            runs = self.plan_budget(c, prior)
            self._replace_budget(c, runs)
            self.train(f"stage_{k}", runs)
            stage.run_ids = [r.run_id for r in runs]
            for r_ext in range(self.extend + 1):
                m, done, stage.note = stage_minimum(self.out, stage.run_ids)
                stage.predicted = [p.summary.run_id for p in done if p.predicted]
                if m is None:
                    break
                stage.minimum = m.__dict__
                if m.edge is None or r_ext == self.extend:
                    break
                sampled = [float(p.summary.params_non_embedding) for p in done]
                if _stopped_beyond(self.out, stage.run_ids, m.edge, sampled):
                    stage.note = (
                        f"the minimum is at the {m.edge} edge of the finished runs; a run past it was stopped early"
                    )
                    break
                extra = beyond(m.edge, sampled, self.catalogue, self.step, 1)
                if not extra:
                    stage.note = f"the minimum is at the {m.edge} edge and the family has no size beyond it"
                    break
                more = self.plan_budget(c, prior, extra)
                if max(r.epochs for r in more) > SAY_EPOCHS:
                    stage.note = (
                        f"the minimum is at the {m.edge} edge; the next size ({more[0].run_id}) would read "
                        f"the corpus {more[0].epochs:.2f} times (> {SAY_EPOCHS:g}), so it stays "
                        f"unbracketed"
                    )
                    break
                self.add_runs(more)
                self.train(f"stage_{k}_ext{r_ext + 1}", more)
                stage.run_ids += [r.run_id for r in more]
                stage.extensions += len(more)
                runs = runs + more
            all_runs += runs
            if stage.minimum:
                (minima if stage.minimum["edge"] is None else edges).append((c, stage.minimum["n"]))
                # bracketed minima place the next budget; with none yet, an edge is still closer than the prior
                prior = refit_prior(self.prior, minima or edges)
            doc = json.loads(self.plan_path.read_text())
            doc["stages"].append(stage.row())
            doc["fitted_prior"] = prior.__dict__
            _write_json(self.plan_path, doc)
            got = stage.minimum
            print(
                f"[sweep] budget {c:.3g}: minimum at N = {got['n']:,.0f} "
                f"({'bracketed' if got['edge'] is None else 'at the ' + got['edge'] + ' edge: NOT bracketed'})"
                f"{'; ' + stage.note if stage.note else ''}; next centre from N_opt = {prior.N0:.3g} "
                f"(C/{prior.C0:.3g})^{prior.a:.3f}"
                if got
                else f"[sweep] budget {c:.3g}: no finished runs",
                file=sys.stderr,
                flush=True,
            )
        ladder_end = time.time()
        if self.deadline is not None or self.adaptive_runs is not None:
            left = math.inf if self.deadline is None else self.deadline - ladder_end
            all_runs += Adaptive(
                self, prior, budget_seconds=max(0.0, left), max_runs=self.adaptive_runs, target=self.target
            ).run()
        doc = json.loads(self.plan_path.read_text())
        doc["times"] = dict(self.times, ladder_s=ladder_end - started, adaptive_s=time.time() - ladder_end)
        doc["actual_wall_seconds"] = time.time() - started
        doc["total_flops"] = sum(r.flops for r in all_runs)
        doc["max_epochs"] = max(r.epochs for r in all_runs)
        if any("train.early_stop_frac=" in o for o in self.overrides):
            doc["early_stop"] = early_stops(self.out, [r.run_id for r in all_runs])
        _write_json(self.plan_path, doc)
        write_preset(
            self.out / "sweep.yaml",
            self.preset,
            self.base.sweep,
            [r.point for r in all_runs],
            f"generated by python -m scaling.sweep.sequential: every run of the sweep ({reason})\n"
            f"rerunning it trains nothing that is complete",
            keep_start=False,
        )
        _write_json(self.out / "prior.json", dict(prior.__dict__))
        print(
            f"[sweep] done: {len(all_runs)} runs in {doc['actual_wall_seconds'] / 60:.1f} min (predicted "
            f"{doc['predicted_wall_seconds'] / 60:.1f} min before the first run); fitted N_opt = {prior.N0:.3g} "
            f"(C/{prior.C0:.3g})^{prior.a:.3f} -> {self.out / 'prior.json'}",
            file=sys.stderr,
            flush=True,
        )
        return prior

    def _replace_budget(self, budget: float, runs: list[PlannedRun]) -> None:
        doc = json.loads(self.plan_path.read_text())
        doc["runs"] = [r for r in doc["runs"] if r["budget"] != budget] + [r.row() for r in runs]
        _write_json(self.plan_path, doc)

    def add_runs(self, runs: list[PlannedRun]) -> None:
        doc = json.loads(self.plan_path.read_text())
        doc["runs"] += [r.row() for r in runs]
        _write_json(self.plan_path, doc)


# ---------------------------------------------------------------------------------------------------------------
# command line


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m scaling.sweep.sequential",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_plan_arguments(ap)
    ap.add_argument("--extend", type=int, default=2, help="sizes added past an edge minimum, per budget (default 2)")
    ap.add_argument("--dry-run", action="store_true", help="print the first plan and stop (trains nothing)")
    ap.add_argument(
        "--adaptive",
        type=float,
        default=ADAPTIVE_SHARE,
        help=f"share of the training time left after planning that the adaptive stage gets after the ladder "
        f"(default {ADAPTIVE_SHARE}; 0: the ladder alone fills it)",
    )
    ap.add_argument("--adaptive-runs", type=int, default=None, help="at most this many adaptive runs (default: time)")
    ap.add_argument("--target", type=float, default=None, help="budget to predict N_opt at (default 10x the largest)")
    ap.add_argument(
        "--started",
        type=float,
        default=None,
        help="epoch seconds when the whole command began (make sweep passes its start, so set-up counts)",
    )
    ap.add_argument(
        "--report-seconds",
        type=float,
        default=REPORT_SECONDS,
        help=f"time kept for the report after training (default {REPORT_SECONDS:g})",
    )
    ap.add_argument(
        "--early-stop",
        type=float,
        default=0.0,
        metavar="FRAC",
        help="stop a run at this fraction of its steps when its curve fit predicts, with confidence, an end far above "
        "its budget's finished runs (train.early_stop_frac; default 0: off)",
    )
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the preset, e.g. model.seq_len=64")
    a = ap.parse_args(argv)
    try:
        if a.points < 3:
            raise ConfigError(f"--points={a.points}: must be >= 3 (a minimum needs a size on each side)")
        if not a.spread > 1.0:
            raise ConfigError(f"--spread={a.spread}: must be > 1")
        if not 0 <= a.extend <= 10:
            raise ConfigError(f"--extend={a.extend}: must be in [0, 10]")
        if not a.minutes > 0:
            raise ConfigError(f"--minutes={a.minutes}: must be > 0")
        if not 0 <= a.adaptive < 1:
            raise ConfigError(f"--adaptive={a.adaptive}: must be in [0, 1) (the adaptive stage's share of the time)")
        if a.adaptive_runs is not None and a.adaptive_runs < 0:
            raise ConfigError(f"--adaptive-runs={a.adaptive_runs}: must be >= 0")
        if not (a.early_stop == 0 or EARLY_STOP_MIN_FRAC <= a.early_stop < 1):
            raise ConfigError(f"--early-stop={a.early_stop}: must be 0 (off) or in [{EARLY_STOP_MIN_FRAC}, 1)")
        if a.target is not None and not a.target > 0:
            raise ConfigError(f"--target={a.target}: must be a positive number of FLOPs")
        if not 0 <= a.report_seconds < a.minutes * 60:
            raise ConfigError(f"--report-seconds={a.report_seconds}: must be in [0, --minutes * 60)")
        t_start = a.started if a.started is not None else _T0
        if not 0 <= time.time() - t_start < 86400:
            raise ConfigError(f"--started={a.started}: must be a time (epoch seconds) within the last day")
        # MINUTES is the whole command: what is left after set-up and corpus (before this process) and the report's
        # allowance (after it) is the training time; the ladder gets (1 - adaptive) of it, the adaptive stage the rest
        deadline = t_start + a.minutes * 60 - a.report_seconds - MARGIN_SECONDS
        t_plan = time.time()
        total_minutes = a.minutes
        if not a.budgets:
            a.minutes = max(0.5, (deadline - t_plan - PROBE_SECONDS) / 60 * (1 - a.adaptive))
        base, _, jobs, n_train, prior = preset_setup(a)
        try:
            budgets, runs, reason = choose_runs(
                a, base, prior, jobs, n_train, batch_rule=a.batch_rule, wall=stagewise_wall
            )
        except ConfigError:
            if a.budgets or not a.adaptive:
                raise
            # a slow (or loaded) machine: no ladder set fits the ladder's share, so it gets all the training time
            a.minutes = max(0.5, (deadline - time.time()) / 60)
            budgets, runs, reason = choose_runs(
                a, base, prior, jobs, n_train, batch_rule=a.batch_rule, wall=stagewise_wall
            )
            reason += "; no ladder set fitted the ladder's share of the time, so it was given all of it"
        if a.budgets:  # smallest first: each later budget is recentred on the minima measured before it
            budgets = sorted(budgets)
        check_epochs(runs)
        print(
            f"[plan] corpus {base.data.source}: {n_train:,} unique training tokens; starting prior {prior.name}: "
            f"N_opt = {prior.N0:.3g} (C/{prior.C0:.3g})^{prior.a:.3f} ({prior.source})"
        )
        print(render(sorted(runs, key=budget_of), jobs, wall=stagewise_wall))
        print(f"[plan] {reason}")
        print(
            f"[plan] sequential: budgets run smallest first; each later budget's sizes are recentred on the minima "
            f"measured so far, and a minimum at an edge gets up to {a.extend} more size(s) past it (not in the "
            f"prediction above)"
        )
        times = {
            "minutes": total_minutes,
            "before_planner_s": t_plan - t_start,
            "planning_s": time.time() - t_plan,
            "report_allowance_s": a.report_seconds,
            "ladder_minutes": a.minutes,
        }
        print(
            f"[plan] {total_minutes:g} min in all: {times['before_planner_s']:.0f} s before the planner (set-up, "
            f"corpus), {times['planning_s']:.0f} s planning (probe), {a.report_seconds:.0f} s kept for the report; "
            f"the ladder gets {a.minutes:.1f} min, "
            + (
                f"the adaptive stage the rest until the deadline ({(deadline - time.time()) / 60:.1f} min from now)"
                if a.adaptive > 0
                else "no adaptive stage (--adaptive 0)"
            ),
            file=sys.stderr,
        )
        if a.dry_run:
            return 0
        overrides = list(a.overrides) + ([f"sweep={a.sweep}"] if a.sweep else [])
        overrides += [f"train.early_stop_frac={a.early_stop}"] if a.early_stop else []
        Sweep(
            a.preset,
            base,
            jobs,
            n_train,
            prior,
            points=a.points,
            spread=a.spread,
            extend=a.extend,
            batch_rule=a.batch_rule,
            lr_rule=a.lr_rule,
            probe_seconds=a.probe_seconds,
            overrides=overrides,
            deadline=deadline if (a.adaptive > 0 or a.adaptive_runs) else None,
            adaptive_runs=a.adaptive_runs,
            target=a.target,
            times=times,
        ).run(budgets, reason)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
