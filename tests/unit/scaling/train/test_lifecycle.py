"""The trainer: real tiny runs on the default corpus. Loss falls, runs resume exactly, relaunches skip, wandb
offline."""

import math

import pandas as pd
import pytest

from scaling.config.schema import ConfigError, plan, run_id, validate
from scaling.core import records
from scaling.train.entry import train
from scaling.train.loop import auto_eval_interval
from support import tiny_cfg


def test_a_tiny_run_learns_and_writes_its_run_directory(tmp_path, default_corpus):
    cfg = tiny_cfg(tmp_path)
    s = train(cfg)
    run_dir = tmp_path / "t" / run_id(cfg)
    assert s.status == records.STATUS_COMPLETE
    for f in (records.CONFIG_FILE, records.METRICS_FILE, records.SUMMARY_FILE, records.WEIGHTS_FILE):
        assert (run_dir / f).exists(), f
    assert not (run_dir / records.CHECKPOINT_FILE).exists()
    m = records.read_metrics(run_dir)
    assert list(m.columns) == records.METRICS_COLUMNS
    assert len(m) == s.steps == 60 and m["tokens"].iloc[-1] == s.tokens == 60 * 256
    # loss falls well below a uniform guess over the vocabulary
    assert m["train_loss"].iloc[:5].mean() > m["train_loss"].iloc[-5:].mean() + 0.5
    assert s.final_val_loss < math.log(512) - 0.8
    # FLOP counters are exact per-token costs times tokens
    for c in records.FLOP_CONVENTIONS:
        assert m[f"flops_{c}"].iloc[-1] == pytest.approx(s.flops_per_token[c] * s.tokens)
    # only the last step marks a finished cosine schedule; lr ends at 10% of peak
    assert m["schedule_complete"].tolist() == [False] * 59 + [True]
    assert m["lr"].iloc[-1] == pytest.approx(0.1 * s.lr)
    assert s.epochs == pytest.approx(s.tokens / s.unique_train_tokens)
    # evaluated at the automatic cadence (cheap enough for a short run) and always at the last step
    every = auto_eval_interval(s.steps, s.tokens_per_step, cfg.train.eval_tokens)
    assert m.loc[m["val_loss"].notna(), "step"].tolist() == [k for k in range(1, 61) if k % every == 0 or k == 60]
    assert m["val_loss"].notna().sum() >= 2
    # the subset's loss at every evaluation, the final one included (there val_loss is the whole split's)
    ev = m["val_loss"].notna()
    assert m["subset_val_loss"].notna().tolist() == ev.tolist()
    assert (m["subset_val_loss"][ev].iloc[:-1] == m["val_loss"][ev].iloc[:-1]).all()
    assert s.final_subset_val_loss == m["subset_val_loss"].iloc[-1] != s.final_val_loss
    s2 = records.read_summary(run_dir)
    assert s2.final_val_loss == s.final_val_loss and s2.params_non_embedding == plan(cfg).shape.params_non_embedding()


def test_relaunching_a_complete_run_skips_it(tmp_path, default_corpus, capsys):
    cfg = tiny_cfg(tmp_path, tokens=10 * 256)
    first = train(cfg)
    mtime = (tmp_path / "t" / run_id(cfg) / records.METRICS_FILE).stat().st_mtime_ns
    again = train(cfg)
    assert "already complete" in capsys.readouterr().err
    assert again.final_val_loss == first.final_val_loss
    assert (tmp_path / "t" / run_id(cfg) / records.METRICS_FILE).stat().st_mtime_ns == mtime


def test_a_halted_run_resumes_to_exactly_the_uninterrupted_result(tmp_path, default_corpus):
    whole = train(tiny_cfg(tmp_path / "a", tokens=40 * 256))
    cfg = tiny_cfg(tmp_path / "b", tokens=40 * 256, halt_after_step=17)
    halted = train(cfg)
    run_dir = tmp_path / "b" / "t" / run_id(cfg)
    assert halted.status == records.STATUS_RUNNING and (run_dir / records.CHECKPOINT_FILE).exists()
    assert records.read_summary(run_dir).status == records.STATUS_RUNNING
    cfg.train.halt_after_step = None  # not part of the run's identity: same run id, so it resumes
    resumed = train(cfg)
    assert resumed.status == records.STATUS_COMPLETE
    a = records.read_metrics(tmp_path / "a" / "t" / run_id(cfg))
    b = records.read_metrics(run_dir)
    pd.testing.assert_series_equal(a["train_loss"], b["train_loss"], check_exact=False, rtol=1e-5)
    assert resumed.final_val_loss == pytest.approx(whole.final_val_loss, rel=1e-5)


def test_a_two_step_cosine_run_still_ends_at_the_final_rate():
    from scaling.core.schedule import Schedule

    s = Schedule("cosine", 1.0, total_steps=2, warmup_steps=1, final_lr_frac=0.1)
    assert [s.lr_at(0), s.lr_at(1)] == [1.0, pytest.approx(0.1)]


def test_wsd_schedule_marks_the_end_of_its_cooldown(tmp_path, default_corpus):
    s = train(tiny_cfg(tmp_path, tokens=20 * 256, schedule="wsd", cooldown_frac=0.25))
    m = records.read_metrics(tmp_path / "t" / s.run_id)
    lr = m["lr"].tolist()
    assert max(lr) == pytest.approx(s.lr) and lr[-1] == pytest.approx(0.1 * s.lr)
    assert lr[-6] == pytest.approx(s.lr)  # stable phase right before the cooldown
    assert m["schedule_complete"].sum() == 1


def test_a_diverging_run_is_recorded_as_diverged(tmp_path, default_corpus):
    s = train(
        tiny_cfg(tmp_path, tokens=30 * 256, lr=1.0, grad_clip=0.0, warmup_frac=0.0, beta2=0.5, diverge_factor=1.05)
    )
    assert s.status == records.STATUS_DIVERGED and "train loss" in s.reason


def test_wandb_offline_writes_a_local_run(tmp_path, default_corpus, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    cfg = tiny_cfg(tmp_path, tokens=10 * 256)
    cfg.log.wandb = True
    s = train(cfg)
    wdir = tmp_path / "t" / s.run_id / "wandb"
    runs = list(wdir.glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb")), list(wdir.iterdir())
    assert s.status == records.STATUS_COMPLETE


@pytest.mark.parametrize(
    "field,value,match",
    [
        ("tokens", 100.0, r"less than one optimizer step.*must be at least one batch"),
        ("tokens", -5.0, r"train.tokens=-5.0: must be a positive number"),
        ("budget", 1e12, r"train.budget/train.tokens.*exactly one"),
        ("schedule", "linear", r"train.schedule='linear': must be one of"),
        ("micro_batch_size", 3, r"train.micro_batch_size=3: must be a divisor of train.batch_size=8"),
        ("warmup_frac", 1.5, r"train.warmup_frac=1.5: must be in \[0, 1\)"),
        ("flops_convention", "7n", r"train.flops_convention='7n': must be one of"),
    ],
)
def test_bad_config_values_fail_before_any_compute(tmp_path, field, value, match):
    cfg = tiny_cfg(tmp_path)
    setattr(cfg.train, field, value)
    with pytest.raises(ConfigError, match=match):
        validate(cfg)
    with pytest.raises(ConfigError):
        train(cfg)
    assert not (tmp_path / "t").exists()  # nothing written


def test_run_id_is_stable_and_ignores_where_it_runs(tmp_path):
    a, b = tiny_cfg(tmp_path), tiny_cfg(tmp_path)
    b.train.device, b.train.threads = "cpu", 2
    assert run_id(a) == run_id(b)
    b.train.lr = 1e-3
    assert run_id(a) != run_id(b)
    assert run_id(a).startswith("N5e3_D1.54e4_")


def test_a_sweep_point_pairs_a_budget_with_a_size(tmp_path):
    from scaling.config.schema import apply_point

    cfg = tiny_cfg(tmp_path)
    cfg.point = {"budget": 2e10, "size": 1e4}
    apply_point(cfg)
    assert (cfg.train.budget, cfg.train.tokens, cfg.model.size, cfg.point) == (2e10, None, "10000.0", {})
    validate(cfg)
    cfg.point = {"budgett": 1}
    with pytest.raises(
        ConfigError,
        match=r"point.budgett=1: must be one of the keys "
        r"\['budget', 'lr', 'seed', 'size', 'tokens', 'tokens_per_step'\]",
    ):
        apply_point(cfg)
    cfg.point = {"budget": 2e10, "size": 1e4, "seed": 3.0}  # another seed of a point: an integer, whatever Hydra gave
    apply_point(cfg)
    assert cfg.train.seed == 3 and isinstance(cfg.train.seed, int)


def test_a_diverged_run_is_final_and_skipped_on_relaunch(tmp_path, default_corpus, capsys):
    kw = dict(tokens=30 * 256, lr=1.0, grad_clip=0.0, warmup_frac=0.0, beta2=0.5, diverge_factor=1.05)
    s = train(tiny_cfg(tmp_path, **kw))
    assert s.status == records.STATUS_DIVERGED
    assert not (tmp_path / "t" / s.run_id / records.CHECKPOINT_FILE).exists()
    again = train(tiny_cfg(tmp_path, **kw))
    assert again.status == records.STATUS_DIVERGED and "diverged before" in capsys.readouterr().err


def test_run_id_does_not_depend_on_how_the_size_is_spelled(tmp_path):
    a, b, c = tiny_cfg(tmp_path), tiny_cfg(tmp_path), tiny_cfg(tmp_path)
    a.model.size, b.model.size, c.model.size = "20k", "2e4", "20000.0"
    assert run_id(a) == run_id(b) == run_id(c)


def test_a_negative_seed_is_rejected_up_front(tmp_path):
    with pytest.raises(ConfigError, match=r"train.seed=-1: must be an integer >= 0"):
        validate(tiny_cfg(tmp_path, seed=-1))


def test_a_run_made_through_a_sweep_point_records_its_real_config_and_samples(tmp_path, default_corpus):
    from omegaconf import OmegaConf

    from scaling.train.generate import generate

    cfg = tiny_cfg(tmp_path)
    cfg.train.tokens = None
    cfg.point = {"budget": 3e9, "size": "5e3"}
    s = train(cfg)
    saved = OmegaConf.load(tmp_path / "t" / s.run_id / records.CONFIG_FILE)
    assert saved.train.budget == 3e9 and saved.model.size == "5e3" and not saved.point
    assert generate(tmp_path / "t" / s.run_id, "ROMEO.", max_new_tokens=5)[0].startswith("ROMEO.")


def test_a_learning_rate_that_really_diverges_is_caught_by_the_default_detection(tmp_path, default_corpus):
    # nothing tuned to make it diverge: lr=1.0 with the default warmup, clipping, betas and diverge_factor (1.5)
    s = train(tiny_cfg(tmp_path, tokens=40 * 256, lr=1.0))
    m = records.read_metrics(tmp_path / "t" / s.run_id)
    assert s.status == records.STATUS_DIVERGED and s.steps == 40
    step = int(s.reason.rsplit(" ", 1)[1])
    assert step < 10 and len(m) == step and m["step"].tolist() == list(range(1, step + 1))
    assert m["train_loss"].iloc[-1] > 1.5 * math.log(512) or not math.isfinite(m["train_loss"].iloc[-1])
    assert s.final_train_loss == m["train_loss"].iloc[-1] and s.tokens_trained == step * 256
    assert not (tmp_path / "t" / s.run_id / records.CHECKPOINT_FILE).exists()
    ok = train(tiny_cfg(tmp_path, tokens=40 * 256))  # the same run at the per-size rate trains normally
    assert ok.status == records.STATUS_COMPLETE


class Recorder:
    """A user's own callback: not a subclass of anything, just the five hooks, each noting that it was called."""

    def __init__(self):
        self.calls = []

    def on_start(self, run):
        self.calls.append(("on_start", run.state.step))

    def after_step(self, run, row):
        self.calls.append(("after_step", row["step"]))

    def after_eval(self, run, row):
        self.calls.append(("after_eval", row["step"]))

    def after_checkpoint(self, run):
        self.calls.append(("after_checkpoint", run.state.step))

    def on_finish(self, run, summary):
        self.calls.append(("on_finish", summary.status))


def test_a_users_callback_sees_every_hook_in_order_on_a_real_run(tmp_path, default_corpus):
    rec = Recorder()
    cfg = tiny_cfg(tmp_path, tokens=6 * 256, eval_interval=3, checkpoint_seconds=1e-9)
    s = train(cfg, callbacks=[rec])
    assert s.status == records.STATUS_COMPLETE
    expected = [("on_start", 0)]
    for k in range(1, 7):
        expected += [("after_eval", k)] if k % 3 == 0 else []
        expected += [("after_step", k)]
        expected += [("after_checkpoint", k)] if k < 6 else []  # none after the last step: completion follows
    expected += [("on_finish", records.STATUS_COMPLETE)]
    assert rec.calls == expected


def test_a_callback_missing_a_hook_is_refused_by_name(tmp_path):
    class Half:
        def on_start(self, run):
            pass

    with pytest.raises(TypeError, match=r"lacks \['after_step', 'after_eval', 'after_checkpoint', 'on_finish'\]"):
        train(tiny_cfg(tmp_path), callbacks=[Half()])
    assert not (tmp_path / "t").exists()  # refused before anything was written
