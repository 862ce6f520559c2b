"""An early-stopped run as a data point (issue 18, item 5): the one rule the sweep's planner (scaling/sweep/) and the
analysis loader (analysis/data/load.py) share, so the planner's in-sweep minima and the report's fits read the same
loss for the same run where every complete run of the folder is usable to the loader (the planner takes the median
offset over every complete summary under the folder; the loader over the usable, de-duplicated runs of the stopped
run's own folder: a complete run whose config or metrics cannot be read moves the two apart by its share of the
median).

A run stopped early (status ``stopped``: ``train.early_stop_frac``, scaling/train/callbacks/early_stop.py) has no final
loss; its summary's ``predicted_final_loss`` is the early stop's predicted end (the sweep prior's or the Tissue law's),
on the measure of the intermediate evaluations (the fixed ``train.eval_tokens`` subset), not the final loss's (the whole
validation split). It is mapped onto the final loss's measure by the subset -> final offset (``final_val_loss -
final_subset_val_loss``); a stopped run has none of its own, so the median offset of the complete runs of its sweep
folder is added. Without any complete run that logged the offset there is nothing to map it with: no data point.

Torch-free (standard library only).
"""

from __future__ import annotations

import math
import statistics
from typing import Iterable, Optional

from scaling.core import records


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def subset_offset(summaries: Iterable[records.RunSummary]) -> Optional[float]:
    """The median subset -> final offset (final_val_loss - final_subset_val_loss) over the complete runs of
    ``summaries`` that logged both; None where none did."""
    offsets = [
        float(s.final_val_loss - s.final_subset_val_loss)  # type: ignore[operator]
        for s in summaries
        if s.status == records.STATUS_COMPLETE and _finite(s.final_val_loss) and _finite(s.final_subset_val_loss)
    ]
    return float(statistics.median(offsets)) if offsets else None


def point_loss(s: records.RunSummary, offset: Optional[float]) -> Optional[float]:
    """The loss ``s`` enters a fit with: a complete run's final loss; an early-stopped run's predicted end plus
    ``offset`` (its sweep folder's ``subset_offset``); None for anything else (running, failed, diverged, a stopped
    run without a usable prediction or without an offset to map it)."""
    if s.status == records.STATUS_COMPLETE:
        return float(s.final_val_loss) if _finite(s.final_val_loss) else None  # type: ignore[arg-type]
    if s.status == records.STATUS_STOPPED:
        p = s.predicted_final_loss
        if offset is None or not (_finite(p) and p > 0) or not _finite(offset):  # type: ignore[operator]
            return None
        return float(p) + float(offset)  # type: ignore[arg-type]
    return None
