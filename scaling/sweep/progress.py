"""Progress of a planned sweep while it runs: '[sweep] 7/25 runs done, 3.1 min elapsed, about 5.0 min left'.

``progress_line`` reads the sweep's plan.json and its runs' summaries; ``SweepProgress`` is the Hydra callback that
prints it after every run and records the measured wall time in plan.json (scaling/sweep/presets.py names it in the
presets it writes).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scaling.sweep.timing import wall_seconds


def progress_line(plan_path: Path, started: float, now: float | None = None) -> str:
    """'[sweep] 7/25 runs done, 3.1 min elapsed, about 5.0 min left': done runs are those with a final summary; what
    is left is the plan's predicted wall time of the runs not done, scaled by the done runs' measured over predicted
    seconds (a loaded machine runs slower than its probe said)."""
    from scaling.core import records

    doc = json.loads(Path(plan_path).read_text())
    root = Path(plan_path).parent
    done, left, measured = [], [], 0.0
    for r in doc["runs"]:
        try:
            s = records.read_summary(root / r["run_id"])
            ok = s.status in records.FINAL_STATUSES
        except (OSError, ValueError, KeyError, TypeError):
            ok = False
        if ok:
            done.append(r)
            measured += s.wall_seconds
        else:
            left.append(r)
    elapsed = (now or time.time()) - started
    predicted_done = sum(r["seconds"] for r in done)
    scale = measured / predicted_done if done and predicted_done > 0 and measured > 0 else 1.0
    jobs = int(doc.get("jobs", 1))
    if doc.get("mode") == "sequential":  # budget after budget: each budget's runs share the workers among themselves
        by_budget: dict[Any, list[_Seconds]] = {}
        for r in left:
            by_budget.setdefault(r.get("budget"), []).append(_Seconds(r["seconds"]))
        remaining = scale * sum(wall_seconds(rs, jobs) for rs in by_budget.values())
    else:
        remaining = scale * wall_seconds([_Seconds(r["seconds"]) for r in left], jobs)
    return (
        f"[sweep] {len(done)}/{len(doc['runs'])} runs done, {elapsed / 60:.1f} min elapsed, about "
        f"{remaining / 60:.1f} min left (runs take {scale:.2f}x their predicted time; plan: "
        f"{doc['predicted_wall_seconds'] / 60:.1f} min in all)"
    )


@dataclass(frozen=True)
class _Seconds:
    seconds: float


if TYPE_CHECKING:
    from hydra.experimental.callback import Callback as _HydraCallback
else:
    try:
        from hydra.experimental.callback import Callback as _HydraCallback
    except ImportError:  # pragma: no cover - hydra is a dependency; keeps this module importable without it
        _HydraCallback = object


class SweepProgress(_HydraCallback):
    """Hydra callback (``hydra.callbacks``) printing a progress line after every run of a planned sweep. It runs in
    the launcher's workers, so the start time is shared through a file beside plan.json."""

    def __init__(self, plan: str, keep_start: bool = False):
        self.plan = Path(plan)
        self.start_file = self.plan.parent / "_progress_start"
        self.keep_start = keep_start  # a stage of a sequential sweep: its driver owns the start time and the record

    def on_multirun_start(self, config, **kwargs) -> None:
        if not (self.keep_start and self.start_file.exists()):
            self.start_file.write_text(str(time.time()))

    def on_multirun_end(self, config, **kwargs) -> None:
        """Record the sweep's measured wall time beside its prediction in plan.json (for the report)."""
        if self.keep_start:
            return
        try:
            doc = json.loads(self.plan.read_text())
            doc["actual_wall_seconds"] = time.time() - float(self.start_file.read_text())
            from scaling.core import records  # on use: Hydra instantiates this callback before any job runs

            records.write_json_atomic(self.plan, doc, indent=1)
            print(
                f"[sweep] done in {doc['actual_wall_seconds'] / 60:.1f} min (predicted "
                f"{doc['predicted_wall_seconds'] / 60:.1f} min)",
                file=sys.stderr,
                flush=True,
            )
        except (OSError, ValueError, KeyError) as e:
            print(f"[sweep] could not record the wall time: {e}", file=sys.stderr)

    def on_job_end(self, config, job_return, **kwargs) -> None:
        try:
            started = float(self.start_file.read_text())
            print(progress_line(self.plan, started), file=sys.stderr, flush=True)
        except (OSError, ValueError, KeyError) as e:  # progress is a courtesy: never fail a run over it
            print(f"[sweep] progress unavailable: {e}", file=sys.stderr)
