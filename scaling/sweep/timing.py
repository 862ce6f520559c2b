"""How long a planned sweep takes on its parallel workers: the makespan of its runs' predicted (or measured) seconds,
launched at once (Hydra's joblib launcher) or budget by budget (scaling/sweep/sequential.py)."""

from __future__ import annotations

from typing import Any, Protocol, Sequence


class Timed(Protocol):
    # read-only members, so that frozen dataclasses (PlannedRun) match
    @property
    def seconds(self) -> float: ...


class TimedRun(Protocol):
    @property
    def budget(self) -> Any: ...

    @property
    def seconds(self) -> float: ...


def wall_seconds(runs: Sequence[Timed], jobs: int) -> float:
    """The makespan of the runs in launch order on ``jobs`` parallel workers (joblib hands out the next run to the
    first free worker)."""
    free = [0.0] * max(1, jobs)
    for r in runs:
        i = min(range(len(free)), key=free.__getitem__)
        free[i] += r.seconds
    return max(free)


def stagewise_wall(runs: Sequence[TimedRun], jobs: int) -> float:
    """The makespan when each budget's runs finish before the next budget's start (scaling/sweep/sequential.py)."""
    by_budget: dict[Any, list[TimedRun]] = {}
    for r in runs:
        by_budget.setdefault(r.budget, []).append(r)
    return sum(wall_seconds(rs, jobs) for rs in by_budget.values())
