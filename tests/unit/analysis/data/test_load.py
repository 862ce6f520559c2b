"""Loading run directories into the runs and curves tables (analysis/data/load.py)."""

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import analysis
from analysis.data.load import RunExcludedWarning, load_curves, load_runs, scan_runs
from scaling.core import records
from synthetic_sweep import BAD_RUNS, BUDGETS, LADDER, TRUE_LAW, write_run, write_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("load") / "isoflop")


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        return fn(*args, **kw)


def test_load_runs_has_one_row_per_finished_run_with_canonical_columns(sweep):
    runs = quiet(load_runs, sweep)
    assert len(runs) == 6 * len(BUDGETS)
    assert not set(BAD_RUNS) & set(runs["run_id"])
    assert runs["status"].eq("complete").all()
    np.testing.assert_array_equal(runs["N"], runs["params_non_embedding"])
    np.testing.assert_array_equal(runs["D"], runs["tokens"])
    np.testing.assert_array_equal(runs["C"], runs["flops_chinchilla"])
    np.testing.assert_array_equal(runs["loss"], runs["final_val_loss"])
    assert set(runs["budget"]) == set(BUDGETS)
    np.testing.assert_allclose(runs["tokens_per_param"], runs["D"] / runs["N"])
    # every FLOP convention is there for a user who wants another one
    for c in records.FLOP_CONVENTIONS:
        assert runs[f"flops_{c}"].gt(0).all() and runs[f"flops_per_token_{c}"].gt(0).all()
    assert runs.attrs["flops_convention"] == "chinchilla"
    assert runs.attrs["params_convention"] == "non_embedding"
    # losses are the law's, to within the sweep's 0.5% noise
    np.testing.assert_allclose(runs["loss"], TRUE_LAW.loss(runs["N"], runs["D"]), rtol=0.03)


def test_conventions_choose_N_and_C(sweep):
    runs = quiet(load_runs, sweep, flops="6n", params="total")
    np.testing.assert_array_equal(runs["N"], runs["params_total"])
    np.testing.assert_allclose(runs["C"], 6 * runs["params_non_embedding"] * runs["D"])
    assert runs.attrs == {"flops_convention": "6n", "params_convention": "total", "source": str(sweep)}


def test_every_unusable_run_is_left_out_with_a_warning_naming_it_and_why(sweep):
    with pytest.warns(RunExcludedWarning) as caught:
        load_runs(sweep)
    messages = [str(w.message) for w in caught if w.category is RunExcludedWarning]
    assert len(messages) == len(BAD_RUNS)
    for run_id, why in BAD_RUNS.items():
        assert any(f"'{run_id}'" in m and why in m for m in messages), (run_id, messages)
    # the reason the trainer recorded is passed on
    assert any("out of memory" in m for m in messages)


def test_scan_runs_lists_every_run_directory_with_its_status(sweep):
    scan = scan_runs(sweep)
    assert scan["usable"].sum() == 6 * len(BUDGETS)
    bad = scan[~scan["usable"]].set_index("run_id")
    assert set(bad.index) == set(BAD_RUNS)
    assert bad.loc["corrupt_summary", "status"] == "unreadable"
    assert bad.loc["big_diverged", "status"] == "diverged"
    assert ".hydra" not in {Path(d).name for d in scan["run_dir"]}


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(flops="6N"), "argument flops='6N': must be one of"),
        (dict(params="embedding"), "argument params='embedding': must be one of ('non_embedding', 'total')"),
    ],
)
def test_an_unknown_convention_is_an_error_naming_the_argument_and_the_choices(sweep, kw, message):
    with pytest.raises(ValueError) as e:
        load_runs(sweep, **kw)
    assert message in str(e.value)
    if "flops" in kw:
        assert all(c in str(e.value) for c in records.FLOP_CONVENTIONS)


def test_a_missing_or_empty_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_runs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no run directories under"):
        load_runs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no run directories under"):
        load_curves(tmp_path / "empty")


def test_a_sweep_with_no_usable_run_is_an_error_listing_the_reasons(tmp_path):
    write_run(tmp_path, "s", LADDER[0], 1e13, status="diverged", run_id="only")
    with pytest.warns(RunExcludedWarning, match="'only'"), pytest.raises(ValueError) as e:
        load_runs(tmp_path)
    assert "no usable runs" in str(e.value) and "only: status 'diverged'" in str(e.value)


def test_a_single_run_directory_loads_as_a_one_row_table(sweep):
    one = sweep / quiet(load_runs, sweep)["run_id"].iloc[0]
    runs = load_runs(one)
    assert len(runs) == 1 and runs["run_id"].iloc[0] == one.name


def test_load_curves_has_every_logged_step_of_every_finished_run(sweep):
    runs = quiet(load_runs, sweep)
    curves = quiet(load_curves, sweep)
    assert set(curves["run_id"]) == set(runs["run_id"])
    assert curves.attrs["flops_convention"] == "chinchilla"
    for r in runs.itertuples():
        c = curves[curves["run_id"] == r.run_id]
        assert len(c) == r.steps
        assert (c["step"].to_numpy() == np.arange(1, r.steps + 1)).all()
        np.testing.assert_array_equal(c["D"], c["step"] * r.tokens_per_step)
        assert c["D"].iloc[-1] == r.D and c["C"].iloc[-1] == pytest.approx(r.C)
        assert (np.diff(c["C"]) > 0).all()
        assert c["loss"].iloc[-1] == pytest.approx(r.loss)
        assert c["schedule_complete"].tolist() == [False] * (r.steps - 1) + [True]
        assert (c["N"] == r.N).all() and (c["budget"] == r.budget).all()
    # val_loss is only measured at intervals; loss mirrors it
    assert curves["val_loss"].isna().any()
    np.testing.assert_array_equal(curves["loss"].isna(), curves["val_loss"].isna())


def test_load_curves_leaves_out_a_run_whose_metrics_are_unreadable(sweep, tmp_path):
    copy = shutil.copytree(sweep, tmp_path / "copy")
    victim = quiet(load_runs, copy)["run_id"].iloc[3]
    (copy / victim / records.METRICS_FILE).write_bytes(b"PAR1 this is not parquet")
    with pytest.warns(RunExcludedWarning) as caught:
        curves = load_curves(copy)
    assert any(f"'{victim}'" in str(w.message) and "unreadable metrics.parquet" in str(w.message) for w in caught)
    assert victim not in set(curves["run_id"])
    assert curves["run_id"].nunique() == 6 * len(BUDGETS) - 1


def test_the_package_exports_load_functions_lazily():
    assert analysis.load_runs is load_runs and analysis.load_curves is load_curves
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        _ = analysis.nonsense


def _messages(caught):
    return [str(w.message) for w in caught if w.category is RunExcludedWarning]


def test_a_run_directory_copied_beside_itself_is_fitted_once_and_both_paths_are_named(sweep, tmp_path):
    copy = shutil.copytree(sweep, tmp_path / "copy")
    original = copy / quiet(load_runs, copy)["run_id"].iloc[2]
    twin = shutil.copytree(original, copy / f"{original.name}_backup")
    with pytest.warns(RunExcludedWarning) as caught:
        runs = load_runs(copy)
    assert runs["run_id"].is_unique and len(runs) == 6 * len(BUDGETS)
    assert str(original) in set(runs["run_dir"])  # the folder named after its run id is the one kept
    dup = [m for m in _messages(caught) if "duplicate run id" in m]
    assert len(dup) == 1 and str(twin) in dup[0] and str(original) in dup[0]
    assert "folder is named after the run id" in dup[0]
    row = scan_runs(copy).set_index("run_dir").loc[str(twin)]
    assert not row["usable"] and "duplicate run id" in row["reason"]
    assert quiet(load_curves, copy)["run_id"].nunique() == len(runs)


@pytest.mark.parametrize(
    "damage, why",
    [
        ("empty_metrics", "metrics.parquet has no rows"),
        ("no_config", "no config.yaml"),
        ("contradiction", "summary contradicts metrics.parquet: final_val_loss="),
    ],
)
def test_a_damaged_run_is_excluded_by_runs_curves_and_scan_alike(sweep, tmp_path, damage, why):
    copy = shutil.copytree(sweep, tmp_path / "copy")
    victim = copy / quiet(load_runs, copy)["run_id"].iloc[4]
    if damage == "empty_metrics":
        records.write_metrics(victim, [])
    elif damage == "no_config":
        (victim / records.CONFIG_FILE).unlink()
    else:
        s = records.read_summary(victim)
        s.final_val_loss *= 0.9
        records.write_summary(victim, s)
    with pytest.warns(RunExcludedWarning) as caught:
        runs = load_runs(copy)
    assert victim.name not in set(runs["run_id"]) and victim.name not in set(quiet(load_curves, copy)["run_id"])
    assert any(f"'{victim.name}'" in m and why in m for m in _messages(caught)), _messages(caught)
    scan = scan_runs(copy)
    assert scan.set_index("run_id").loc[victim.name, "reason"].startswith(why)
    assert scan["usable"].sum() == len(runs) and (~scan["usable"]).sum() == len(_messages(caught))


def test_metrics_read_twice_in_a_process_are_the_file_as_it_is_now(sweep, tmp_path):
    """The loader keeps each metrics table it read (a report loads its sweep once a convention), keyed by the file's
    size and modification time: a caller that changes its copy changes no later read, and a rewritten file is read
    again (here its last validation loss no longer matches the summary, so the run is left out, saying why)."""
    copy = shutil.copytree(sweep, tmp_path / "copy")
    run_id = quiet(load_runs, copy)["run_id"].iloc[0]
    before = quiet(load_curves, copy)
    first = before[before["run_id"] == run_id]["val_loss"].to_numpy()
    before.loc[before["run_id"] == run_id, "val_loss"] = -1.0  # the caller's table, not the cache's
    again = quiet(load_curves, copy)
    np.testing.assert_array_equal(again[again["run_id"] == run_id]["val_loss"].to_numpy(), first)
    m = records.read_metrics(copy / run_id)
    m["val_loss"] = m["val_loss"] + 0.5
    m.to_parquet(copy / run_id / records.METRICS_FILE, index=False)
    assert run_id not in set(quiet(load_curves, copy)["run_id"])
    assert "summary contradicts" in str(quiet(scan_runs, copy).set_index("run_id").loc[run_id, "reason"])
