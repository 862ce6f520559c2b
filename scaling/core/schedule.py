"""Learning-rate schedules: warmup then cosine to a fraction of peak (default), warmup-stable-decay (WSD), constant.

``lr_at(step)`` gives the rate for optimizer update ``step`` (0-based). ``is_complete(step)`` says whether the schedule
has finished after that update: the end of a cosine run or of a WSD cooldown. Only such points are valid for
Chinchilla's Approach 1 (Hoffmann et al. 2022 §3.1: a cosine run's intermediate losses overestimate the loss of a
run tuned to that length). WSD: Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training
Durations"), a constant rate after warmup, then a cooldown to ``final_lr_frac`` of peak whose shape is linear or
1-sqrt (their §3, Fig. 4: 1-sqrt cools down better than linear for the same length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SCHEDULES = ("cosine", "wsd", "constant")
COOLDOWN_SHAPES = ("linear", "1-sqrt")


@dataclass(frozen=True)
class Schedule:
    name: str
    peak_lr: float
    total_steps: int
    warmup_steps: int
    final_lr_frac: float = 0.1
    cooldown_steps: int = 0  # WSD only
    cooldown_shape: str = "linear"  # WSD only: linear | 1-sqrt

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"train.schedule={self.name!r}: must be one of {SCHEDULES}")
        if self.total_steps < 1:
            raise ValueError(f"schedule total_steps={self.total_steps}: must be >= 1")
        if not (0 <= self.warmup_steps <= self.total_steps):
            raise ValueError(f"train.warmup_steps={self.warmup_steps}: must be in [0, total steps={self.total_steps}]")
        if self.name == "wsd" and not (1 <= self.cooldown_steps <= self.total_steps - self.warmup_steps):
            raise ValueError(
                f"WSD cooldown_steps={self.cooldown_steps}: must be in"
                f" [1, total - warmup = {self.total_steps - self.warmup_steps}]"
            )
        if self.cooldown_shape not in COOLDOWN_SHAPES:
            raise ValueError(f"train.cooldown_shape={self.cooldown_shape!r}: must be one of {COOLDOWN_SHAPES}")

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        lo = self.final_lr_frac * self.peak_lr
        if self.name == "constant":
            return self.peak_lr
        if self.name == "cosine":
            span = self.total_steps - self.warmup_steps - 1
            t = 1.0 if span <= 0 else min(1.0, (step - self.warmup_steps) / span)
            return lo + 0.5 * (self.peak_lr - lo) * (1 + math.cos(math.pi * t))
        start = self.total_steps - self.cooldown_steps  # WSD
        if step < start:
            return self.peak_lr
        t = (step - start + 1) / self.cooldown_steps
        if self.cooldown_shape == "1-sqrt":  # Hägele et al. 2024 §3: lr = peak·(1 − sqrt(t)), here down to lo
            t = math.sqrt(t)
        return self.peak_lr + (lo - self.peak_lr) * t

    def is_complete(self, step: int) -> bool:
        return self.name != "constant" and step >= self.total_steps - 1
