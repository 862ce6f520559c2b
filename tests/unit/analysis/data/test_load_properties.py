"""Property: random damage to run directories never breaks the analysis; each damaged run is named and left out.

A real small sweep (run directories written through scaling.core.records, as the trainer writes them) is copied, and
one to three of its runs are damaged at random: truncated, emptied or zero-byte metrics.parquet; truncated, non-UTF-8 or
hand-edited summary.json (NaN, negative, wrong-typed values, numbers that contradict the metrics); a missing or
broken config.yaml; NaN, negative, duplicated or contradicting metrics rows; a missing summary; a copy of the run
directory beside itself (same run id). ``load_runs`` and ``load_curves`` must then load exactly the undamaged runs,
``scan_runs`` must list every damaged one with a reason, and a RunExcludedWarning must name each; of a duplicated run
exactly one copy is kept and the warning names both paths.
"""

import json
import math
import shutil
import tempfile
import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.data.load import RunExcludedWarning, load_curves, load_runs, scan_runs
from scaling.core import records
from synthetic_sweep import write_sweep

EXAMPLES = 30  # derandomized: every run of the suite tries the same damages
BUDGETS = (1e13, 1e14)
N_RUNS = 5 * len(BUDGETS)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    return write_sweep(tmp_path_factory.mktemp("damage") / "sweep", budgets=BUDGETS, n_sizes=5, with_bad_runs=False)


def _edit_summary(d: Path, key: str, value) -> None:
    s = json.loads((d / records.SUMMARY_FILE).read_text())
    if key.startswith("flops."):
        s["flops"]["chinchilla"] = value
    else:
        s[key] = value
    (d / records.SUMMARY_FILE).write_text(json.dumps(s))  # json writes NaN as the (non-standard) literal NaN


def _edit_metrics(d: Path, fn) -> None:
    m = records.read_metrics(d)
    m = fn(m)
    m.to_parquet(d / records.METRICS_FILE, index=False)


def _set(m: pd.DataFrame, col: str, row: int, value) -> pd.DataFrame:
    m = m.copy()
    m.loc[m.index[row], col] = value
    return m


SUMMARY_EDITS = st.one_of(
    # numbers that contradict the metrics or each other
    st.tuples(
        st.sampled_from(["final_val_loss", "tokens", "tokens_trained", "steps", "tokens_per_step", "flops.chinchilla"]),
        st.sampled_from([0.5, 2.0, 3.0, 1.01]),
    ).map(lambda kv: ("scale", kv[0], kv[1])),
    # values no run can have
    st.tuples(
        st.sampled_from(
            [
                "final_val_loss",
                "tokens",
                "tokens_trained",
                "params_non_embedding",
                "budget",
                "flops.chinchilla",
                "flops",
                "flops_per_token",
                "versions",
                "run_id",
                "status",
            ]
        ),
        st.sampled_from([float("nan"), float("inf"), -1.0, -5, 0, "abc", "", [], {"x": 1}, True]),
    ).map(lambda kv: ("set", kv[0], kv[1])),
)

DAMAGES = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from([records.METRICS_FILE, records.SUMMARY_FILE]), st.floats(0, 0.95)),
    st.tuples(
        st.just("zero_bytes"),
        st.sampled_from([records.METRICS_FILE, records.SUMMARY_FILE, records.CONFIG_FILE]),
        st.just(0),
    ),
    st.tuples(st.just("non_utf8"), st.sampled_from([records.SUMMARY_FILE, records.CONFIG_FILE]), st.floats(0, 1)),
    st.tuples(
        st.just("delete"),
        st.sampled_from([records.SUMMARY_FILE, records.METRICS_FILE, records.CONFIG_FILE]),
        st.just(0),
    ),
    st.tuples(st.just("empty_metrics"), st.just(""), st.just(0)),
    st.tuples(st.just("bad_yaml"), st.just(""), st.just(0)),
    st.tuples(st.just("summary"), SUMMARY_EDITS, st.just(0)),
    st.tuples(
        st.just("metrics"),
        st.sampled_from(
            ["nan_train", "negative_train", "inf_val", "last_tokens", "last_val", "duplicate_row", "drop_last"]
        ),
        st.floats(0, 1),
    ),
    st.tuples(st.just("duplicate"), st.just(""), st.just(0)),
)


def damage(d: Path, kind: str, what, x: float) -> None:
    if kind == "truncate":
        f = d / what
        data = f.read_bytes()
        f.write_bytes(data[: int(len(data) * x)])
    elif kind == "zero_bytes":
        (d / what).write_bytes(b"")
    elif kind == "non_utf8":
        f = d / what
        data = f.read_bytes()
        i = int(len(data) * x)
        f.write_bytes(data[:i] + b"\xff\xfe\xc3" + data[i:])
    elif kind == "delete":
        (d / what).unlink()
    elif kind == "empty_metrics":
        _edit_metrics(d, lambda m: m.iloc[:0])
    elif kind == "bad_yaml":
        (d / records.CONFIG_FILE).write_text("model: [unclosed\n  - {\n")
    elif kind == "summary":
        how, key, v = what
        if how == "scale":
            s = json.loads((d / records.SUMMARY_FILE).read_text())
            old = s["flops"]["chinchilla"] if key == "flops.chinchilla" else s[key]
            v = round(old * v) if isinstance(old, int) else old * v
            if v == old:
                v = old + 1
        _edit_summary(d, key, v)
    elif kind == "metrics":
        row = lambda m: min(len(m) - 1, int(x * len(m)))  # noqa: E731
        fn = {
            "nan_train": lambda m: _set(m, "train_loss", row(m), float("nan")),
            "negative_train": lambda m: _set(m, "train_loss", row(m), -0.5),
            "inf_val": lambda m: _set(m, "val_loss", row(m), float("inf")),
            "last_tokens": lambda m: _set(m, "tokens", len(m) - 1, int(m["tokens"].iloc[-1]) + 7),
            "last_val": lambda m: _set(m, "val_loss", len(m) - 1, float(m["val_loss"].iloc[-1]) + 0.1),
            "duplicate_row": lambda m: pd.concat([m.iloc[: row(m) + 1], m.iloc[row(m) :]], ignore_index=True),
            "drop_last": lambda m: m.iloc[:-1],
        }[what]
        _edit_metrics(d, fn)
    elif kind == "duplicate":
        shutil.copytree(d, d.with_name(d.name + "_copy"))
    else:  # pragma: no cover
        raise AssertionError(kind)


def _harmless(kind, what) -> bool:
    """Damages after which the run is still what it claims to be."""
    if kind == "summary" and what[0] == "set" and what[1] == "status" and what[2] == "complete":
        return True
    if kind == "summary" and what[0] == "set" and what[1] in ("flops_per_token", "versions") and what[2] == {"x": 1}:
        return True  # a mapping still: nothing the fit reads changed
    # another run id is a renamed run, not a damaged one (a copy beside the original keeps its folder's name)
    return kind == "summary" and what[0] == "set" and what[1] == "run_id" and isinstance(what[2], str)


@pytest.mark.slow
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    victims=st.lists(st.integers(0, N_RUNS - 1), min_size=1, max_size=3, unique=True),
    damages=st.lists(DAMAGES, min_size=3, max_size=3),
)
def test_damaged_runs_are_named_and_left_out_and_the_rest_load(sweep, victims, damages):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(shutil.copytree(sweep, Path(tmp) / "sweep"))
        dirs = sorted(p for p in root.iterdir() if p.is_dir())
        assert len(dirs) == N_RUNS
        damaged, duplicated = set(), set()
        for v, (kind, what, x) in zip(victims, damages):
            damage(dirs[v], kind, what, x)
            if kind == "duplicate":
                duplicated.add(dirs[v])
            elif not _harmless(kind, what):
                damaged.add(dirs[v])
        duplicated -= damaged
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RunExcludedWarning)
            runs = load_runs(root)
            curves = load_curves(root)
        messages = [str(w.message) for w in caught if w.category is RunExcludedWarning]
        scan = scan_runs(root)

        loaded = set(runs["run_dir"])
        undamaged = {str(d) for d in dirs} - {str(d) for d in damaged}
        assert undamaged <= loaded | {str(d) for d in duplicated} | {str(d) + "_copy" for d in duplicated}
        assert not loaded & {str(d) for d in damaged}, (damages, scan[~scan["usable"]].to_dict("records"))
        assert set(curves["run_id"]) == set(runs["run_id"]) and runs["run_id"].is_unique
        for d in damaged:  # named, with a reason, in the scan and in a warning
            row = scan[scan["run_dir"] == str(d)].iloc[0]
            assert not row["usable"] and isinstance(row["reason"], str) and row["reason"], row
            assert any(str(d) in m for m in messages), (str(d), messages)
        for d in duplicated:  # exactly one copy kept; the warning names both paths
            pair = {str(d), str(d) + "_copy"}
            assert len(loaded & pair) == 1
            dropped = (pair - loaded).pop()
            assert any(dropped in m and (loaded & pair).pop() in m and "duplicate" in m for m in messages), messages
        assert scan["usable"].sum() == len(runs)
        assert len(set(messages)) == (~scan["usable"]).sum()
        assert all(math.isfinite(v) and v > 0 for v in runs["loss"])
