"""Import paths from before the subsystems got their own subpackages (issue 14), kept working for users' presets,
notebooks and scripts: ``import scaling.records`` gives the module ``scaling.core.records`` itself (one module, two
names), and ``python -m scaling.plan`` runs ``scaling.sweep.plan``. New code imports the new paths."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys

MOVED = {
    "scaling.records": "scaling.core.records",
    "scaling.family": "scaling.core.family",
    "scaling.flops": "scaling.core.flops",
    "scaling.schedule": "scaling.core.schedule",
    "scaling.lr_rule": "scaling.config.lr_rule",
    "scaling.sources": "scaling.data.sources",
    "scaling.memory": "scaling.model.memory",
    "scaling.run": "scaling.train.lifecycle",
    "scaling.loop": "scaling.train.loop",
    "scaling.state": "scaling.train.state",
    "scaling.branch_train": "scaling.train.branched",
    "scaling.generate": "scaling.train.generate",
    "scaling.wandb_log": "scaling.train.wandb_log",
    "scaling.faults": "scaling.train.faults",
    "scaling.distributed": "scaling.launch.distributed",
    "scaling.placement": "scaling.launch.placement",
    "scaling.requeue": "scaling.launch.requeue",
    "scaling.machine": "scaling.launch.machine",
    "scaling.plan": "scaling.sweep.plan",
    "scaling.probe": "scaling.sweep.probe",
    "scaling.progress": "scaling.sweep.progress",
    "scaling.sequential": "scaling.sweep.sequential",
    "scaling.branches": "scaling.sweep.branches",
    "scaling.bench_reference": "scaling.bench.reference",
    "scaling.gpu_check": "scaling.bench.gpu_check",
    "analysis.load": "analysis.data.load",
    "analysis.quality": "analysis.data.quality",
    "analysis.columns": "analysis.data.columns",
    "analysis.forms": "analysis.laws.forms",
    "analysis.conventions": "analysis.laws.conventions",
    "analysis.candidates": "analysis.uncertainty.candidates",
    "analysis.datacon": "analysis.fits.datacon",
    "analysis.lr": "analysis.cli.lr",  # the command; its fits are analysis.fits.lr
    "analysis.isoflop_interval": "analysis.uncertainty.intervals",
    "analysis.robustness": "analysis.uncertainty.robustness",
    "analysis.truth": "analysis.uncertainty.truth",
    "analysis.figures": "analysis.report.figures",
    "analysis.plots": "analysis.report.plots",
    "analysis.cli_checks": "analysis.cli.checks",
    "analysis.synthetic": "analysis.studies.synthetic",
    "analysis.bench": "analysis.studies.bench",
}


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)  # the moved module itself, under its old name too

    def exec_module(self, module) -> None:
        pass

    def get_code(self, fullname: str):  # `python -m <old name>` runs the moved module's code as __main__
        spec = importlib.util.find_spec(self.target)
        return spec.loader.get_code(self.target)  # type: ignore[union-attr]


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        moved = importlib.util.find_spec(new)
        spec = importlib.machinery.ModuleSpec(fullname, _Alias(new), origin=moved.origin if moved else None)
        spec.has_location = moved is not None  # `python -m <old name>` gets the moved file as __file__
        return spec


def install() -> None:
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
