"""The fixed ladder of budgets the default sweep chooses from, and the choice: the consecutive rungs whose runs stay
fresh (at most one pass over the corpus, or two, said) and fit the wall-time target here, pinning the exponent of
N_opt(C) best.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from scaling.config.schema import Config, ConfigError
from scaling.sweep.planned import FRESH_EPOCHS, SAY_EPOCHS, PlannedRun, plan_points
from scaling.sweep.priors import Prior
from scaling.sweep.sizes import family_sizes, isoflop_points
from scaling.sweep.timing import wall_seconds

# The fixed ladder of budgets the default sweep chooses from (training FLOPs, Chinchilla convention): factors of
# sqrt(2) around 1e12 (every factor of 2 is a rung), so runs of machines that choose different sets coincide and
# results compare between machines. A sweep takes consecutive rungs (x sqrt 2) or every other one (x2).
LADDER = tuple(float(f"{1e12 * 2.0 ** (k / 2):.4g}") for k in range(-12, 9))


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
