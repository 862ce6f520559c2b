"""Fitting side of scaling-harness: run directories -> DataFrames -> scaling-law fits -> figures and a report.

    import analysis
    runs = analysis.load_runs("results/isoflop_cpu")        # one row a finished run (N, D, C, loss, ...)
    fit = analysis.fit_approach3(runs)                      # any DataFrame with N, D, loss columns works
    fit.compute_optimal(1e21)

This file stays light: names are imported from their modules on first use (PEP 562 module ``__getattr__``), so
``import analysis`` costs nothing and works even where a submodule's heavier dependencies are missing. Nothing here
or below imports torch.
"""
from __future__ import annotations

import importlib

# public name -> submodule that defines it
_EXPORTS = {
    # loading (analysis/load.py)
    "load_runs": "load",
    "load_curves": "load",
    "scan_runs": "load",
    "RunExcludedWarning": "load",
    "PARAMS_CONVENTIONS": "load",
    # laws and allocations as values (analysis/forms.py)
    "PowerLaw": "forms",
    "Allocation": "forms",
    "ParametricLaw": "forms",
    "KaplanJointLaw": "forms",
    "FitError": "columns",
    # fits (analysis/fits/)
    "fit_approach1": "fits.approach1",
    "fit_approach2": "fits.approach2",
    "fit_approach3": "fits.approach3",
    "fit_kaplan": "fits.kaplan",
    # uncertainty (analysis/uncertainty.py)
    "bootstrap": "uncertainty",
    "backtest": "uncertainty",
    "rolling_backtest": "uncertainty",
    "LAWS": "candidates",
    "isoflop_power_law_interval": "isoflop_interval",
    "bootstrap_minimum": "fits.minima",
    "estimate_minimum": "fits.minima",
    # data quality (analysis/quality.py) and repeated data (analysis/datacon.py)
    "quality_gate": "quality",
    "fit_datacon": "datacon",
    "check_epochs": "datacon",
    "prediction_shift": "datacon",
    "MUENNIGHOFF_2023": "datacon",
    # published laws (analysis/laws.py)
    "PUBLISHED": "laws",
    "compare_to_published": "laws",
    # the whole analysis, and its report
    "analyse": "pipeline",
    "write_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"analysis.{module}"), name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
