"""Learning rate per size: the parabola optimum in ln LR, the power law of the optimum, the rule file the trainer
reads (fitted or published), and the `python -m analysis.lr` command on real run directories."""

import json
import math

import pandas as pd
import pytest

from analysis.fits.lr import choose_variables, fit_joint, fit_law, optima, optimum
from scaling.config import lr_rule
from scaling.config.schema import Config, ConfigError, plan, run_id, validate
from scaling.core import records
from support import REPO, run_cli

LRS = [1e-3 * 2**k for k in range(7)]  # 1e-3 .. 6.4e-2


def true_lr(N, D):
    return 0.05 * N**-0.3 * D**0.1


def synthetic_runs(Ns=(1e4, 3e4, 1e5), Ds=(1e5, 4e5)) -> pd.DataFrame:
    """Losses exactly quadratic in ln LR around a known law."""
    rows = []
    for N in Ns:
        for D in Ds:
            for lr in LRS:
                rows.append(
                    {
                        "N": N,
                        "D": D,
                        "C": 6 * N * D,
                        "lr": lr,
                        "loss": 3 + 0.2 * (math.log(lr) - math.log(true_lr(N, D))) ** 2,
                    }
                )
    return pd.DataFrame(rows)


def test_the_optimum_is_the_vertex_of_the_parabola_in_ln_lr():
    losses = [2 + 0.3 * (math.log(lr) - math.log(5e-3)) ** 2 for lr in LRS]
    o = optimum(LRS, losses)
    assert o.interior and o.lr_opt == pytest.approx(5e-3, rel=1e-9) and o.loss_opt == pytest.approx(2)
    assert o.curvature == pytest.approx(0.6)


def test_an_optimum_at_the_edge_of_the_grid_is_flagged_not_extrapolated():
    losses = [2 + 0.3 * (math.log(lr) - math.log(1e-1)) ** 2 for lr in LRS]  # minimum beyond the largest LR
    o = optimum(LRS, losses)
    assert not o.interior and o.lr_opt == pytest.approx(LRS[-1])


def test_the_law_recovers_known_exponents_in_N_and_D():
    opt = optima(synthetic_runs())
    assert opt["interior"].all() and len(opt) == 6
    assert choose_variables(opt) == ("N", "D")
    law = fit_law(opt)
    assert law.exponents["N"] == pytest.approx(-0.3, abs=1e-6)
    assert law.exponents["D"] == pytest.approx(0.1, abs=1e-6)
    assert law.coef == pytest.approx(0.05, rel=1e-5)
    assert law(N=2e4, D=2e5) == pytest.approx(true_lr(2e4, 2e5), rel=1e-6)
    one_d = optima(synthetic_runs(Ds=(1e5,)))
    assert choose_variables(one_d) == ("N",)
    with pytest.raises(ValueError, match="need at least 3"):
        fit_law(one_d.iloc[:1], ("N", "D"))


def test_a_published_rule_sets_the_lr_from_compute_deepseek():
    cfg = Config()
    cfg.train.tokens, cfg.train.lr_rule = 1e6, "deepseek"
    validate(cfg)
    p = plan(cfg)
    C = p.flops_per_token["deepseek_m"] * p.tokens  # DeepSeek's C = M·D, M non-embedding FLOPs per token
    assert p.lr == pytest.approx(0.3118 * C**-0.125)
    assert lr_rule.PUBLISHED["deepseek"].batch_tokens(1e6, C=1e20) == pytest.approx(0.2920 * 1e20**0.3271)
    cfg.train.lr = 1e-3  # an explicit LR wins over any rule
    assert plan(cfg).lr == 1e-3
    cfg.train.lr_rule = "nowhere.json"
    with pytest.raises(
        ConfigError,
        match=r"train.lr_rule='nowhere.json': must be one of \['deepseek', "
        r"'harness_cpu'\] or",
    ):
        validate(cfg)


def _write_runs(root, runs: pd.DataFrame):
    """Real run directories (summaries as the trainer writes them) holding the synthetic sweep."""
    for i, r in runs.iterrows():
        s = records.RunSummary(
            run_id=f"r{i}",
            sweep="lr",
            status=records.STATUS_COMPLETE,
            params_non_embedding=int(r.N),
            params_total=int(r.N) + 1000,
            tokens=int(r.D),
            tokens_trained=int(r.D),
            flops={c: float(r.C) for c in records.FLOP_CONVENTIONS},
            lr=float(r.lr),
            final_val_loss=float(r.loss),
        )
        records.write_summary(root / s.run_id, s)
        records.write_metrics(
            root / s.run_id,
            [
                {  # one row: the final step, as the trainer would log it
                    "step": 1,
                    "tokens": int(r.D),
                    **{f"flops_{c}": float(r.C) for c in records.FLOP_CONVENTIONS},
                    "train_loss": float(r.loss),
                    "val_loss": float(r.loss),
                    "lr": float(r.lr),
                    "tokens_per_second": 1.0,
                    "schedule_complete": True,
                }
            ],
        )
        records.write_text_atomic(root / s.run_id / records.CONFIG_FILE, f"train:\n  lr: {float(r.lr)}\n")
    diverged = records.RunSummary(
        run_id="rdiv",
        sweep="lr",
        status=records.STATUS_DIVERGED,
        params_non_embedding=10000,
        tokens=100000,
        lr=0.5,
        reason="train loss nan at step 3",
    )
    records.write_summary(root / "rdiv", diverged)


def test_the_cli_writes_a_rule_file_that_the_trainer_applies(tmp_path):
    sweep = tmp_path / "lr_sweep"
    _write_runs(sweep, synthetic_runs())
    r = run_cli(["-m", "analysis.lr", str(sweep), "--vars", "N"], cwd=REPO)
    assert r.returncode == 0, r.stderr[-2000:]
    # the default joint fit; N alone absorbs part of the D dependence of the truth (0.05 N^-0.3 D^0.1)
    assert "lr_opt = " in r.stdout and "joint fit" in r.stdout and "N^-0.2" in r.stdout
    out = sweep / "lr"
    assert (out / "lr_vs_loss.png").stat().st_size > 10_000 and (out / "optima.csv").exists()
    rule_file = out / "lr_rule.json"
    assert json.loads(rule_file.read_text())["lr"]["exponents"].keys() == {"N"}
    cfg = Config()
    cfg.model.size, cfg.train.tokens, cfg.train.lr_rule = "2e4", 1e6, str(rule_file)
    validate(cfg)
    p = plan(cfg)
    rule = lr_rule.load(str(rule_file)).lr
    assert p.lr == pytest.approx(rule(p.shape.params_non_embedding()))
    # the rule's content is part of the run's identity: a refitted file is another run
    before = run_id(cfg)
    d = json.loads(rule_file.read_text())
    d["lr"]["coef"] *= 2
    rule_file.write_text(json.dumps(d))
    assert run_id(cfg) != before and plan(cfg).lr == pytest.approx(2 * p.lr)


def test_the_joint_fit_recovers_the_law_and_one_stuck_run_does_not_steer_it():
    """Every run in one least-squares fit with a shared curvature: exact on exact data, in N and D; a run stuck 0.5
    nats high (a plateau it never left) moves the exponent by less than 0.01 (soft-L1 loss)."""
    df = synthetic_runs()
    law = fit_joint(df, ("N", "D"))
    assert law.method == "joint" and law.exponents == pytest.approx({"N": -0.3, "D": 0.1}, abs=1e-6)
    assert law(N=3e4, D=2e5) == pytest.approx(true_lr(3e4, 2e5), rel=1e-5)
    assert law.curvature == pytest.approx(0.2, rel=1e-6) and law.stderr["N"] < 1e-3
    stuck = df.copy()
    stuck.loc[(stuck.N == 3e4) & (stuck.D == 1e5) & (stuck.lr == LRS[3]), "loss"] += 0.5
    robust = fit_joint(stuck, ("N", "D"))
    assert abs(robust.exponents["N"] + 0.3) < 0.01 and abs(robust.exponents["D"] - 0.1) < 0.01
    with pytest.raises(ValueError, match="too few"):
        fit_joint(df[df.N == 1e4], ("N", "D"))
    rule = law.rule("test")
    assert rule["fit"]["method"] == "joint" and rule["lr"]["exponents"] == law.exponents
