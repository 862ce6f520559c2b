"""Command lines the trainer rejects, run as a user runs them: each is exit status 2 and one ``error:`` line naming
what is wrong, and leaves nothing behind (no ``_hydra/run-*`` folder, nothing outside results_dir)."""

import subprocess

import pytest

from support import REPO, run_cli

VALID = ["train.tokens=1e4", "dry_run=true"]


def reject(args, cwd):
    r = run_cli(["-m", "scaling.train", *args], cwd=cwd, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), (r.returncode, r.stderr[-1500:])
    return lines[0]


# Hydra's own rejections (they used to exit 1 with 4-7 lines of Hydra's text)
@pytest.mark.parametrize(
    "override,says",
    [
        ("model.sise=3e3", "model.sise"),
        ("train.tokens=abc", "'abc'"),
        ("train.seed=nan", "train.seed=nan"),
        ("model.size=null", "model.size"),
        ("model.size=ñäñö🙂", "model.size"),
        ("model.size=[[[", "[[["),
    ],
)
def test_a_config_hydra_rejects_is_one_error_line_exit_2_and_writes_nothing(tmp_path, override, says):
    line = reject([f"results_dir={tmp_path / 'r'}", override, *VALID], cwd=REPO)
    assert says in line
    assert not (tmp_path / "r").exists()


def test_a_config_the_trainer_rejects_writes_no_hydra_folder(tmp_path):
    line = reject([f"results_dir={tmp_path / 'r'}", "train.warmup_frac=1.5", *VALID], cwd=REPO)
    assert "train.warmup_frac=1.5" in line and not (tmp_path / "r").exists()


def test_a_sweep_name_that_escapes_results_dir_is_rejected_before_any_folder(tmp_path):
    (tmp_path / "r").mkdir()
    line = reject([f"results_dir={tmp_path / 'r'}", "sweep=../../escape", *VALID], cwd=tmp_path)
    assert line.startswith("error: sweep='../../escape'")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["r"]


def test_a_bad_branch_list_is_reported_under_its_own_name(tmp_path):
    line = reject([f"results_dir={tmp_path}", "branch.tokens=[-1e5]", "train.tokens=null", "dry_run=true"], cwd=REPO)
    assert line.startswith("error: branch.tokens=[-100000.0]: must be")


@pytest.fixture
def read_only_dir(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"a read-only mount needs root or CAP_SYS_ADMIN; here: {r.stderr.strip()}")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_a_results_dir_that_is_a_file_or_under_one_or_unwritable_is_one_error_line(tmp_path, read_only_dir):
    f = tmp_path / "file"
    f.write_text("x")
    for results_dir, says in (
        (f, "it is a file"),
        (f / "sub", "on its path is a file"),
        ("/proc/x", "this process can write"),
        (read_only_dir, "Read-only file system"),
        (read_only_dir / "a", "Read-only file system"),
    ):
        line = reject([f"results_dir={results_dir}", *VALID], cwd=REPO)
        assert line.startswith(f"error: results_dir='{results_dir}': must be a folder") and says in line, line
    assert f.read_text() == "x"
