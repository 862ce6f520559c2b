"""The config tree as Hydra sees it: the schema registered once (``register``), and a sweep's grid crossed as Hydra's
basic sweeper crosses it (``sweep_jobs``). The trainer, the planner and placement all compose through these."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scaling.config.schema import CHOICES, Config

if TYPE_CHECKING:
    from hydra.core.override_parser.types import Override


def register() -> None:
    """Store the schema as ``base_config``, which scaling/conf/config.yaml composes over, and the ``choices``
    resolver its help text lists each choice field's values with (``${choices:train.schedule}``). Idempotent."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    ConfigStore.instance().store(name="base_config", node=Config)
    if not OmegaConf.has_resolver("choices"):
        OmegaConf.register_new_resolver("choices", lambda name: " | ".join(CHOICES[name]))


def sweep_jobs(overrides: list[str]) -> list[list[str]]:
    """Every job of a sweep, as the overrides Hydra's basic sweeper hands each one: ``["model.size=1,2", "x=3"]``
    -> ``[["model.size=1", "x=3"], ["model.size=2", "x=3"]]``; no overrides, one job. This reaches into Hydra's
    internals (``BasicSweeper.split_arguments``, the only way to get its exact crossing), so it does so here only."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not overrides:
        return [[]]
    return [
        list(job) for job in BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0]
    ]


def override_line(o: Override) -> str:
    """An override's text as given (Hydra types ``input_line`` Optional; it is set on every override it parsed)."""
    assert o.input_line is not None, o
    return o.input_line


def parse_command_line(argv: list[str]):
    """``argv`` as Hydra's own entry point reads it (its flags: -m, -cd, -cn, --help, ...; the rest overrides), with
    Hydra's parser, so a check made before Hydra runs sees exactly what Hydra will."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(argv)
