"""Sweep presets (sweeps/<name>.yaml): composed with Hydra exactly as ``python -m scaling.train -cd sweeps -cn <name>``
composes them, their grid read back as sweep points, and a planned grid written as a preset of its own (what the
planner's ``--write`` and each stage of the sequential sweep train)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from scaling.config.hydra_tree import register, sweep_jobs
from scaling.config.schema import Config, ConfigError

SWEEPS_DIR = Path(__file__).resolve().parents[2] / "sweeps"


def compose_preset(
    name: str, overrides: list[str] | None = None, sweeps_dir: Path = SWEEPS_DIR
) -> tuple[Config, dict, int]:
    """The preset's base config (sweep params not applied), its sweeper params and its launcher's parallelism."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(Path(sweeps_dir).resolve()), version_base="1.3"):
        full = compose(config_name=name, overrides=list(overrides or []), return_hydra_config=True)
        params = cast(dict, OmegaConf.to_container(full.hydra.sweeper.params or {}, resolve=False))  # a mapping
        jobs = int(OmegaConf.select(full, "hydra.launcher.n_jobs", default=1) or 1)
        cfg = cast(Config, OmegaConf.to_object(compose(config_name=name, overrides=list(overrides or []))))
    GlobalHydra.instance().clear()
    return cfg, params, jobs


def preset_points(params: dict) -> list[dict]:
    """A preset's grid (Hydra sweeper params, crossed as Hydra's basic sweeper crosses them) as sweep points."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    points = []
    for job in sweep_jobs([f"{k}={v}" for k, v in params.items()]):
        parsed_job = OverridesParser.create().parse_overrides(job)
        pt: dict[str, Any] = {}
        for o in parsed_job:
            key, value = o.key_or_group, o.value()
            if key == "point":
                pt.update(cast(dict, value))  # point={...}: a dict override (update raises on anything else)
            elif key in ("train.budget", "model.size", "train.tokens", "train.lr", "train.tokens_per_step"):
                pt[key.split(".", 1)[1]] = value
            else:
                raise ConfigError(
                    f"sweep param {key}: the planner plans grids over point, train.budget, model.size, "
                    f"train.tokens, train.lr and train.tokens_per_step only"
                )
        points.append(pt)
    return points


def write_preset(
    path: Path,
    base_name: str,
    sweep: str,
    points: list[dict],
    header: str,
    sweeps_dir: Path = SWEEPS_DIR,
    keep_start: bool = False,
) -> None:
    """A Hydra sweep preset: the base preset's settings with the planned points as its grid. ``keep_start``: one
    stage of a longer sweep (scaling/sweep/sequential.py), whose progress counts from the sweep's start, not the
    stage's."""
    from omegaconf import OmegaConf

    y = OmegaConf.load(Path(sweeps_dir) / f"{base_name}.yaml")
    y.sweep = sweep
    y.hydra.searchpath = [f"file://{Path(sweeps_dir).resolve()}", "pkg://scaling.conf"]
    y.hydra.sweeper.params = {"++point": ",".join(_point_str(p) for p in points)}
    y.hydra.callbacks = {
        "progress": {
            "_target_": "scaling.sweep.progress.SweepProgress",
            "plan": str(path.parent.resolve() / "plan.json"),
            "keep_start": keep_start,
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"# {line}\n" for line in header.splitlines()) + OmegaConf.to_yaml(y))


def _point_str(pt: dict) -> str:
    return "{" + ",".join(f"{k}:{v:.6g}" if isinstance(v, float) else f"{k}:{v}" for k, v in pt.items()) + "}"
