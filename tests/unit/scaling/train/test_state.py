"""A run's state: copied as a value (a branch), saved and restored exactly, and loaded safely (no code from pickles)."""

import math

import pytest
import torch

from scaling.config.schema import run_id
from scaling.core import records
from scaling.data import Dataset
from scaling.train.lifecycle import resolve, train
from scaling.train.loop import Compute, LoopSpec, steps
from scaling.train.state import UnsafeFile, new_state, restore, safe_load, save_checkpoint
from support import REPO, run_cli, tiny_cfg


class _Evil:
    """A pickle payload: unpickling it calls open(marker, 'w'), i.e. runs code that creates a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_malicious(path, marker, *, like_checkpoint: bool):
    payload = (
        {"format": 2, "step": 1, "rows": [], "evil": _Evil(marker)} if like_checkpoint else {"evil": _Evil(marker)}
    )
    torch.save(payload, path)


def _state_and_data(tmp_path, default_corpus, **kw):
    spec = resolve(tiny_cfg(tmp_path, tokens=12 * 256, **kw))
    t = spec.cfg.train
    st = new_state(
        spec.plan.shape,
        torch.device("cpu"),
        seed=t.seed,
        lr=spec.plan.schedule.peak_lr,
        weight_decay=t.weight_decay,
        betas=(t.beta1, t.beta2),
        started="now",
    )
    return spec, st, Dataset.load(default_corpus), LoopSpec.of(t, spec.plan), Compute(torch.device("cpu"), False)


def test_a_copied_state_is_an_independent_branch_that_trains_identically(tmp_path, default_corpus):
    spec, st, ds, ls, comp = _state_and_data(tmp_path, default_corpus)
    it = steps(st, ds, ls, comp)
    for _ in range(4):
        next(it)
    branch = st.copy()
    # the copied optimizer updates the copied model's parameters, not the original's
    assert {id(p) for g in branch.optimizer.param_groups for p in g["params"]} == {
        id(p) for p in branch.model.parameters()
    }
    assert not {id(p) for p in branch.model.parameters()} & {id(p) for p in st.model.parameters()}
    rows_a = [r for r in it]  # the original trains on to the end
    rows_b = [r for r in steps(branch, ds, ls, comp)]  # the branch, from step 4, separately
    assert [r["train_loss"] for r in rows_a] == [r["train_loss"] for r in rows_b]
    assert st.step == branch.step == spec.plan.steps and len(st.rows) == len(branch.rows) == spec.plan.steps
    assert branch.rows is not st.rows


def test_a_saved_state_restores_exactly_and_loads_with_weights_only(tmp_path, default_corpus):
    spec, st, ds, ls, comp = _state_and_data(tmp_path, default_corpus)
    it = steps(st, ds, ls, comp)
    for _ in range(5):
        next(it)
    save_checkpoint(st, tmp_path / "ck.pt")
    raw = torch.load(tmp_path / "ck.pt", weights_only=True)  # plain types only: rows, counters, times
    assert raw["step"] == 5 and len(raw["rows"]) == 5 and isinstance(raw["rows"][0]["schedule_complete"], bool)
    _, fresh, *_ = _state_and_data(tmp_path, default_corpus)
    restore(fresh, tmp_path / "ck.pt", total_steps=spec.plan.steps)
    # repr: exact for floats, and equal for the NaN val_loss of steps without an evaluation (nan != nan)
    assert (
        fresh.step == 5 and repr(fresh.rows) == repr(st.rows) and fresh.counters == st.counters and fresh.resumes == 1
    )
    a = [r["train_loss"] for r in it]
    b = [r["train_loss"] for r in steps(fresh, ds, ls, comp)]
    assert a == b


def test_the_malicious_payload_really_runs_code_when_loaded_unsafely(tmp_path):
    # the control: what weights_only=False would do with these files (in a child process, on a marker file only)
    marker = tmp_path / "PWNED"
    _write_malicious(tmp_path / "checkpoint.pt", marker, like_checkpoint=True)
    code = f"import torch; torch.load({str(tmp_path / 'checkpoint.pt')!r}, weights_only=False)"
    run_cli(["-c", code], timeout=120)
    assert marker.exists()


def test_a_malicious_checkpoint_is_refused_not_executed(tmp_path, default_corpus, capsys):
    marker = tmp_path / "PWNED"
    _write_malicious(tmp_path / "x.pt", marker, like_checkpoint=True)
    with pytest.raises(UnsafeFile, match=r"refused to load: it holds Python objects other than tensors"):
        safe_load(tmp_path / "x.pt")
    assert not marker.exists()
    # the trainer meeting one in a run directory, launched as a user would: refused, nothing executed, the run stops
    # with one error line and keeps the file for inspection (it used to be overwritten by a run from step 0)
    cfg = tiny_cfg(tmp_path, tokens=10 * 256)
    run_dir = tmp_path / "t" / run_id(cfg)
    run_dir.mkdir(parents=True)
    _write_malicious(run_dir / records.CHECKPOINT_FILE, marker, like_checkpoint=True)
    before = (run_dir / records.CHECKPOINT_FILE).read_bytes()
    r = run_cli(
        [
            "-m",
            "scaling.train",
            f"results_dir={tmp_path}",
            "sweep=t",
            "model.size=5e3",
            "model.seq_len=32",
            "train.batch_size=8",
            "train.eval_tokens=2048",
            "train.threads=1",
            "log.progress=false",
            f"train.tokens={10 * 256}",
        ],
        cwd=REPO,
    )
    assert r.returncode == 1, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "checkpoint.pt: refused to load" in errors[0] and "keeps the file" in errors[0]
    assert "Traceback" not in r.stderr and not marker.exists()
    assert (run_dir / records.CHECKPOINT_FILE).read_bytes() == before


def test_generate_refuses_malicious_weights_with_a_clear_message(tmp_path, default_corpus):
    cfg = tiny_cfg(tmp_path, tokens=10 * 256)
    s = train(cfg)
    run_dir = tmp_path / "t" / s.run_id
    marker = tmp_path / "PWNED"
    _write_malicious(run_dir / records.WEIGHTS_FILE, marker, like_checkpoint=False)
    r = run_cli(["-m", "scaling.train.generate", str(run_dir), "--prompt", "x", "--max-new-tokens", "2"], cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert "model.pt: refused to load" in r.stderr and "Traceback" not in r.stderr
    assert not marker.exists()


def test_generate_refuses_a_config_yaml_with_python_tags_with_one_error_line(tmp_path, default_corpus):
    s = train(tiny_cfg(tmp_path, tokens=10 * 256))
    run_dir = tmp_path / "t" / s.run_id
    marker = tmp_path / "PWNED"
    (run_dir / records.CONFIG_FILE).write_text(f"x: !!python/object/apply:os.system ['touch {marker}']\n")
    r = run_cli(["-m", "scaling.train.generate", str(run_dir), "--prompt", "x", "--max-new-tokens", "2"], cwd=REPO)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: ") and "config.yaml: not a plain YAML config, refused" in r.stderr
    assert not marker.exists()


def test_record_files_are_readable_by_others_as_open_would_make_them(tmp_path, default_corpus):
    import os

    s = train(tiny_cfg(tmp_path, tokens=10 * 256))
    umask = os.umask(0)
    os.umask(umask)
    for f in (records.CONFIG_FILE, records.SUMMARY_FILE, records.METRICS_FILE, records.WEIGHTS_FILE):
        assert (tmp_path / "t" / s.run_id / f).stat().st_mode & 0o777 == 0o666 & ~umask, f
    assert s.processes == 1 and records.read_summary(tmp_path / "t" / s.run_id).processes == 1


def test_best_val_loss_ignores_steps_without_evaluation(tmp_path, default_corpus):
    _, st, *_ = _state_and_data(tmp_path, default_corpus)
    st.rows = [{"val_loss": float("nan")}, {"val_loss": 3.0}, {"val_loss": 2.5}]
    assert st.best_val_loss == 2.5
    st.rows = []
    assert st.best_val_loss == math.inf


def test_a_checkpoint_from_before_the_reshape_still_resumes(tmp_path, default_corpus):
    spec, st, ds, ls, comp = _state_and_data(tmp_path, default_corpus)
    it = steps(st, ds, ls, comp)
    for _ in range(3):
        next(it)
    old = {
        "model": st.model.state_dict(),
        "optimizer": st.optimizer.state_dict(),
        "step": 3,
        "rows": st.rows,
        "wall_seconds": 1.0,
        "started": "then",
    }  # format 1: no format, counters or resume counts
    torch.save(old, tmp_path / "old.pt")
    _, fresh, *_ = _state_and_data(tmp_path, default_corpus)
    restore(fresh, tmp_path / "old.pt", total_steps=spec.plan.steps)
    assert fresh.step == 3 and fresh.counters == st.counters and fresh.resumes == 1
    assert [r["train_loss"] for r in it] == [r["train_loss"] for r in steps(fresh, ds, ls, comp)]
