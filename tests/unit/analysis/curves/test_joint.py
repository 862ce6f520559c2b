"""The joint loss-curve law over a sweep (issue 18, item 2): exact recovery from every checkpoint, the fit-result
protocol every backtest candidate keeps, and its place among the backtest's laws."""

from pathlib import Path

import numpy as np
import pytest

from analysis.curves.areas import annealing_area
from analysis.curves.joint import fit_joint
from analysis.data.load import load_runs
from analysis.laws.protocol import FitResult
from analysis.uncertainty.candidates import LAWS
from scaling.core import records
from synthetic_sweep import write_sweep

TRUE = dict(E=1.5, A=40.0, B=300.0, C=0.002, alpha=0.35, beta=0.3)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A synthetic sweep on disk whose every logged validation point follows the joint law exactly."""
    root = write_sweep(
        tmp_path_factory.mktemp("joint"),
        budgets=(1e15, 3e15, 1e16),
        n_sizes=4,
        with_bad_runs=False,
        tokens_per_step=2**18,
    )
    for r in load_runs(root).itertuples():
        m = records.read_metrics(r.run_dir)
        u = m["lr"].to_numpy() / m["lr"].max()
        step = m["step"].to_numpy()
        s1 = r.tokens_per_step * np.cumsum(u)
        s2 = annealing_area(u, step, 0.999)
        law = TRUE["E"] + TRUE["A"] / r.N ** TRUE["alpha"] + TRUE["B"] / s1 ** TRUE["beta"] - TRUE["C"] * s2
        m["val_loss"] = np.where(m["val_loss"].notna(), law, np.nan)
        records.write_metrics(r.run_dir, m.to_dict("records"))
        summary = records.read_summary(r.run_dir)
        summary.final_val_loss = float(law[-1])
        records.write_summary(r.run_dir, summary)
    return load_runs(root)


def test_the_joint_law_recovers_its_parameters_from_every_checkpoint(sweep):
    fit = fit_joint(sweep)
    assert fit.alpha == pytest.approx(TRUE["alpha"], rel=1e-3) and fit.beta == pytest.approx(TRUE["beta"], rel=1e-3)
    assert fit.C == pytest.approx(TRUE["C"], rel=1e-2) and fit.rmse_rel < 1e-5
    assert fit.n_points > 5 * len(sweep)  # many points a run, not one


def test_the_joint_fit_is_a_backtest_candidate_with_a_finite_allocation(sweep):
    fit = LAWS["curve_joint"].fit(sweep)
    assert isinstance(fit, FitResult)
    al = fit.compute_optimal(1e18)
    assert al.N_opt > 0 and al.D_opt > 0 and np.isfinite(al.loss)
    assert fit.default_quantities(budget=1e18)["N_opt"] == pytest.approx(al.N_opt)
    assert fit_joint(sweep, **fit.warm_start()).alpha == pytest.approx(fit.alpha, rel=1e-3)


def test_a_sweep_of_one_size_is_refused_by_name(sweep):
    one = sweep[sweep["N"] == sweep["N"].iloc[0]]
    with pytest.raises(ValueError, match="distinct N"):
        fit_joint(one)


def test_early_stopping_replay_stops_only_runs_that_end_far_above_their_isoflop_neighbours(sweep):
    from analysis.curves.stopping import replay

    r = replay(sweep, frac=0.5, margin=0.02, n_boot=10)
    assert not r.loc[r["was_minimum"], "stop"].any()
    best_other = [
        r.loc[(r["budget"] == b) & (r["run_id"] != i), "loss"].min() for b, i in zip(r["budget"], r["run_id"])
    ]
    fitted = r["pred"].notna()
    far = r["loss"] > 1.03 * np.array(best_other)  # exact curves: the extrapolated end is the end
    assert (r.loc[fitted & far, "stop"]).all() and r.loc[r["stop"], "flops_saved"].gt(0).all()


def test_early_stopping_replay_looks_where_the_trainer_would_once_half_the_annealing_is_seen(sweep):
    from analysis.curves.schedule import subset_curve
    from analysis.curves.stopping import replay
    from scaling.core.curve_law import MIN_ANNEAL_SHARE, annealing_shares

    r = replay(sweep, frac=0.5, margin=0.02, n_boot=5)
    assert r["step"].notna().all()
    for row in r.itertuples():
        eta, steps, _ = subset_curve(str(sweep.set_index("run_id").loc[row.run_id, "run_dir"]))
        shares = annealing_shares(eta)
        assert row.step >= 0.5 * len(eta) and shares[int(row.step) - 1] >= MIN_ANNEAL_SHARE
        earlier = steps[(steps >= 0.5 * len(eta)) & (steps < row.step)]
        assert (shares[earlier - 1] < MIN_ANNEAL_SHARE).all()  # the first ready evaluation, none before it


def test_fitted_end_points_of_exact_curves_are_their_ends_and_replace_the_loss_by_the_rule(sweep):
    from analysis.curves import endpoints as ep

    ends = ep.fitted_ends(sweep, n_boot=5)
    fitted = ends["fitted"].notna()
    assert fitted.any() and (ends.loc[fitted, "offset_source"] == "sweep").all()  # no run logged its final subset
    assert np.allclose(ends.loc[fitted, "fitted"], ends.loc[fitted, "raw"], rtol=1e-3)
    assert not ep.use_fitted(ends).any()  # the rule asks for each run's own logged offset
    use = ep.use_fitted(ends, logged_offset=False)
    assert use.any() and (ends.loc[use, "n_points"] >= ep.MIN_POINTS).all()
    rs = ep.with_fitted_ends(sweep, ends, use)
    assert (rs["raw_loss"] == sweep["loss"]).all() and rs["fitted_end"].sum() == use.sum()
    assert np.allclose(rs.loc[rs["fitted_end"], "loss"], ends.loc[use.to_numpy(), "fitted"])
    with pytest.raises(ValueError, match="law='nope'"):
        ep.fitted_ends(sweep, law="nope")


def test_the_replay_with_the_sweep_prior_uses_its_pool_and_falls_back_to_tissue_like_the_trainer(sweep, tmp_path):
    import shutil

    from analysis.curves.stopping import replay

    # as the trainer, the replay takes into a pool only runs that logged their final subset loss: none here
    assert (replay(sweep, frac=0.5, margin=0.02, law="prior", pool="smaller")["pool"] == 0).all()
    root = Path(sweep["run_dir"].iloc[0]).parent
    shutil.copytree(root, tmp_path / root.name)
    for d in (tmp_path / root.name).iterdir():
        if (d / records.SUMMARY_FILE).exists():
            s = records.read_summary(d)
            s.final_subset_val_loss = s.final_val_loss
            records.write_summary(d, s)
    sweep = load_runs(tmp_path / root.name)
    with pytest.raises(ValueError, match="law='x'"):
        replay(sweep, law="x")
    with pytest.raises(ValueError, match="pool='x'"):
        replay(sweep, law="prior", pool="x")
    smallest = sweep["budget"] == sweep["budget"].min()
    p = replay(sweep, frac=0.5, margin=0.02, law="prior", pool="smaller")
    assert (p.loc[smallest.to_numpy(), "pool"] == 0).all() and p.loc[smallest.to_numpy(), "pred"].isna().all()
    prior_rows = p["pool"] >= 3
    assert prior_rows.any() and (p.loc[prior_rows, "by"] == "prior").all()
    assert (p.loc[prior_rows, "lo"] <= p.loc[prior_rows, "pred"]).all()
    t = replay(sweep, frac=0.5, margin=0.02, law="trainer", pool="smaller", n_boot=5)
    assert set(t["by"]) <= {"prior", "tissue", ""} and (t.loc[prior_rows.to_numpy(), "by"] == "prior").all()
    assert (t.loc[smallest.to_numpy() & t["pred"].notna().to_numpy(), "by"] == "tissue").all()
