"""The sweep planner's command line (``python -m scaling.sweep.plan``, whose module docstring shows its uses) and the
options a planned sweep shares with ``python -m scaling.sweep.sequential``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

from scaling.config.schema import Config, ConfigError
from scaling.core import records
from scaling.sweep.ladder import choose_from_ladder
from scaling.sweep.planned import FRESH_EPOCHS, PlannedRun, budget_of, check_epochs, plan_points, render, train_tokens
from scaling.sweep.presets import compose_preset, preset_points, write_preset
from scaling.sweep.priors import PRIORS, Prior, load_prior
from scaling.sweep.probe import machine_key
from scaling.sweep.sizes import isoflop_points
from scaling.sweep.timing import stagewise_wall, wall_seconds

# the first line of scaling/sweep/plan.py's docstring, which shows the uses
DESCRIPTION = (
    "The sweep planner: which (budget, size) runs to train, how long they take here, and whether the data suffice."
)
DEFAULT_PRESET = "isoflop_cpu"


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
        description=DESCRIPTION,
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
