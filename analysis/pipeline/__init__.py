"""One sweep, every fit: runs -> each approach fitted, bootstrapped, backtested, converted to the sweep's FLOP
convention and checked for convention robustness -> an ``Analysis`` value holding every table the report renders.

``analyse`` computes; nothing here writes a file or prints. ``analysis.report.markdown`` renders an Analysis
as markdown, ``analysis.report.figures`` draws it, and the CLI prints it, so a report, a notebook and a
``predict`` call agree. One job a module:

- ``run``: ``analyse`` itself, the order of its sections and which run in the second process;
- ``inputs``: the sweep loaded once, the fits made (``fit_functions``), the plan, the default budgets;
- ``result``: the ``Analysis`` value and the views every caller shares (prediction table, intervals shown);
- ``quantities``: what is bootstrapped and calibrated, as picklable callables;
- ``approach2``: Approach 2's t interval, within-budget minima and per-sweep calibration;
- ``laws``: Approach 3's and Kaplan's calibrations;
- ``checks``: a fit's doubts, the truth check, repeated data.

The names below are the package's public interface (``from analysis.pipeline import analyse``).
"""

from analysis.pipeline.inputs import fit_functions, load_sweep, read_plan
from analysis.pipeline.quantities import AllocationQuantities, CalibratedQuantities
from analysis.pipeline.result import Analysis, a2_interval_source, fit_intervals, intervals, prediction_table, qname
from analysis.pipeline.run import DEFAULT_LEVEL, DEFAULT_N_BOOT, analyse

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_N_BOOT",
    "AllocationQuantities",
    "Analysis",
    "CalibratedQuantities",
    "a2_interval_source",
    "analyse",
    "fit_functions",
    "fit_intervals",
    "intervals",
    "load_sweep",
    "prediction_table",
    "qname",
    "read_plan",
]
