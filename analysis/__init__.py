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

from scaling.core import legacy

legacy.install()  # import paths from before the subpackages (analysis.load, analysis.plots, ...) keep working

# public name -> submodule that defines it
_EXPORTS = {
    # loading (analysis/data/load.py)
    "load_runs": "data.load",
    "load_curves": "data.load",
    "scan_runs": "data.load",
    "RunExcludedWarning": "data.load",
    "PARAMS_CONVENTIONS": "data.load",
    # laws and allocations as values (analysis/laws/forms.py)
    "PowerLaw": "laws.forms",
    "Allocation": "laws.forms",
    "ParametricLaw": "laws.forms",
    "KaplanJointLaw": "laws.forms",
    "FitError": "data.columns",
    # fits (analysis/fits/)
    "fit_approach1": "fits.approach1",
    "fit_approach2": "fits.approach2",
    "fit_approach3": "fits.approach3",
    "fit_kaplan": "fits.kaplan",
    # uncertainty (analysis/uncertainty/)
    "bootstrap": "uncertainty.resampling",
    "backtest": "uncertainty.backtests",
    "rolling_backtest": "uncertainty.backtests",
    "LAWS": "uncertainty.candidates",
    "isoflop_power_law_interval": "uncertainty.intervals",
    "bootstrap_minimum": "fits.minima",
    "estimate_minimum": "fits.minima",
    # data quality (analysis/data/quality.py) and repeated data (analysis/fits/datacon.py)
    "quality_gate": "data.quality",
    "fit_datacon": "fits.datacon",
    "check_epochs": "fits.datacon",
    "prediction_shift": "fits.datacon",
    "MUENNIGHOFF_2023": "fits.datacon",
    # published laws (analysis/laws/published.py)
    "PUBLISHED": "laws.published",
    "compare_to_published": "laws.published",
    # the whole analysis, and its report
    "analyse": "pipeline",
    "write_report": "report.markdown",
    # comparing recipes (analysis/compare/): analysis.compare(sweep_a, sweep_b, ...)
    "compare": "compare",
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
