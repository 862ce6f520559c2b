"""The plan of a branched sweep (WSD-S): one constant-LR trunk per model size, a short cooldown branched off it at each
token count, each branch a run of its own; with the FLOPs it costs against training every run separately.

Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations", §4 and Fig. 5):
a warmup-stable-decay run whose stable phase is shared, with a cooldown of about 20% of the tokens so far started
from it at each length, matches a cosine run of each length, so one trunk per size yields many (N, D) points.

For a branch ending at D tokens (T = D / tokens-per-step optimizer steps) and a cooldown fraction f of the tokens so
far, the branch point is S = round(T / (1 + f)) and the cooldown K = T − S steps. Every branch of a trunk shares the
trunk's warmup W (that of a standalone run as long as the shortest branch, ``train.warmup_frac``) and peak LR (the
rule's value at the longest branch). The trunk is trained to the last branch point, so

    FLOPs branched = (max S + Σ K) · tokens_per_step · FLOPs/token
    FLOPs separate = Σ T · tokens_per_step · FLOPs/token

Torch-free: the planner calls ``plan_branched`` (or ``trunk_plan`` for one config); training is
scaling/train/branched.py.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from typing import Sequence

from scaling.config.schema import BranchConfig, Config, ConfigError, Plan, apply_point, plan, run_id, validate
from scaling.core.family import Shape, parse_size
from scaling.core.schedule import Schedule


@dataclass(frozen=True)
class Branch:
    """One branch: the trunk's state at ``branch_step``, cooled down over ``cooldown_steps`` to ``plan.steps``."""

    cfg: Config  # the config of a standalone WSD run of the same length (LR pinned), written as its config.yaml
    plan: Plan  # steps, tokens, FLOPs, and the exact schedule: the trunk's warmup and LR, then the cooldown
    run_id: str
    branch_step: int
    cooldown_steps: int

    @property
    def tokens(self) -> int:
        return self.plan.tokens

    @property
    def cooldown_tokens(self) -> int:
        return self.cooldown_steps * self.plan.tokens_per_step


@dataclass(frozen=True)
class TrunkPlan:
    """One size's trunk (constant LR after warmup, trained to the last branch point) and its branches, shortest
    first."""

    cfg: Config  # the trunk's config (schedule constant, tokens of its horizon: the longest branch)
    plan: Plan  # horizon = the longest branch's steps; the trunk only ever trains to ``trunk_steps``
    run_id: str
    branches: tuple[Branch, ...]
    cooldown_frac: float
    cooldown_shape: str

    @property
    def shape(self) -> Shape:
        return self.plan.shape

    @property
    def trunk_steps(self) -> int:
        return max(b.branch_step for b in self.branches)

    def flops_branched(self, convention: str = "chinchilla") -> float:
        steps = self.trunk_steps + sum(b.cooldown_steps for b in self.branches)
        return steps * self.plan.tokens_per_step * self.plan.flops_per_token[convention]

    def flops_separate(self, convention: str = "chinchilla") -> float:
        return sum(b.plan.flops[convention] for b in self.branches)


def _branch_ends(cfg: Config) -> list[tuple[str, float]]:
    b = cfg.branch
    if b.budgets:
        return [("budget", float(x)) for x in b.budgets]
    return [("tokens", float(x)) for x in b.tokens]


def trunk_plan(cfg: Config) -> TrunkPlan:
    """The trunk and branches that ``cfg`` (a size with ``branch.tokens`` or ``branch.budgets``) asks for.

    Raises ConfigError, naming the branch, for a branch too short to have a cooldown after the trunk's warmup.
    """
    cfg = copy.deepcopy(cfg)
    apply_point(cfg)
    br = cfg.branch
    br.check()  # first: a bad branch end would otherwise be reported as the train.tokens derived from it below
    ends = _branch_ends(cfg)
    if not ends:
        raise ConfigError("branch.tokens=[] and branch.budgets=[]: a branched run needs at least one branch end")
    if cfg.train.budget is None and cfg.train.tokens is None:  # the run's own length is its longest branch's
        kind, value = max(ends, key=lambda e: e[1])
        cfg.train.budget, cfg.train.tokens = (value, None) if kind == "budget" else (None, value)
    validate(cfg)

    def standalone(kind: str, value: float) -> Config:
        c = copy.deepcopy(cfg)
        c.train.budget, c.train.tokens = (value, None) if kind == "budget" else (None, value)
        c.train.schedule, c.train.cooldown_shape = "wsd", br.cooldown_shape
        c.branch = BranchConfig()
        return c

    plans = sorted(((plan(standalone(k, v)), k, v) for k, v in ends), key=lambda x: x[0].steps)
    steps = [p.steps for p, _, _ in plans]
    if len(set(steps)) != len(steps):
        raise ConfigError(
            f"branch.{ends[0][0]}s={[v for _, v in ends]}: two branches round to the same number of "
            f"optimizer steps ({steps}); each must end at a distinct step"
        )
    shortest, longest = plans[0][0], plans[-1][0]
    warmup, lr, tps = shortest.schedule.warmup_steps, longest.lr, longest.tokens_per_step

    tc = copy.deepcopy(cfg)
    tc.train.budget, tc.train.tokens, tc.train.schedule, tc.train.lr = None, float(longest.tokens), "constant", lr
    tc.branch, tc.log.wandb = BranchConfig(), False
    trunk_sched = Schedule("constant", lr, longest.steps, warmup)
    trunk = Plan(longest.shape, tps, longest.steps, longest.tokens, longest.flops_per_token, lr, trunk_sched)
    trunk_id = f"{run_id(tc)}_trunk_w{warmup}"

    branches = []
    for p, kind, value in plans:
        T = p.steps
        S = round(T / (1 + br.cooldown_frac))
        K = T - S
        if K < 1 or S < max(warmup, 1):
            raise ConfigError(
                f"branch.{kind}s value {value:g} ({T} steps): a cooldown of branch.cooldown_frac={br.cooldown_frac} "
                f"of the tokens so far leaves {S} trunk steps and {K} cooldown steps; need at least 1 cooldown step "
                f"and the branch point after the trunk's {warmup} warmup steps: use a longer branch or another "
                f"fraction"
            )
        sched = Schedule("wsd", lr, T, warmup, cfg.train.final_lr_frac, K, br.cooldown_shape)
        bc = standalone(kind, value)
        bc.train.lr = lr  # the branch's config.yaml states the LR it trained at
        ident = json.dumps({"trunk": trunk_id, "branch_step": S, "cooldown_steps": K, "shape": br.cooldown_shape})
        rid = f"{run_id(bc)}_br{hashlib.sha256(ident.encode()).hexdigest()[:6]}"
        # then the fractions that make its config.yaml plan exactly this schedule when run on its own (the trunk's
        # warmup, this cooldown); after the id, which must not change: it names the runs of every existing sweep
        bc.train.warmup_frac, bc.train.cooldown_frac = warmup / T, K / (T - warmup)
        branches.append(Branch(bc, Plan(p.shape, tps, T, T * tps, p.flops_per_token, lr, sched), rid, S, K))
    return TrunkPlan(tc, trunk, trunk_id, tuple(branches), br.cooldown_frac, br.cooldown_shape)


@dataclass(frozen=True)
class BranchedPlan:
    """Every size's trunk and branches, and what the whole sweep costs branched and separately."""

    trunks: tuple[TrunkPlan, ...]
    convention: str = "chinchilla"
    rows: list[dict] = field(default_factory=list, compare=False)

    @property
    def flops_branched(self) -> float:
        return sum(t.flops_branched(self.convention) for t in self.trunks)

    @property
    def flops_separate(self) -> float:
        return sum(t.flops_separate(self.convention) for t in self.trunks)

    @property
    def saved_fraction(self) -> float:
        return 1 - self.flops_branched / self.flops_separate

    def table(self) -> list[dict]:
        """One row per branch: size, N, D, steps, branch step, cooldown steps, its FLOPs, its trunk."""
        out = []
        for t in self.trunks:
            for b in t.branches:
                out.append(
                    {
                        "size": f"{parse_size(t.cfg.model.size):.3g}",
                        "N": t.shape.params_non_embedding(),
                        "D": b.tokens,
                        "steps": b.plan.steps,
                        "branch_step": b.branch_step,
                        "cooldown_steps": b.cooldown_steps,
                        "warmup_steps": b.plan.schedule.warmup_steps,
                        "lr": b.plan.lr,
                        f"C_{self.convention}": b.plan.flops[self.convention],
                        "trunk_steps": t.trunk_steps,
                        "trunk": t.run_id,
                        "run_id": b.run_id,
                    }
                )
        return out

    def __str__(self) -> str:
        c = self.convention
        lines = [f"{'size':>8} {'N':>9} {'D':>11} {'steps':>6} {'branch@':>7} {'cool':>5} {'C_' + c:>11}  trunk"]
        for r in self.table():
            lines.append(
                f"{r['size']:>8} {r['N']:>9,} {r['D']:>11,} {r['steps']:>6} {r['branch_step']:>7} "
                f"{r['cooldown_steps']:>5} {r['C_' + c]:>11.3e}  {r['trunk']}"
            )
        lines.append(
            f"FLOPs ({c}): branched {self.flops_branched:.3e}, separate {self.flops_separate:.3e}, "
            f"saved {100 * self.saved_fraction:.1f}%"
        )
        return "\n".join(lines)


def plan_branched(
    sizes: Sequence[str | float],
    tokens: Sequence[float] | dict | None = None,
    *,
    budgets: Sequence[float] | dict | None = None,
    cfg: Config | None = None,
    cooldown_frac: float = 0.2,
    cooldown_shape: str = "linear",
) -> BranchedPlan:
    """The branched plan for ``sizes``: one trunk each, branches ending at ``tokens`` (or ``budgets``, FLOPs under
    ``cfg.train.flops_convention``), a list shared by every size or a dict size -> list. ``cfg`` supplies everything
    else (seq_len, batch size, LR rule, warmup; default: ``Config()``). Raises ConfigError like the trainer would.

        bp = plan_branched(["2e4", "5e4"], [5e5, 1e6, 2e6], cfg=cfg)
        bp.trunks[i].branches, bp.flops_branched, bp.flops_separate, bp.saved_fraction, bp.table(), print(bp)
    """
    if (tokens is None) == (budgets is None):
        raise ConfigError("plan_branched: give exactly one of tokens= or budgets=")
    base = cfg or Config()
    trunks = []
    for size in sizes:
        c = copy.deepcopy(base)
        c.model.size = str(size)
        given = tokens if tokens is not None else budgets
        assert given is not None  # exactly one of them, checked above
        ends: Sequence[float] = given[size] if isinstance(given, dict) else given
        c.branch = BranchConfig(
            tokens=[float(x) for x in ends] if tokens is not None else [],
            budgets=[float(x) for x in ends] if budgets is not None else [],
            cooldown_frac=cooldown_frac,
            cooldown_shape=cooldown_shape,
        )
        c.train.budget = c.train.tokens = None
        trunks.append(trunk_plan(c))
    return BranchedPlan(tuple(trunks), base.train.flops_convention)
