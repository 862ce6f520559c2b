"""Placement: how many runs of a sweep share a device, from each run's memory estimate, and which slot (device) each
concurrent job holds. The CLI composes a real sweep preset and answers for this machine."""

import json
import os

import pytest

from scaling.launch.placement import MAX_RUNS_PER_GPU, RunNeed, runs_per_device, slot
from scaling.model.memory import GiB
from support import REPO, run_cli


def need(params, gib, threads=1):
    return RunNeed(f"N{params}", params, int(gib * GiB), threads)


def test_small_runs_share_a_gpu_up_to_its_memory_and_a_cap_and_a_large_run_has_one_to_itself():
    h200 = 141 * GiB
    small = [need(2e5, 0.6), need(5e6, 0.9), need(2e7, 1.5)]
    assert runs_per_device(small, device_type="cuda", device_bytes=h200) == MAX_RUNS_PER_GPU
    assert runs_per_device(small, device_type="cuda", device_bytes=4 * GiB) == 2  # memory: 4 // 1.5
    assert runs_per_device(small + [need(2.1e7, 3)], device_type="cuda", device_bytes=h200) == 1
    assert runs_per_device([need(1e9, 200)], device_type="cuda", device_bytes=h200) == 1  # never 0


def test_on_cpu_runs_are_placed_one_per_train_threads_cores_as_memory_allows():
    assert runs_per_device([need(1e5, 0.5)], device_type="cpu", device_bytes=16 * GiB, cores=2) == 2
    assert runs_per_device([need(1e5, 0.5, threads=2)], device_type="cpu", device_bytes=16 * GiB, cores=8) == 4
    assert runs_per_device([need(1e5, 3)], device_type="cpu", device_bytes=7 * GiB, cores=16) == 2


def test_concurrent_jobs_hold_distinct_slots_and_a_freed_slot_is_taken_again(tmp_path):
    with slot(tmp_path, 3) as a, slot(tmp_path, 3) as b:
        with slot(tmp_path, 3) as c:
            assert (a, b, c) == (0, 1, 2)
        with slot(tmp_path, 3) as d:
            assert d == 2
    with slot(tmp_path, 3) as e:
        assert e == 0


def test_the_cli_gives_n_jobs_for_a_real_sweep_preset_on_this_machine(default_corpus):
    r = run_cli(["-m", "scaling.launch.placement", "-cd", str(REPO / "sweeps"), "-cn", "isoflop_tiny"], cwd=REPO)
    assert r.returncode == 0, r.stderr
    # 12 runs of one thread each, a few hundred MiB: one per core here
    assert int(r.stdout.strip()) == min(12, os.cpu_count())
    assert "12 runs on 1 cpu device(s)" in r.stderr and "run(s) per device" in r.stderr


@pytest.mark.slow
def test_the_gpu_check_runs_its_whole_code_path_in_tiny_mode_on_cpu(tmp_path, default_corpus):
    out = tmp_path / "gpu_check"
    r = run_cli(
        ["-m", "scaling.bench.gpu_check", "--tiny", "--no-ddp", "--out", str(out)],
        cwd=REPO,
        env={"OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert [x["size"] for x in report["runs"]] == ["5000.0", "10000.0"]
    assert all(x["tokens_per_s"] > 0 and 0 < x["mfu"] < 1 for x in report["runs"])
    assert report["concurrent"]["jobs"] == min(2, os.cpu_count())
    for line in (
        "measured fp32 matmul",
        "aggregate, one run at a time",
        "runs at once",
        "torchrun: skipped",
        "wall time",
    ):
        assert line in r.stdout, r.stdout
    print("\n" + r.stdout)
