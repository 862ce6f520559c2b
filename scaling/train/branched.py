"""Training one size's trunk and its cooldown branches (WSD-S; the plan is scaling/sweep/branches.py).

The trunk trains at a constant LR after warmup, halting (with a checkpoint) at each branch point in turn; there its
state is deep-copied (``RunState.copy``: model, optimizer moments, step, rows, FLOP counters) and the copy cools down to
the branch's end as a run of its own, through the same ``Run`` machinery as any run (checkpoints, preemption,
divergence, atomic records). Each branch end is a complete run directory ``<sweep>/<branch run id>/`` that the
analysis loads like any other; the trunk lives in ``<sweep>/_trunks/<trunk id>/``, which the analysis skips.

Resuming: a killed branch resumes from its own checkpoint; otherwise from the trunk, whose checkpoint at the branch
point is written before the branch starts and kept until every branch is complete. So relaunching the same command
after a kill anywhere redoes at most the work since the last checkpoint, and the result is bit-identical on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from omegaconf import OmegaConf

from scaling.config.schema import Config
from scaling.core import records
from scaling.core.records import RunSummary
from scaling.sweep.branches import Branch, TrunkPlan, trunk_plan
from scaling.train.callbacks import Callback
from scaling.train.callbacks.defaults import check as check_callbacks
from scaling.train.lifecycle import Run, RunSpec, check_memory
from scaling.train.loop import Compute, compute_for
from scaling.train.rundir import RunLock, finished, leftovers, remove_leftovers
from scaling.train.state import RunState

if TYPE_CHECKING:
    from typing_extensions import Self

TRUNKS_DIR = "_trunks"  # '_' : records.iter_run_dirs (and so the analysis) skips it


@dataclass(frozen=True)
class BranchSpec(RunSpec):
    """A branch's resolved spec, with where its first state comes from when it has no checkpoint of its own."""

    branch: Branch | None = None
    trunk: TrunkPlan | None = None
    trunk_state: Callable[[], RunState] | None = None  # the trunk's state at the branch point (trained on demand)


class BranchRun(Run):
    """A run whose step 0 is a copy of its trunk's state at the branch point, and whose summary says so."""

    @classmethod
    def initial_state(cls, spec: RunSpec, compute: Compute) -> RunState:
        assert isinstance(spec, BranchSpec) and spec.trunk_state is not None  # run_branched starts it with one
        if (spec.run_dir / records.CHECKPOINT_FILE).exists():
            state = Run.initial_state(spec, compute)
            if state.step > 0:
                return state
        state = spec.trunk_state().copy()
        state.resumes = state.preemptions = 0
        return state

    @classmethod
    def start(cls, spec: RunSpec, compute: Compute, mem, resolved_yaml: str | None, *args, **kw) -> Self:
        assert isinstance(spec, BranchSpec) and spec.branch is not None and spec.trunk is not None
        run = super().start(spec, compute, mem, resolved_yaml, *args, **kw)
        s, b, t = run.summary, spec.branch, spec.trunk
        s.parent_run_id, s.branch_step, s.cooldown_steps = t.run_id, b.branch_step, b.cooldown_steps
        s.branch_tokens = b.branch_step * b.plan.tokens_per_step
        s.cooldown_frac, s.cooldown_shape = t.cooldown_frac, t.cooldown_shape
        records.write_summary(spec.run_dir, s)
        return run


def _yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))


class _Trunk:
    """The trunk, trained on demand to each branch point and kept in memory between branches."""

    def __init__(self, spec: RunSpec, compute: Compute, mem, callbacks: Sequence[Callback] = ()):
        self.spec, self.compute, self.mem, self.callbacks = spec, compute, mem, callbacks
        self.run: Run | None = None

    def _halting_at(self, step: int) -> RunSpec:
        cfg = copy.deepcopy(self.spec.cfg)
        cfg.train.halt_after_step = step  # not part of the run id: the same trunk, stopping (checkpointed) there
        return dataclasses.replace(self.spec, cfg=cfg)

    def at(self, step: int) -> RunState:
        """The trunk's state after ``step`` optimizer steps, its checkpoint there on disk."""
        spec = self._halting_at(step)
        if self.run is None or self.run.state.step > step:
            self.run = Run.start(spec, self.compute, self.mem, _yaml(spec.cfg), callbacks=self.callbacks)
            if self.run.state.step > step:  # its checkpoint is past this branch (a branch deleted since): redo it
                print(
                    f"[branch] {spec.run_id}: trunk checkpoint at step {self.run.state.step} is past branch point "
                    f"{step}; training the trunk again from step 0",
                    file=sys.stderr,
                )
                (spec.run_dir / records.CHECKPOINT_FILE).unlink()
                self.run = Run.start(spec, self.compute, self.mem, _yaml(spec.cfg), callbacks=self.callbacks)
        else:
            self.run.spec, self.run.wall_before = spec, self.run.state.wall_seconds
        if self.run.state.step < step:
            summary = self.run.train()  # halts after `step` with a checkpoint (train.halt_after_step)
            if summary.status != records.STATUS_RUNNING or self.run.state.step != step:
                raise TrunkStopped(summary)
        return self.run.state

    def close(self, n_branches: int) -> None:
        """Every branch is complete: the trunk's checkpoint goes, its summary says what it was for."""
        path = self.spec.run_dir / records.SUMMARY_FILE
        if path.exists():
            s = records.read_summary(self.spec.run_dir)
            if s.status == records.STATUS_RUNNING:  # a diverged trunk stays diverged
                s.status, s.reason = records.STATUS_COMPLETE, f"trunk of {n_branches} branches, all final"
                records.write_summary(self.spec.run_dir, s)
        (self.spec.run_dir / records.CHECKPOINT_FILE).unlink(missing_ok=True)


class TrunkStopped(RuntimeError):
    """The trunk diverged (or failed) before a branch point: the branches after it cannot be made."""

    def __init__(self, summary: RunSummary):
        super().__init__(f"trunk {summary.run_id} stopped ({summary.status}: {summary.reason})")
        self.summary = summary


def _record_diverged(spec: BranchSpec, trunk: RunSummary) -> RunSummary:
    """A branch whose trunk diverged before its branch point: recorded as diverged (an LR sweep needs to see it)."""
    b, t = spec.branch, spec.trunk
    assert b is not None and t is not None  # every BranchSpec of run_branched has both
    s = dataclasses.replace(
        trunk,
        run_id=spec.run_id,
        status=records.STATUS_DIVERGED,
        reason=f"trunk {trunk.run_id} diverged before branch step {b.branch_step}: {trunk.reason}",
        tokens=b.tokens,
        steps=b.plan.steps,
        flops=b.plan.flops,
        schedule="wsd",
        parent_run_id=t.run_id,
        branch_step=b.branch_step,
        branch_tokens=b.branch_step * b.plan.tokens_per_step,
        cooldown_steps=b.cooldown_steps,
        cooldown_frac=t.cooldown_frac,
        cooldown_shape=t.cooldown_shape,
    )
    spec.run_dir.mkdir(parents=True, exist_ok=True)
    records.write_text_atomic(spec.run_dir / records.CONFIG_FILE, _yaml(spec.cfg))
    records.write_summary(spec.run_dir, s)
    return s


def run_branched(cfg: Config, callbacks: Sequence[Callback] = ()) -> list[RunSummary]:
    """Train (or resume, or skip) the trunk and every branch ``cfg`` asks for; the branches' summaries, shortest
    first. Raises ConfigError before any compute; Preempted like ``scaling.train.lifecycle.run``. ``callbacks``: a
    user's own hooks, called in the trunk's and in each branch's training."""
    check_callbacks(callbacks)  # before anything is written
    tp = trunk_plan(cfg)
    compute = compute_for(tp.cfg.train)
    sweep_dir = Path(tp.cfg.results_dir).absolute() / tp.cfg.sweep
    trunk_spec = RunSpec(tp.cfg, tp.plan, tp.run_id, sweep_dir / TRUNKS_DIR / tp.run_id)
    specs = [BranchSpec(b.cfg, b.plan, b.run_id, sweep_dir / b.run_id, branch=b, trunk=tp) for b in tp.branches]
    done = [finished(s.run_dir, quiet=True) for s in specs]
    if all(d is not None for d in done) and not any(leftovers(s.run_dir) for s in specs):
        print(f"[branch] {tp.run_id}: all {len(specs)} branches already final; skipping", file=sys.stderr)
        return [d for d in done if d is not None]  # all of them
    mem = check_memory(trunk_spec, compute)
    trunk_spec.run_dir.mkdir(parents=True, exist_ok=True)
    out = []
    with RunLock(trunk_spec.run_dir):  # one process per trunk; each branch also takes its own lock below
        trunk = _Trunk(trunk_spec, compute, mem, callbacks)
        stopped: TrunkStopped | None = None
        for spec in specs:
            spec.run_dir.mkdir(parents=True, exist_ok=True)
            with RunLock(spec.run_dir):
                prev = finished(spec.run_dir)
                remove_leftovers(spec.run_dir, final=prev is not None)
                if prev is not None:
                    out.append(prev)
                    continue
                if stopped is not None:
                    out.append(_record_diverged(spec, stopped.summary))
                    continue
                assert spec.branch is not None
                spec = dataclasses.replace(spec, trunk_state=partial(trunk.at, spec.branch.branch_step))
                try:
                    out.append(BranchRun.start(spec, compute, mem, _yaml(spec.cfg), callbacks=callbacks).train())
                except TrunkStopped as e:
                    if e.summary.status != records.STATUS_DIVERGED:
                        raise
                    stopped = e
                    out.append(_record_diverged(spec, e.summary))
        if all(s.status in records.FINAL_STATUSES for s in out):
            trunk.close(len(out))
    return out
