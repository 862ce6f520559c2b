"""Schedule-aware loss-curve laws: every logged checkpoint of a run is data (issue 18).

- ``schedule``: a run's learning rate at every optimizer step, from its metrics (or its config for older runs).
- ``areas``: the schedule functionals the laws use (forward area S1, annealing area S2, the multi-power loss drop).
- ``tissue``: Tissue et al. 2024, L(s) = L0 + A·S1^-α − C·S2, fitted to one run's curve.
- ``multipower``: Luo et al. 2025's multi-power law, fitted to one run's curve.
- ``predict``: what the fits are for: a run's final loss from its first part, the loss under another schedule, and a
  smoothed end point with an interval.
- ``trainloss``: a run's logged training loss as a law's curve, and its validation / fit ratio.
- ``prior``: a run's end from its first part and the end ratios of the sweep's finished runs of its schedule.
- ``joint``: one law over a sweep's runs with an N term, fitted on every checkpoint, and its compute-optimal allocation.
"""
