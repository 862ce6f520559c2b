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

This module is the command's entry and the old import path of every name below; each lives in a module of its own:
the planned runs (scaling/sweep/planned.py), the sizes each budget trains (scaling/sweep/sizes.py), the ladder of
budgets (scaling/sweep/ladder.py), the command line (scaling/sweep/command_line.py), the priors
(scaling/sweep/priors.py) and the presets it composes and writes (scaling/sweep/presets.py).
"""

from __future__ import annotations

import sys

from scaling.sweep.command_line import (
    DEFAULT_PRESET,
    add_plan_arguments,
    choose_runs,
    main,
    preset_setup,
)
from scaling.sweep.ladder import LADDER, choose_from_ladder, exponent_precision
from scaling.sweep.planned import (
    FRESH_EPOCHS,
    MAX_EPOCHS,
    RUN_OVERHEAD_SECONDS,
    SAY_EPOCHS,
    PlannedRun,
    budget_of,
    check_epochs,
    plan_points,
    render,
    train_tokens,
)
from scaling.sweep.probe import machine_key, probe

# presets written before scaling/sweep/progress.py existed name scaling.sweep.plan.SweepProgress as their Hydra callback
from scaling.sweep.progress import SweepProgress, progress_line
from scaling.sweep.sizes import (
    family_sizes,
    fresh_catalogue,
    isoflop_points,
    lr_for,
    sizes_around,
    tokens_per_step_for,
)
from scaling.sweep.timing import stagewise_wall, wall_seconds

__all__ = [
    "DEFAULT_PRESET",
    "FRESH_EPOCHS",
    "LADDER",
    "MAX_EPOCHS",
    "RUN_OVERHEAD_SECONDS",
    "SAY_EPOCHS",
    "PlannedRun",
    "SweepProgress",
    "add_plan_arguments",
    "budget_of",
    "check_epochs",
    "choose_from_ladder",
    "choose_runs",
    "exponent_precision",
    "family_sizes",
    "fresh_catalogue",
    "isoflop_points",
    "lr_for",
    "machine_key",
    "main",
    "plan_points",
    "preset_setup",
    "probe",
    "progress_line",
    "render",
    "sizes_around",
    "stagewise_wall",
    "tokens_per_step_for",
    "train_tokens",
    "wall_seconds",
]

if __name__ == "__main__":
    sys.exit(main())
