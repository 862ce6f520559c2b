"""How far to trust a fit: bootstrap, rolling backtests and their candidate laws, IsoFLOP intervals, convention
robustness, the truth check."""

from __future__ import annotations

import importlib

# names of the module analysis.uncertainty before it became this package, imported on first use
_EXPORTS = {
    "bootstrap": "resampling",
    "BootstrapResult": "resampling",
    "backtest": "backtests",
    "BacktestResult": "backtests",
    "rolling_backtest": "backtests",
    "RollingBacktest": "backtests",
    "ROLLING_COLUMNS": "backtests",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'analysis.uncertainty' has no attribute {name!r}")
    return getattr(importlib.import_module(f"analysis.uncertainty.{module}"), name)
