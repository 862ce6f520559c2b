"""Hydra from the command line, as a user calls it: presets compose, bad overrides fail fast, multirun writes runs."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from scaling.config.schema import Config, apply_point, plan, run_id, validate
from scaling.core import records
from scaling.sweep.branches import trunk_plan
from support import REPO, run_cli

PRESETS = sorted(p.stem for p in (REPO / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("preset", PRESETS)
def test_every_sweep_preset_composes_and_every_run_validates(preset):
    import scaling.train.entry  # noqa: F401  registers the structured base config

    # compose the preset itself, then every point of its grid
    with initialize_config_dir(config_dir=str(REPO / "sweeps"), version_base="1.3"):
        base = compose(config_name=preset, return_hydra_config=True)
        params = OmegaConf.to_container(base.hydra.sweeper.params)
        assert str(base.hydra.mode) in ("MULTIRUN", "RunMode.MULTIRUN")
        parser = OverridesParser.create()
        points = set()
        grid = [[]]
        for key, values in params.items():
            (ov,) = parser.parse_overrides([f"{key}={values}"])
            grid = [g + [f"{ov.get_key_element()}={v}"] for g in grid for v in ov.sweep_string_iterator()]
        assert len(grid) >= 6
        ids = []
        for overrides in grid:
            c = compose(config_name=preset, overrides=overrides)
            obj: Config = apply_point(OmegaConf.to_object(c))
            if obj.branch.tokens or obj.branch.budgets:  # a trunk and its cooldown branches, each a run
                ids += [b.run_id for b in trunk_plan(obj).branches]
                continue
            validate(obj)
            assert plan(obj).steps >= 1
            ids.append(run_id(obj))
            points.add((obj.train.budget, plan(obj).shape.params_non_embedding()))
        assert len(set(ids)) == len(ids)  # no two runs of a preset train the same model
        if preset.startswith("isoflop"):
            assert len(points) == len(grid)
            budgets = {b for b, _ in points}
            assert len(budgets) >= 3 and all(sum(1 for b2, _ in points if b2 == b) >= 4 for b in budgets)


def test_help_describes_the_app():
    r = run_cli(["-m", "scaling.train", "--help"], cwd=REPO)
    assert r.returncode == 0
    assert "train one GPT-style model" in r.stdout and "train:" in r.stdout and "budget" in r.stdout


@pytest.mark.parametrize(
    "override,match",
    [
        (["model.size=-5", "train.budget=1e12"], "model.size='-5': must be a positive parameter count"),
        (["model.size=tiny", "train.tokens=1000"], "less than one optimizer step"),
        (["model.size=tiny", "train.budget=1e12", "train.lr=7"], r"train.lr=7.0: must be in \(0, 1\]"),
        (["model.size=tiny"], "exactly one of them set"),
    ],
)
def test_bad_overrides_fail_fast_with_the_field_named(tmp_path, override, match):
    r = run_cli(["-m", "scaling.train", *override, f"results_dir={tmp_path}"], cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert match.replace("\\", "") in r.stderr.replace("\\", "") or __import__("re").search(match, r.stderr), r.stderr
    assert not any(p.name != "_hydra" for d in tmp_path.glob("*") for p in d.iterdir())


def test_a_typo_in_a_key_is_rejected_by_the_schema(tmp_path):
    r = run_cli(["-m", "scaling.train", "train.budgett=1e12", f"results_dir={tmp_path}"], cwd=REPO)
    assert r.returncode != 0 and "budgett" in r.stderr


@pytest.mark.slow
def test_multirun_of_two_runs_writes_two_run_directories_and_relaunch_skips(tmp_path, default_corpus):
    args = [
        "-m",
        "scaling.train",
        "-m",
        "model.size=3e3,6e3",
        "train.tokens=8192",
        "model.seq_len=32",
        "train.batch_size=8",
        "train.eval_tokens=1024",
        "log.progress=false",
        "sweep=two",
        f"results_dir={tmp_path}",
    ]
    r = run_cli(args, cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list(records.iter_run_dirs(tmp_path / "two"))
    assert len(runs) == 2
    for d in runs:
        s = records.read_summary(d)
        assert s.status == "complete" and s.tokens == 8192 and s.sweep == "two"
    r2 = run_cli(args, cwd=REPO)
    assert r2.returncode == 0 and r2.stderr.count("already complete") == 2


def test_dry_run_prints_every_run_without_training(tmp_path):
    r = run_cli(
        [
            "-m",
            "scaling.train",
            "-cd",
            str(REPO / "sweeps"),
            "-cn",
            "isoflop_tiny",
            "dry_run=true",
            f"results_dir={tmp_path}",
        ],
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("[plan]")]
    assert len(lines) == 12
    assert all("steps=" in line and "N=" in line and "D=" in line and "C[chinchilla]=" in line for line in lines)
    assert not list((tmp_path / "isoflop_tiny").glob("N*"))


@pytest.mark.slow
def test_the_tiny_preset_produces_a_complete_sweep(tiny_real_sweep):
    runs = [records.read_summary(d) for d in records.iter_run_dirs(tiny_real_sweep)]
    assert len(runs) == 12 and all(s.status == "complete" for s in runs)
    assert sorted({s.budget for s in runs}) == [2e10, 6e10, 1.8e11]
    for s in runs:  # tokens come from the budget under the recorded convention, to within one optimizer step
        assert (
            abs(s.flops[s.budget_convention] - s.budget) <= s.flops_per_token[s.budget_convention] * s.tokens_per_step
        )
