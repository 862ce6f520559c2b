"""The sweep planner: which (budget, size) runs to train, how long they take here, and whether the data suffice.

``scaling.config.schema.plan`` says how ONE run trains (shape, tokens, steps, FLOPs); this module decides WHICH runs a
sweep trains (OLMo-core's model ladder split: "what model at this size" vs "how to train it for this budget"):

    python -m scaling.sweep.plan                                  # default: the largest ladder set fitting ~10 min here
    python -m scaling.sweep.plan --budgets 1e12:1e15:7 --points 5 # 7 log-spaced budgets, 5 sizes each, around the prior
    python -m scaling.sweep.plan --budgets 1e12,3e12 --prior chinchilla --batch-rule deepseek
    python -m scaling.sweep.plan --preset isoflop_tiny            # a named preset's exact grid: epochs, predicted time
    python -m scaling.sweep.plan ... --write results/mine         # also write plan.json and a Hydra preset (sweep.yaml)

Each budget's sizes are centred on a prior for the compute-optimal size N_opt(C) (a published law, the harness's own
earlier fit, or a JSON file ``{"C0": ..., "N0": ..., "a": ...}`` meaning N_opt = N0 (C / C0)^a, which an analysis
can write), log-spaced over ``spread`` either side, as in Hoffmann et al. 2022 §3.2. Time comes from a short probe
of this machine (a few optimizer steps per shape, cached in .cache/probe/ per machine and shape), and the launcher's
parallelism is simulated to predict the wall time. Epochs (tokens trained / unique training tokens) come from the
prepared corpus's meta.json: a plan with a run over ``MAX_EPOCHS`` is refused, naming the run.

Beside it: the priors (scaling/sweep/priors.py) and the presets it composes and writes (scaling/sweep/presets.py).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, cast

from scaling.config.schema import Config, ConfigError, apply_point, run_id, validate
from scaling.config.schema import plan as plan_run
from scaling.core import records
from scaling.core.family import shape_for
from scaling.data.corpus import vocab_size_of
from scaling.sweep.presets import compose_preset, preset_points, write_preset
from scaling.sweep.priors import PRIORS, Prior, load_prior
from scaling.sweep.probe import machine_key, probe
from scaling.sweep.timing import stagewise_wall, wall_seconds

MAX_EPOCHS = 4.0  # a plan with any run reading its corpus more often than this is refused
FRESH_EPOCHS = 1.0  # the default sweep keeps every run at or under one pass over the corpus ...
SAY_EPOCHS = 2.0  # ... or, where no ladder set fits otherwise, at most two, and says so
# The fixed ladder of budgets the default sweep chooses from (training FLOPs, Chinchilla convention): factors of
# sqrt(2) around 1e12 (every factor of 2 is a rung), so runs of machines that choose different sets coincide and
# results compare between machines. A sweep takes consecutive rungs (x sqrt 2) or every other one (x2).
LADDER = tuple(float(f"{1e12 * 2.0 ** (k / 2):.4g}") for k in range(-12, 9))
DEFAULT_PRESET = "isoflop_cpu"
RUN_OVERHEAD_SECONDS = 1.0  # model build, dataset load and records per run, on top of training and evaluation


# ---------------------------------------------------------------------------------------------------------------
# rules the planner applies per budget


def tokens_per_step_for(budget: float, rule: str, seq_len: int) -> int:
    """Tokens per optimizer step: a constant (an integer), or a named rule's B(C) (scaling/config/lr_rule.py, e.g.
    'deepseek': B_opt = 0.2920 C^0.3271 tokens, DeepSeek LLM 2024 §3.1; 'harness_cpu': B = 900 (C/1e12)^0.6, measured
    at this harness's CPU sizes), rounded to a power-of-two number of sequences (at least one)."""
    from scaling.config.lr_rule import PUBLISHED

    named = {k: r.batch_tokens for k, r in PUBLISHED.items() if r.batch_tokens is not None}
    if rule in named:
        tokens = named[rule](N=None, C=budget)
        return seq_len * 2 ** max(0, round(math.log2(tokens / seq_len)))
    try:
        tokens = int(float(rule))
    except ValueError:
        raise ConfigError(
            f"--batch-rule={rule!r}: must be one of {sorted(named)} or a number of tokens per step"
        ) from None
    if tokens < seq_len or tokens % seq_len:
        raise ConfigError(f"--batch-rule={rule!r}: tokens per step must be a positive multiple of seq_len={seq_len}")
    return tokens


def lr_for(budget: float, rule: str) -> Optional[float]:
    """Peak LR: None keeps the config's per-size rule; 'deepseek': 0.3118 C^-0.125 (DeepSeek LLM 2024 §3.1); or a
    number."""
    if rule == "config":
        return None
    if rule == "deepseek":
        return 0.3118 * budget**-0.125
    try:
        lr = float(rule)
    except ValueError:
        raise ConfigError(f"--lr-rule={rule!r}: must be 'config', 'deepseek' or a learning rate in (0, 1]") from None
    if not 0 < lr <= 1:
        raise ConfigError(f"--lr-rule={rule!r}: a learning rate must be in (0, 1]")
    return lr


def family_sizes(cfg: Config, lo: float = 1e3, hi: float = 1e8) -> list[tuple[float, int]]:
    """Every distinct shape the family rule gives between lo and hi: (a target size that yields it, its N)."""
    m = cfg.model
    found: dict[tuple[int, int], list[tuple[float, int]]] = {}
    vocab = vocab_size_of(cfg.data)  # a tokenizer file's or the shards' where given
    k = 0
    while lo * 1.01**k <= hi:
        target = float(f"{lo * 1.01**k:.3g}")
        s = shape_for(
            target,
            vocab_size=vocab,
            seq_len=m.seq_len,
            aspect=m.aspect,
            head_size=m.head_size,
            mlp_ratio=m.mlp_ratio,
            tie_embeddings=m.tie_embeddings,
            min_layers=m.min_layers,
            arch=m.arch,
            ffn_multiple=m.ffn_multiple,
        )
        found.setdefault((s.n_layer, s.d_model), []).append((target, s.params_non_embedding()))
        k += 1
    # the middle target of each shape's range: far from the rounding edges
    return sorted((v[len(v) // 2][0], v[0][1]) for v in found.values())


def sizes_around(n_opt: float, catalogue: list[tuple[float, int]], points: int, spread: float) -> list[float]:
    """``points`` distinct family sizes log-spaced from n_opt/spread to n_opt*spread (targets, smallest first)."""
    logs = [math.log(n) for _, n in catalogue]
    picked: list[int] = []
    for j in range(points):
        want = math.log(n_opt) + math.log(spread) * (2 * j / (points - 1) - 1 if points > 1 else 0)
        i = min(range(len(logs)), key=lambda i: abs(logs[i] - want))
        if picked and i <= picked[-1]:
            i = picked[-1] + 1
        if i >= len(catalogue):
            break
        picked.append(i)
    return [catalogue[i][0] for i in picked]


# ---------------------------------------------------------------------------------------------------------------
# the plan of a sweep


@dataclass(frozen=True)
class PlannedRun:
    budget: Optional[float]
    size: str
    point: dict
    run_id: str
    N: int
    tokens: int
    steps: int
    tokens_per_step: int
    lr: float
    flops: float
    epochs: float
    seconds: float

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def budget_of(r: PlannedRun) -> float:
    """The budget of a run planned per budget (``choose_runs``, a sequential stage): these always have one."""
    assert r.budget is not None, r.run_id
    return r.budget


def train_tokens(cfg: Config) -> int:
    """Unique training tokens of the config's corpus (prepared once, checksum-verified, as every run does)."""
    from scaling.data.cache import prepare_data

    path = prepare_data(cfg.data)
    return int(json.loads((path / "meta.json").read_text())["n_train_tokens"])


def check_epochs(runs: list[PlannedRun], limit: float = MAX_EPOCHS) -> None:
    """Refuse a plan in which any run reads its corpus more than ``limit`` times; the message names the runs."""
    over = [r for r in runs if r.epochs > limit]
    if over:
        names = ", ".join(f"{r.run_id} (N={r.N:,}, D={r.tokens:,}: {r.epochs:.2f} epochs)" for r in over)
        raise ConfigError(
            f"epochs > {limit:g} (repeated data bends scaling laws): {names}; allowed: at most {limit:g} "
            f"passes over the corpus: lower the budget, raise the size, or use a larger corpus"
        )


def plan_points(
    base: Config,
    points: list[dict],
    *,
    n_train: int,
    probe_seconds: float = 0.5,
    cache_dir: Path | None = None,
    eval_tokens_total: Optional[int] = None,
) -> list[PlannedRun]:
    """Plan each sweep point on ``base`` exactly as the trainer will (config.plan), with epochs and predicted
    seconds."""
    runs = []
    for pt in points:
        cfg = _copy(base)
        cfg.point = dict(pt)
        apply_point(cfg)
        validate(cfg)
        p = plan_run(cfg)
        t = cfg.train
        tps = probe(cfg, seconds=probe_seconds, cache_dir=cache_dir)
        n_evals = math.ceil(p.steps / (t.eval_interval or max(1, math.ceil(p.steps / 16))))
        val = eval_tokens_total if eval_tokens_total is not None else (t.final_eval_tokens or _val_tokens(n_train))
        eval_seconds = (n_evals * t.eval_tokens + val) / (3.0 * tps)  # a forward pass: about 1/3 of a training step
        seconds = p.tokens / tps + eval_seconds + RUN_OVERHEAD_SECONDS
        runs.append(
            PlannedRun(
                t.budget,
                cfg.model.size,
                dict(pt),
                run_id(cfg),
                p.shape.params_non_embedding(),
                p.tokens,
                p.steps,
                p.tokens_per_step,
                p.lr,
                p.flops[t.flops_convention],
                p.tokens / n_train,
                seconds,
            )
        )
    return runs


def _val_tokens(n_train: int) -> int:
    return round(n_train * 0.05 / 0.95)  # the validation split of val_fraction 0.05 (exact count: meta.json)


def _copy(cfg: Config) -> Config:
    from omegaconf import OmegaConf

    return cast(Config, OmegaConf.to_object(OmegaConf.structured(cfg)))  # stubs say Any: it is a Config


def fresh_catalogue(
    base: Config,
    budget: float,
    catalogue: list[tuple[float, int]],
    tokens_per_step: Optional[int],
    n_train: int,
    max_epochs: float,
) -> list[tuple[float, int]]:
    """The family sizes that train on at most ``max_epochs`` passes over ``n_train`` tokens at ``budget`` (a smaller
    model gets more tokens, so these are every size from the first that qualifies up)."""
    for k, (target, _) in enumerate(catalogue):
        cfg = _copy(base)
        cfg.point = {"budget": budget, "size": target}
        if tokens_per_step is not None:
            cfg.point["tokens_per_step"] = tokens_per_step
        apply_point(cfg)
        if plan_run(cfg).tokens <= max_epochs * n_train:
            return catalogue[k:]
    return []


def isoflop_points(
    budgets: list[float],
    base: Config,
    prior: Prior,
    *,
    points: int,
    spread: float,
    batch_rule: Optional[str],
    lr_rule: str,
    n_train: Optional[int] = None,
    max_epochs: Optional[float] = None,
) -> list[dict]:
    """Each budget's sizes around the prior's N_opt, largest budget first (its long runs start at once). With
    ``n_train`` and ``max_epochs``, sizes that would read the corpus more often are not sampled: the window moves up
    to the smallest size that does not, as long as the prior's N_opt stays at least spread^(1/4) above it (about a
    quarter of the window; a sequential sweep adds smaller sizes if the minimum turns out to be at that edge, up to 2
    epochs, and says so); otherwise the budget keeps its centred sizes, and the plan shows their epochs."""
    catalogue = family_sizes(base)
    out = []
    for c in sorted(budgets, reverse=True):
        tps = tokens_per_step_for(c, batch_rule, base.model.seq_len) if batch_rule is not None else None
        sizes_from = catalogue
        if n_train is not None and max_epochs is not None:
            fresh = fresh_catalogue(base, c, catalogue, tps, n_train, max_epochs)
            if fresh and fresh[0][1] > catalogue[0][1] and prior.n_opt(c) >= fresh[0][1] * spread**0.25:
                sizes_from = fresh
        for size in sizes_around(prior.n_opt(c), sizes_from, points, spread):
            pt: dict[str, Any] = {"budget": c, "size": size}
            if tps is not None:
                pt["tokens_per_step"] = tps
            lr = lr_for(c, lr_rule)
            if lr is not None:
                pt["lr"] = lr
            out.append(pt)
    return out


# ---------------------------------------------------------------------------------------------------------------
# choosing from the ladder


def exponent_precision(budgets: list[float]) -> float:
    """How tightly a set of budgets pins the exponent a of N_opt ∝ C^a, up to the noise of each minimum: the
    reciprocal of the Student-t interval's half-width of a line's slope through one point per budget,
    sqrt(Σ (ln C - mean)^2) / t_{0.95, n-2}. Zero for two budgets or fewer (no residual degrees of freedom)."""
    from scipy.stats import t as student_t

    n = len(budgets)
    if n < 3:
        return 0.0
    x = [math.log(c) for c in budgets]
    m = sum(x) / n
    return math.sqrt(sum((v - m) ** 2 for v in x)) / float(student_t.ppf(0.95, n - 2))


def choose_from_ladder(
    base: Config,
    prior: Prior,
    *,
    minutes: float,
    jobs: int,
    points: int,
    spread: float,
    batch_rule: Optional[str],
    lr_rule: str,
    n_train: int,
    min_budgets: int = 4,
    probe_seconds: float = 0.5,
    cache_dir: Path | None = None,
    wall=None,
) -> tuple[list[float], list[PlannedRun], str]:
    """Among runs of consecutive ladder budgets (steps of sqrt 2 or of 2) whose plan keeps every run fresh (<= 1
    epoch; <= 2 and said where nothing else gives ``min_budgets``) and is predicted to finish within ``minutes`` here
    (``wall(runs, jobs)`` predicts it: ``wall_seconds`` by default, the sequential sweep's stage-by-stage figure
    there), the one that pins the exponent best (``exponent_precision``: more budgets and a wider range both help).
    Returns the budgets, their runs and the reason, in words."""
    wall_of = wall or wall_seconds
    smallest = family_sizes(base)[0][1]
    # the lowest rung whose left arm (n_opt / spread) still has a family size under it
    floor = next(i for i, c in enumerate(LADDER) if prior.n_opt(c) / spread >= smallest * 0.9)
    notes, cache, relaxed = [], {}, ""

    def runs_of(c, cap):
        if (c, cap) not in cache:
            cache[c, cap] = plan_points(
                base,
                isoflop_points(
                    [c],
                    base,
                    prior,
                    points=points,
                    spread=spread,
                    batch_rule=batch_rule,
                    lr_rule=lr_rule,
                    n_train=n_train,
                    max_epochs=cap,
                ),
                n_train=n_train,
                probe_seconds=probe_seconds,
                cache_dir=cache_dir,
            )
        return cache[c, cap]

    best = None
    for epochs_cap in (FRESH_EPOCHS, SAY_EPOCHS):
        candidates = []
        for stride in (1, 2):
            for start in range(floor, min(floor + stride, len(LADDER))):
                for top in range(start, len(LADDER), stride):
                    budgets = list(LADDER[start : top + 1 : stride])
                    runs = [r for c in budgets for r in runs_of(c, epochs_cap)]
                    worst = max(runs, key=lambda r: r.epochs)
                    wall = wall_of(runs, jobs)
                    if worst.epochs > epochs_cap:
                        notes.append(
                            f"{LADDER[top]:.3g} stopped the ladder: its run {worst.run_id} would read the "
                            f"corpus {worst.epochs:.2f} times (> {epochs_cap:g})"
                        )
                        break
                    if wall > minutes * 60:
                        notes.append(
                            f"{LADDER[top]:.3g} stopped the ladder (x{2 ** (stride / 2):.3g} steps): "
                            f"predicted {wall / 60:.1f} min > {minutes:g} min"
                        )
                        break
                    candidates.append((exponent_precision(budgets), len(budgets), -wall, budgets, runs, wall))
        if candidates:
            best = max(candidates, key=lambda c: c[:3])
            if len(best[3]) >= min_budgets:
                break
        if epochs_cap == FRESH_EPOCHS:
            relaxed = (
                f"fewer than {min_budgets} budgets fit at <= 1 epoch: allowing up to {SAY_EPOCHS:g} epochs, "
                f"and every run over 1 is listed"
            )
    if best is None:
        raise ConfigError(f"no ladder budget fits: {'; '.join(notes)}")
    _, _, _, budgets, runs, wall = best
    step = budgets[1] / budgets[0] if len(budgets) > 1 else 1.0
    reason = (
        f"{len(budgets)} budgets {budgets[0]:.3g}..{budgets[-1]:.3g} FLOPs ({budgets[-1] / budgets[0]:.0f}x, "
        f"x{step:.3g} steps) from the ladder {LADDER[0]:.3g}..{LADDER[-1]:.3g} (x1.41 rungs; lowest usable "
        f"rung {LADDER[floor]:.3g}: the smallest family size is N={smallest:,}), the set that fits and pins "
        f"the exponent best (sqrt(sum (ln C - mean)^2) / t(n-2)); predicted {wall / 60:.1f} min on {jobs} "
        f"parallel jobs (target {minutes:g} min); most epochs of any run {max(r.epochs for r in runs):.2f}. "
        + (relaxed + "; " if max(r.epochs for r in runs) > FRESH_EPOCHS else "")
        + "; ".join(dict.fromkeys(notes[-3:]))
    )
    return budgets, runs, reason


# ---------------------------------------------------------------------------------------------------------------
# output


def render(runs: list[PlannedRun], jobs: int, wall=None) -> str:
    lines = [
        f"{'budget':>9} {'size':>8} {'N':>9} {'D':>11} {'steps':>6} {'tok/step':>8} {'lr':>8} {'FLOPs':>9} "
        f"{'epochs':>6} {'pred s':>7}  run_id"
    ]
    for r in runs:
        b = f"{r.budget:.3g}" if r.budget is not None else "-"
        lines.append(
            f"{b:>9} {r.size:>8} {r.N:>9,} {r.tokens:>11,} {r.steps:>6,} {r.tokens_per_step:>8,} "
            f"{r.lr:>8.2e} {r.flops:>9.3g} {r.epochs:>6.2f} {r.seconds:>7.1f}  {r.run_id}"
        )
    total = sum(r.flops for r in runs)
    lines.append(
        f"{len(runs)} runs, total {total:.3g} FLOPs, {sum(r.seconds for r in runs) / 60:.1f} min of run "
        f"time, predicted wall time {(wall or wall_seconds)(runs, jobs) / 60:.1f} min on {jobs} parallel jobs; "
        f"most epochs {max(r.epochs for r in runs):.2f}"
    )
    return "\n".join(lines)


def _budgets_arg(text: str) -> list[float]:
    """'1e12:1e15:7' (7 log-spaced from 1e12 to 1e15) or '1e12,3e12,1e13'."""
    try:
        if ":" in text:
            lo_s, hi_s, n_s = text.split(":")
            lo, hi, n = float(lo_s), float(hi_s), int(n_s)
            if n < 1 or lo <= 0 or hi < lo:
                raise ValueError
            return [lo * (hi / lo) ** (i / (n - 1)) if n > 1 else lo for i in range(n)]
        out = [float(x) for x in text.split(",")]
        if not out or min(out) <= 0:
            raise ValueError
        return out
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--budgets={text!r}: must be LO:HI:COUNT (e.g. 1e12:1e15:7) or a list of positive FLOPs (e.g. 1e12,3e12)"
        ) from None


def add_plan_arguments(ap: argparse.ArgumentParser) -> None:
    """The options a planned sweep shares (``python -m scaling.sweep.plan`` and
    ``python -m scaling.sweep.sequential``)."""
    ap.add_argument(
        "--preset",
        default=DEFAULT_PRESET,
        help="sweeps/<preset>.yaml: its settings (shape family, batch, launcher); scaling.sweep.plan --exact: its grid",
    )
    ap.add_argument("--budgets", type=_budgets_arg, help="LO:HI:COUNT or a list; default: chosen from the ladder")
    ap.add_argument("--points", type=int, default=5, help="sizes per budget (default 5)")
    ap.add_argument("--spread", type=float, default=2.5, help="sizes from N_opt/spread to N_opt*spread (default 2.5)")
    ap.add_argument("--prior", default="harness", help=f"{sorted(PRIORS)} or a JSON file / sweep folder (prior.json)")
    ap.add_argument("--lr-rule", default="config", help="'config' (the preset's rule), 'deepseek' or a learning rate")
    ap.add_argument(
        "--batch-rule",
        default="harness_cpu",
        help="'harness_cpu' (default; B = 900 (C/1e12)^0.6, measured here), 'deepseek' (B = 0.292 "
        "C^0.3271) or tokens per step",
    )
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-time target for the ladder choice (default 10)")
    ap.add_argument("--jobs", type=int, default=None, help="parallel runs (default: the preset's launcher n_jobs)")
    ap.add_argument(
        "--sweep",
        default=None,
        help="the sweep's name (its results folder <results_dir>/<sweep>); default the preset's",
    )
    ap.add_argument("--probe-seconds", type=float, default=0.5, help="timing per shape of the throughput probe")


def preset_setup(a: argparse.Namespace) -> tuple[Config, dict, int, int, Prior]:
    """What the options of ``add_plan_arguments`` name: the preset's base config (its sweep named), its sweeper
    params, the parallel jobs, the corpus's unique training tokens and the prior."""
    base, params, jobs = compose_preset(a.preset, a.overrides)
    base.sweep = a.sweep or base.sweep
    return base, params, a.jobs or jobs, train_tokens(base), load_prior(a.prior)


def choose_runs(
    a: argparse.Namespace, base: Config, prior: Prior, jobs: int, n_train: int, *, batch_rule: Optional[str], wall
) -> tuple[list[float], list[PlannedRun], str]:
    """The budgets, runs and the reason for them that a planned sweep starts from: the budgets given (--budgets) with
    sizes around the prior's N_opt, or the ladder's rungs that fit the wall-time target (--minutes)."""
    if a.budgets:
        runs = plan_points(
            base,
            isoflop_points(
                a.budgets,
                base,
                prior,
                points=a.points,
                spread=a.spread,
                batch_rule=batch_rule,
                lr_rule=a.lr_rule,
                n_train=n_train,
                max_epochs=FRESH_EPOCHS,
            ),
            n_train=n_train,
            probe_seconds=a.probe_seconds,
        )
        return a.budgets, runs, f"budgets given on the command line, sizes around the {prior.name} prior"
    return choose_from_ladder(
        base,
        prior,
        minutes=a.minutes,
        jobs=jobs,
        points=a.points,
        spread=a.spread,
        batch_rule=batch_rule,
        lr_rule=a.lr_rule,
        n_train=n_train,
        probe_seconds=a.probe_seconds,
        wall=wall,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m scaling.sweep.plan",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_plan_arguments(ap)
    ap.add_argument("--exact", action="store_true", help="plan the preset's own grid (named presets run exactly it)")
    ap.add_argument("--write", metavar="DIR", help="write DIR/plan.json and DIR/sweep.yaml (a Hydra preset)")
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="plan for `python -m scaling.sweep.sequential` (what `make sweep` runs for the default sweep): "
        "budgets one after another, smallest first, later ones recentred on measured minima",
    )
    ap.add_argument("overrides", nargs="*", help="Hydra overrides for the preset, e.g. model.seq_len=64")
    a = ap.parse_args(argv)
    try:
        for name, v, lo in (("--points", a.points, 1), ("--spread", a.spread, 1.0), ("--minutes", a.minutes, 0.0)):
            if not v > lo - (name == "--points"):
                raise ConfigError(
                    f"{name}={v}: must be > {lo}" if name != "--points" else f"--points={v}: must be >= 1"
                )
        base, params, jobs, n_train, prior = preset_setup(a)
        sweep = base.sweep
        batch_rule = None if a.exact else a.batch_rule
        wall = stagewise_wall if a.sequential else wall_seconds
        if a.sequential:
            if a.exact:
                raise ConfigError("--sequential plans sizes per budget; --exact runs a preset's fixed grid: use one")
            if a.points < 3:
                raise ConfigError(f"--points={a.points}: a sequential sweep needs >= 3 (a size each side of a minimum)")
            if a.write:
                raise ConfigError(
                    "--sequential with --write: a sequential sweep writes its own plan as it runs "
                    "(python -m scaling.sweep.sequential --write DIR)"
                )
        reason, budgets = "", None
        if a.exact:
            runs = plan_points(base, preset_points(params), n_train=n_train, probe_seconds=a.probe_seconds)
            reason = f"the exact grid of the preset {a.preset}"
        else:
            budgets, runs, reason = choose_runs(a, base, prior, jobs, n_train, batch_rule=batch_rule, wall=wall)
        print(
            f"[plan] corpus {base.data.source}: {n_train:,} unique training tokens; prior {prior.name}: "
            f"N_opt = {prior.N0:.3g} (C/{prior.C0:.3g})^{prior.a:.3f} ({prior.source})"
        )
        if a.sequential:
            runs = sorted(runs, key=budget_of)
        print(render(runs, jobs, wall=wall))
        print(f"[plan] {reason}")
        if a.sequential:
            print(
                "[plan] sequential: budgets run smallest first; the sizes of each budget after the first are "
                "recentred on the minima measured before it, and a minimum at an edge gets more sizes past it "
                "(python -m scaling.sweep.sequential; not in the prediction above)"
            )
        check_epochs(runs)
        over1 = [r for r in runs if r.epochs > FRESH_EPOCHS]
        if over1:
            print(
                f"[plan] note: {len(over1)} run(s) read the corpus more than once (up to "
                f"{max(r.epochs for r in over1):.2f} epochs): {', '.join(r.run_id for r in over1)}"
            )
        if a.write:
            out = Path(a.write)
            out.mkdir(parents=True, exist_ok=True)
            doc = {
                "sweep": sweep,
                "preset": a.preset,
                "reason": reason,
                "budgets": budgets,
                "prior": prior.__dict__,
                "jobs": jobs,
                "minutes_target": a.minutes,
                "n_train_tokens": n_train,
                "predicted_wall_seconds": wall(runs, jobs),
                "total_flops": sum(r.flops for r in runs),
                "max_epochs": max(r.epochs for r in runs),
                "machine": machine_key(base.train.threads or 0),
                "planned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "runs": [r.row() for r in runs],
            }
            records.write_json_atomic(out / "plan.json", doc, indent=1)
            if not a.exact:
                write_preset(
                    out / "sweep.yaml",
                    a.preset,
                    sweep,
                    [r.point for r in runs],
                    f"generated by python -m scaling.sweep.plan: {reason}\nrun: python -m scaling.train -cd "
                    f"{out} -cn sweep",
                )
            print(f"[plan] wrote {out / 'plan.json'}" + ("" if a.exact else f" and {out / 'sweep.yaml'}"))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


# presets written before scaling/sweep/progress.py existed name scaling.sweep.plan.SweepProgress as their Hydra callback
from scaling.sweep.progress import SweepProgress, progress_line  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
