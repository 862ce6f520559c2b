"""The sweep planner: rules per budget, sizes around a prior, a real throughput probe, epochs refused by name,
presets composed by Hydra (the planner's written preset included), and the ladder choice bounded by data and time."""

import json
import math

import pytest

from scaling.config.schema import ConfigError, apply_point, plan, validate
from scaling.sweep import plan as planner
from scaling.sweep import presets, priors, progress
from scaling.sweep.probe import probe
from support import REPO, run_cli


def _tiny_base():
    base, params, jobs = presets.compose_preset("isoflop_tiny")
    return base, params, jobs


def test_deepseek_batch_rule_gives_power_of_two_sequences_near_the_published_law():
    # B_opt = 0.2920 C^0.3271: 2,457 tokens at 1e12 -> 16 sequences of 128; 1,157 at 1e11 -> 8 sequences
    assert planner.tokens_per_step_for(1e12, "deepseek", 128) == 2048
    assert planner.tokens_per_step_for(1e11, "deepseek", 128) == 1024
    assert planner.tokens_per_step_for(1e12, "4096", 128) == 4096
    with pytest.raises(ConfigError, match="--batch-rule='1000'.*multiple of seq_len=128"):
        planner.tokens_per_step_for(1e12, "1000", 128)


def test_tokens_per_step_sets_the_batch_and_names_a_bad_value():
    base, _, _ = _tiny_base()
    base.point = {"budget": 6e10, "size": 1e4, "tokens_per_step": 1024}
    cfg = apply_point(base)
    validate(cfg)
    assert cfg.train.batch_size == 1024 // cfg.model.seq_len and plan(cfg).tokens_per_step == 1024
    base, _, _ = _tiny_base()
    base.train.tokens_per_step = 100
    with pytest.raises(
        ConfigError, match=r"train.tokens_per_step=100: must be a positive multiple of model.seq_len=64"
    ):
        apply_point(base)


def test_sizes_are_distinct_family_shapes_log_spaced_around_the_prior():
    base, _, _ = _tiny_base()
    catalogue = planner.family_sizes(base)
    n = dict(catalogue)
    sizes = planner.sizes_around(3e4, catalogue, points=5, spread=2.5)
    ns = [n[s] for s in sizes]
    assert len(set(ns)) == 5 and ns == sorted(ns)
    assert ns[0] < 3e4 < ns[-1]


def test_priors_published_and_from_a_json_file(tmp_path):
    chin = priors.load_prior("chinchilla")
    # Hoffmann et al. 2022 Approach 3: a = beta / (alpha + beta) = 0.28 / 0.62
    assert chin.a == pytest.approx(0.4516, abs=1e-3)
    (tmp_path / "prior.json").write_text(json.dumps({"C0": 1e12, "N0": 3e4, "a": 0.5}))
    p = priors.load_prior(str(tmp_path))  # a sweep folder holding prior.json
    assert p.n_opt(4e12) == pytest.approx(6e4)
    with pytest.raises(ConfigError, match="--prior='nope'"):
        priors.load_prior("nope")


def test_probe_measures_real_throughput_and_caches_it_per_machine_and_shape(tmp_path):
    base, _, _ = _tiny_base()
    base.point = {"budget": 2e10, "size": 5e3}
    cfg = apply_point(base)
    first = probe(cfg, seconds=0.05, cache_dir=tmp_path)
    assert math.isfinite(first) and first > 0
    table = json.loads((tmp_path / "throughput.json").read_text())
    (machine,) = table
    assert "threads 1" in machine and len(table[machine]) == 1
    assert probe(cfg, seconds=0.05, cache_dir=tmp_path) == first  # from the cache, not measured again


def test_a_plan_over_four_epochs_is_refused_naming_the_run(tmp_path, default_corpus):
    base, params, _ = _tiny_base()
    runs = planner.plan_points(
        base, presets.preset_points(params), n_train=20_000, probe_seconds=0.02, cache_dir=tmp_path
    )
    assert len(runs) == 12 and all(r.epochs == pytest.approx(r.tokens / 20_000) for r in runs)
    worst = max(runs, key=lambda r: r.epochs)
    with pytest.raises(ConfigError, match=rf"epochs > 4 .*{worst.run_id} \(N="):
        planner.check_epochs(runs)
    assert planner.check_epochs(runs, limit=worst.epochs) is None  # at the limit: accepted
    with pytest.raises(ConfigError) as e:  # just under it: refused, naming that run and no other
        planner.check_epochs(runs, limit=worst.epochs * (1 - 1e-9))
    assert str(e.value).count("epochs)") == 1 and f"{worst.run_id} (N=" in str(e.value)


def test_wall_time_simulates_the_launcher_handing_runs_to_free_workers():
    mk = lambda s: planner.PlannedRun(1e12, "1e4", {}, "r", 1, 1, 1, 1, 1e-3, 1e12, 0.1, s)  # noqa: E731
    runs = [mk(10.0), mk(4.0), mk(3.0), mk(3.0)]
    assert planner.wall_seconds(runs, 1) == 20.0
    assert planner.wall_seconds(runs, 2) == 10.0  # 10 | 4+3+3


def test_written_preset_composes_with_hydra_and_holds_exactly_the_planned_points(tmp_path, default_corpus):
    base, _, _ = presets.compose_preset("isoflop_cpu")
    prior = priors.load_prior("harness")
    points = planner.isoflop_points(
        [6.25e10, 1.25e11], base, prior, points=4, spread=2.5, batch_rule="deepseek", lr_rule="config"
    )
    presets.write_preset(tmp_path / "sweep.yaml", "isoflop_cpu", "mine", points, "test plan")
    cfg, params, jobs = presets.compose_preset("sweep", sweeps_dir=tmp_path)
    assert cfg.sweep == "mine" and jobs == 2 and cfg.data.folio is True
    back = presets.preset_points(params)
    assert [(p["budget"], float(p["size"]), p["tokens_per_step"]) for p in back] == [
        (p["budget"], p["size"], p["tokens_per_step"]) for p in points
    ]


def test_ladder_choice_is_bounded_by_the_corpus_and_says_why(tmp_path, default_corpus):
    base, _, _ = presets.compose_preset("isoflop_cpu")
    kw = dict(
        minutes=1e6,
        jobs=2,
        points=5,
        spread=2.5,
        batch_rule="deepseek",
        lr_rule="config",
        min_budgets=4,
        probe_seconds=0.02,
        cache_dir=tmp_path,
    )
    # a corpus of 3M tokens: the default sizes at 7.07e11 would read it more than once; 4+ budgets fit under one epoch
    budgets, runs, reason = planner.choose_from_ladder(base, priors.load_prior("harness"), n_train=3_000_000, **kw)
    assert all(b in planner.LADDER for b in budgets) and len(budgets) >= 4
    assert max(r.epochs for r in runs) <= planner.FRESH_EPOCHS
    assert "would read the corpus" in reason and f"{budgets[-1]:.3g}" in reason
    # consecutive rungs, sqrt(2) apart: with no time limit, more budgets pin the exponent better than fewer, wider
    assert all(b2 / b1 == pytest.approx(2**0.5, rel=1e-3) for b1, b2 in zip(budgets, budgets[1:]))
    # 1.5M tokens: fewer than 4 budgets fit at one epoch, so up to two are allowed, and the reason says so
    budgets, runs, reason = planner.choose_from_ladder(base, priors.load_prior("harness"), n_train=1_500_000, **kw)
    assert len(budgets) >= 4 and planner.FRESH_EPOCHS < max(r.epochs for r in runs) <= planner.SAY_EPOCHS
    assert "allowing up to 2 epochs" in reason


def test_exponent_precision_rewards_more_budgets_and_a_wider_range():
    p = planner.exponent_precision
    assert p([1e11, 2e11]) == 0.0  # no degrees of freedom left for the interval
    assert p([1e11, 2e11, 4e11, 8e11]) > p([1e11, 2e11, 4e11]) > 0
    assert p([1e11, 4e11, 16e11]) > p([1e11, 2e11, 4e11])
    # 4 budgets over 8x against 6 over 5.7x (sqrt 2 steps): the six pin it better (t with 4 dof, not 2)
    assert p([1.25e11 * 2 ** (k / 2) for k in range(6)]) > p([1.25e11 * 2**k for k in range(4)])


def test_plan_cli_prints_every_run_and_refuses_a_preset_over_four_epochs(tmp_path, default_corpus):
    r = run_cli(
        [
            "-m",
            "scaling.sweep.plan",
            "--preset",
            "isoflop_tiny",
            "--exact",
            "--probe-seconds",
            "0.02",
            "--write",
            str(tmp_path),
        ],
        cwd=REPO,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "12 runs, total" in r.stdout and "predicted wall time" in r.stdout
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert len(doc["runs"]) == 12 and all("epochs" in run and "seconds" in run for run in doc["runs"])
    r = run_cli(["-m", "scaling.sweep.plan", "--budgets", "1e14", "--points", "2", "--probe-seconds", "0.02"], cwd=REPO)
    assert r.returncode == 2 and "epochs > 4" in r.stderr and "N" in r.stderr


def test_progress_line_counts_finished_runs_and_predicts_the_rest(tmp_path):
    doc = {
        "jobs": 2,
        "predicted_wall_seconds": 30.0,
        "runs": [{"run_id": "a", "seconds": 10.0}, {"run_id": "b", "seconds": 10.0}, {"run_id": "c", "seconds": 20.0}],
    }
    (tmp_path / "plan.json").write_text(json.dumps(doc))
    line = progress.progress_line(tmp_path / "plan.json", started=100.0, now=160.0)
    assert line.startswith("[sweep] 0/3 runs done, 1.0 min elapsed, about 0.5 min left")  # 10 | 10, then 20 after 10


def test_progress_callback_records_the_measured_wall_time_beside_the_prediction(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"jobs": 1, "predicted_wall_seconds": 60.0, "runs": []}))
    cb = progress.SweepProgress(str(tmp_path / "plan.json"))
    cb.on_multirun_start(config=None)
    cb.on_multirun_end(config=None)
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["actual_wall_seconds"] >= 0 and doc["predicted_wall_seconds"] == 60.0
