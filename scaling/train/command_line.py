"""A ``python -m scaling.train`` command line checked before Hydra runs it, so that every config it would reject is
one ``error:`` line, exit status 2, and nothing written: Hydra makes its own folder (``<results_dir>/<sweep>/_hydra/``)
before the trainer sees the config, so a rejection made after that would leave it behind, or make it outside
results_dir (``sweep=../../escape``). Checked here: the overrides' syntax and keys (Hydra's own compose), the sweep's
name and results_dir (a folder this process can write), and, for a single run, the whole config and its plan. A sweep's
points are checked as each runs, so that one bad point does not abandon the rest."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from scaling.config.errors import ConfigError

if TYPE_CHECKING:
    from scaling.config.schema import Config

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def problem(argv: list[str]) -> str | None:
    """What is wrong with the command line, in one line; None when Hydra may run it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    from scaling.config.hydra_tree import override_line, parse_command_line, register, sweep_jobs

    args = parse_command_line(argv)
    if (
        args.help
        or args.hydra_help
        or args.cfg
        or args.info
        or args.shell_completion
        or args.experimental_rerun
        or args.config_path
    ):
        return None  # Hydra answers these itself (and -cp resolves against a folder only Hydra knows)
    register()
    try:
        overrides = OverridesParser.create().parse_overrides(args.overrides)
        swept = [override_line(o) for o in overrides if o.is_sweep_override()]
        fixed = [override_line(o) for o in overrides if not o.is_sweep_override()]
        first = sweep_jobs(swept)[0]  # a sweep's first point: its keys and values stand for the others'
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(Path(args.config_dir or CONF_DIR).absolute()), version_base="1.3"):
            full = compose(args.config_name or "config", overrides=fixed + first, return_hydra_config=True)
        multirun = args.multirun or str(OmegaConf.select(full, "hydra.mode")) == "RunMode.MULTIRUN"
        with open_dict(full):  # the trainer's config without Hydra's own node
            del full["hydra"]
        cfg = cast("Config", OmegaConf.to_object(full))  # the structured schema's instance; stubs say Any
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        return _one_line(e)
    finally:
        GlobalHydra.instance().clear()
    try:
        cfg.check()  # sweep and results_dir: where every folder of the launch goes
        if not multirun:
            _check_run(cfg)
        _check_writable(Path(cfg.results_dir))
    except ConfigError as e:
        return str(e)
    return None


def _check_run(cfg) -> None:
    if cfg.branch.tokens or cfg.branch.budgets:
        from scaling.sweep.branches import trunk_plan

        trunk_plan(cfg)
    else:
        from scaling.config.points import apply_point
        from scaling.config.schema import validate

        apply_point(cfg)
        validate(cfg)


def _check_writable(results_dir: Path) -> None:
    """results_dir exists as a folder this process can write in, or can be made: the nearest existing folder on its
    path is tried with a temporary file (permissions, a read-only mount and /proc all answer that honestly)."""
    p = results_dir.absolute()
    if p.exists() and not p.is_dir():
        raise ConfigError(f"results_dir={str(results_dir)!r}: must be a folder, but it is a file")
    existing = next(a for a in (p, *p.parents) if a.exists())
    if not existing.is_dir():
        raise ConfigError(
            f"results_dir={str(results_dir)!r}: must be a folder, but {str(existing)!r} on its path is a file"
        )
    try:  # an unnamed file, gone when closed: the check itself leaves nothing behind
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(
            f"results_dir={str(results_dir)!r}: must be a folder this process can write, but "
            f"{str(existing)!r} refuses it ({e.strerror})"
        ) from None


def _one_line(e: BaseException) -> str:
    """Hydra's and OmegaConf's messages, several lines each, as one: the lines that say something, joined."""
    text = str(e) + (f"\n{e.__cause__}" if e.__cause__ is not None else "")  # Hydra puts the reason in the cause
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    keep = [line for line in lines if not line.startswith(("full_key:", "object_type=", "reference_type="))]
    return " ".join(keep) or type(e).__name__
