"""What a reader sees: the markdown report, its figures and the plots they are drawn with."""

from __future__ import annotations

import importlib

_SUBMODULES = {"calibration", "canvas", "figures", "lr_plot", "markdown", "plots", "sweep_sections", "truth_plot"}


def __getattr__(name: str):
    """Names of the module analysis.report before it became this package (write_report, render_markdown, ...)."""
    if name.startswith("__") or name in _SUBMODULES:
        raise AttributeError(name)
    return getattr(importlib.import_module("analysis.report.markdown"), name)
