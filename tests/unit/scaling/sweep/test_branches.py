"""Cooldown branches (WSD-S): the plan's arithmetic, a branch equal to a standalone run of its schedule, branch run
directories that the analysis loads like any run, and a branched run killed twice that ends bit-identical."""

import copy

import pandas as pd
import pytest

from scaling.config.schema import Config, ConfigError, run_id
from scaling.core import records
from scaling.core.schedule import Schedule
from scaling.sweep.branches import plan_branched, trunk_plan
from scaling.train.branched import TRUNKS_DIR, run_branched
from scaling.train.entry import train
from support import run_cli

TPS = 8 * 32  # tokens per step below
ENDS = [20 * TPS, 40 * TPS, 60 * TPS]
CURVE = [c for c in records.METRICS_COLUMNS if c != "tokens_per_second"]


def tiny_cfg(results_dir) -> Config:
    cfg = Config()
    cfg.results_dir, cfg.sweep = str(results_dir), "b"
    cfg.model.size, cfg.model.seq_len, cfg.model.head_size = "5e3", 32, 8
    cfg.train.batch_size, cfg.train.eval_tokens, cfg.train.final_eval_tokens = 8, 2048, 8192
    cfg.train.threads, cfg.train.warmup_frac, cfg.train.eval_interval = 1, 0.05, 4  # one eval cadence for all
    cfg.log.progress = False
    cfg.branch.tokens, cfg.branch.cooldown_frac = [float(x) for x in ENDS], 0.25
    return cfg


@pytest.fixture(scope="module")
def branched(tmp_path_factory, default_corpus):
    root = tmp_path_factory.mktemp("branched")
    cfg = tiny_cfg(root)
    return cfg, run_branched(cfg), root / "b"


def test_the_plan_branches_at_T_over_1_plus_f_and_counts_flops_branched_and_separate():
    cfg = tiny_cfg("unused")
    tp = trunk_plan(cfg)
    assert [b.plan.steps for b in tp.branches] == [20, 40, 60]
    assert [b.branch_step for b in tp.branches] == [16, 32, 48]  # round(T / 1.25)
    assert [b.cooldown_steps for b in tp.branches] == [4, 8, 12]
    assert {b.plan.schedule.warmup_steps for b in tp.branches} == {1}  # the shortest branch's warmup, shared
    assert len({b.plan.lr for b in tp.branches}) == 1 and tp.plan.schedule.name == "constant"
    fpt = tp.plan.flops_per_token["chinchilla"]
    assert tp.flops_branched() == pytest.approx((48 + 4 + 8 + 12) * TPS * fpt)
    assert tp.flops_separate() == pytest.approx((20 + 40 + 60) * TPS * fpt)
    bp = plan_branched(["5e3", "2e4"], ENDS, cfg=cfg, cooldown_frac=0.25)
    assert len(bp.table()) == 6
    assert bp.saved_fraction == pytest.approx(1 - 72 / 120)
    assert "saved 40.0%" in str(bp)


def test_a_branch_too_short_for_a_cooldown_after_warmup_is_refused_naming_it():
    cfg = tiny_cfg("unused")
    cfg.branch.tokens = [2.0 * TPS, 40.0 * TPS]
    cfg.branch.cooldown_frac = 0.1
    with pytest.raises(ConfigError, match=r"branch.tokens.* 512 \(2 steps\).*cooldown"):
        trunk_plan(cfg)
    cfg.branch.cooldown_shape = "cosine"
    with pytest.raises(ConfigError, match=r"branch.cooldown_shape='cosine'.*linear.*1-sqrt"):
        trunk_plan(cfg)


def test_1_sqrt_cooldown_follows_haegele_et_al():
    s = Schedule(
        "wsd", 1.0, total_steps=10, warmup_steps=0, final_lr_frac=0.0, cooldown_steps=4, cooldown_shape="1-sqrt"
    )
    assert [s.lr_at(k) for k in range(6)] == [1.0] * 6
    assert [round(s.lr_at(k), 6) for k in range(6, 10)] == [round(1 - (j / 4) ** 0.5, 6) for j in range(1, 5)]


def test_a_branch_is_bit_identical_to_a_standalone_wsd_run_with_its_schedule(branched, tmp_path):
    cfg, summaries, sweep_dir = branched
    b = summaries[1]  # 40 steps: branched at 32, cooled down over 8, warmup 1
    assert (b.steps, b.branch_step, b.cooldown_steps, b.warmup_steps) == (40, 32, 8, 1)
    solo = copy.deepcopy(cfg)
    solo.branch.tokens, solo.results_dir = [], str(tmp_path)
    solo.train.tokens, solo.train.schedule, solo.train.lr = 40.0 * TPS, "wsd", b.lr
    solo.train.warmup_frac, solo.train.cooldown_frac = 0.03, 8 / 39  # round(1.2) = 1 warmup, round(8.0) = 8 cooldown
    s = train(solo)
    assert (s.warmup_steps, s.steps) == (1, 40)
    mine = records.read_metrics(sweep_dir / b.run_id)[CURVE]
    theirs = records.read_metrics(tmp_path / "b" / run_id(solo))[CURVE]
    pd.testing.assert_frame_equal(mine, theirs)
    assert b.final_val_loss == s.final_val_loss
    assert b.flops == s.flops  # its own exact FLOPs, the trunk's share included


def test_branch_ends_are_complete_run_directories_the_analysis_loads_and_the_trunk_is_not(branched):
    from analysis import load_runs

    cfg, summaries, sweep_dir = branched
    assert [s.status for s in summaries] == [records.STATUS_COMPLETE] * 3
    trunk = trunk_plan(cfg).run_id
    assert {s.parent_run_id for s in summaries} == {trunk}
    assert [s.branch_tokens for s in summaries] == [16 * TPS, 32 * TPS, 48 * TPS]
    assert {(s.cooldown_frac, s.cooldown_shape) for s in summaries} == {(0.25, "linear")}
    assert not (sweep_dir / TRUNKS_DIR / trunk / records.CHECKPOINT_FILE).exists()  # all made: trunk checkpoint gone
    runs = load_runs(sweep_dir)
    assert sorted(runs["D"]) == ENDS and set(runs["parent_run_id"]) == {trunk}
    m = records.read_metrics(sweep_dir / summaries[2].run_id)
    assert m["schedule_complete"].tolist() == [False] * 59 + [True]
    # the branches share the trunk's curve up to their branch points
    m0 = records.read_metrics(sweep_dir / summaries[0].run_id)
    pd.testing.assert_frame_equal(
        m0[CURVE].iloc[:16].reset_index(drop=True), m[CURVE].iloc[:16].reset_index(drop=True), check_exact=True
    )
    assert run_branched(cfg)[2].final_val_loss == summaries[2].final_val_loss  # relaunch: skipped, same records


def _launch(results_dir, fault):
    args = [
        "model.size=5e3",
        "model.seq_len=32",
        "model.head_size=8",
        "train.batch_size=8",
        "train.eval_tokens=2048",
        "train.final_eval_tokens=8192",
        "train.threads=1",
        "train.eval_interval=4",
        "train.warmup_frac=0.05",
        "log.progress=false",
        "sweep=b",
        f"branch.tokens=[{','.join(str(x) for x in ENDS)}]",
        "branch.cooldown_frac=0.25",
        "train.checkpoint_seconds=0.001",
        f"results_dir={results_dir}",
    ]
    return run_cli(
        ["-m", "scaling.train", *args], env={"OMP_NUM_THREADS": "1", "SCALING_FAULT_POINT": fault or None}, timeout=300
    )


@pytest.mark.slow
def test_a_branched_run_killed_in_a_cooldown_and_in_the_trunk_ends_bit_identical(branched, tmp_path):
    _, summaries, ref_dir = branched
    # 1st launch: trunk to 16, first cooldown to 19, killed; 2nd: that branch resumes (1 step) and finishes, the
    # trunk resumes at 16 and is killed at 16 + 12 = 28; 3rd launch finishes everything
    for fault in ("step:19", "step:13", None):
        r = _launch(tmp_path, fault)
        assert r.returncode == (0 if fault is None else -9), r.stderr[-2000:]
    for s in summaries:
        got = records.read_summary(tmp_path / "b" / s.run_id)
        assert got.status == records.STATUS_COMPLETE and got.final_val_loss == s.final_val_loss
        pd.testing.assert_frame_equal(
            records.read_metrics(tmp_path / "b" / s.run_id)[CURVE], records.read_metrics(ref_dir / s.run_id)[CURVE]
        )
    assert records.read_summary(tmp_path / "b" / summaries[0].run_id).resumes == 1


def test_a_trunk_that_diverges_records_every_branch_after_it_as_diverged(tmp_path, default_corpus):
    cfg = tiny_cfg(tmp_path)
    cfg.train.lr = 1.0  # far too high: the trunk's loss passes the divergence bound within a few steps
    out = run_branched(cfg)
    assert [s.status for s in out] == [records.STATUS_DIVERGED] * 3
    assert all("diverged before branch step" in s.reason and s.lr == 1.0 for s in out)
    assert out[2].tokens == ENDS[2] and out[2].parent_run_id == trunk_plan(cfg).run_id
    assert [s.status for s in run_branched(cfg)] == [records.STATUS_DIVERGED] * 3  # final: a relaunch skips them


def test_a_branchs_config_yaml_reproduces_the_branch_when_run_on_its_own(tmp_path, default_corpus):
    from omegaconf import OmegaConf

    from scaling.config.schema import Config, apply_point, plan, validate
    from scaling.sweep.branches import trunk_plan
    from scaling.train.branched import run_branched
    from scaling.train.lifecycle import train
    from support import tiny_cfg

    cfg = tiny_cfg(tmp_path / "b", dtype="fp32")
    cfg.train.tokens = None
    cfg.branch.tokens = [20 * 256, 40 * 256]
    for b in trunk_plan(cfg).branches:  # the plan its config implies is the schedule it trains
        assert plan(b.cfg).schedule == b.plan.schedule and plan(b.cfg).steps == b.plan.steps
    s = run_branched(cfg)[0]
    d = tmp_path / "b" / "t" / s.run_id
    again = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.load(d / "config.yaml")))
    again.results_dir = str(tmp_path / "again")
    apply_point(again)
    validate(again)
    alone = train(again)
    assert (alone.warmup_steps, alone.steps) == (s.warmup_steps, s.steps)
    assert alone.final_val_loss == s.final_val_loss  # the standalone run equals the branch, bit for bit (CPU, fp32)
