"""Data parallelism with real processes: `torchrun --nproc_per_node 2` (gloo on CPU) trains the same run as one
process, sharding the deterministic global batch by micro-batches or by rows, with matching loss curves; a halted
2-process run resumes from rank 0's checkpoint; a batch the ranks cannot share is a config error."""

import numpy as np
import pytest

from scaling.config.schema import ConfigError
from scaling.core import records
from scaling.launch.distributed import World, check_shardable, shard
from support import finish_cli, start_cli

TORCHRUN = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
RUN = [
    "model.size=3e3",
    "model.head_size=8",
    "model.seq_len=32",
    "train.batch_size=8",
    "train.tokens=2e4",
    "train.eval_tokens=1024",
    "train.final_eval_tokens=4096",
    "log.progress=false",
    "train.threads=1",
    "sweep=d",
    "train.dtype=fp32",
]  # the tolerances below are fp32 figures (bf16 is the default on CPUs with native bf16)


def launch(args, results, torchrun=False):
    """A run (torchrun's ranks are never inherited from this shell: support.NOT_INHERITED)."""
    cmd = [*(TORCHRUN if torchrun else []), "-m", "scaling.train", *RUN, *args, f"results_dir={results}"]
    return start_cli(cmd, env={"OMP_NUM_THREADS": "1"})


def finish(p):
    err = finish_cli(p, timeout=600).stderr
    assert p.returncode == 0, err[-4000:]
    return err


def curves(results):
    (run_dir,) = (results / "d").glob("N*")
    return run_dir, records.read_metrics(run_dir)


def test_a_batch_is_shared_by_micro_batches_or_rows_each_exactly_once():
    for world, n_micro, micro in [(World(0, 2), 4, 8), (World(0, 2), 1, 8), (World(0, 4), 2, 4)]:
        seen = sorted(
            (k, r)
            for rank in range(world.size)
            for k, rows in shard(World(rank, world.size), n_micro, micro)
            for r in np.arange(micro)[rows]
        )
        assert seen == [(k, r) for k in range(n_micro) for r in range(micro)]
    with pytest.raises(ConfigError, match=r"train.batch_size=9 .*\(3 micro-batches\).* multiple of 2"):
        check_shardable(World(0, 2), 9, 3)


@pytest.mark.slow
def test_two_torchrun_processes_match_one_process_and_resume_from_rank_0s_checkpoint(tmp_path, default_corpus):
    # sharded by micro-batches (2 micro-batches of 4, one per rank); halted after step 30, then launched again
    args = ["train.micro_batch_size=4"]
    one = launch(args, tmp_path / "one")
    two = launch([*args, "train.halt_after_step=30"], tmp_path / "two", torchrun=True)
    finish(one)
    finish(two)
    run_dir, halted = curves(tmp_path / "two")
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_RUNNING and len(halted) == 30 and (run_dir / records.CHECKPOINT_FILE).exists()
    err = finish(launch(args, tmp_path / "two", torchrun=True))
    assert err.count("resuming at step 30") == 2  # both ranks restored rank 0's checkpoint
    _, a = curves(tmp_path / "one")
    run_dir, b = curves(tmp_path / "two")
    s = records.read_summary(run_dir)
    assert s.status == records.STATUS_COMPLETE and s.resumes == 1 and len(b) == len(a) == s.steps
    diff = float(np.max(np.abs(a["train_loss"] - b["train_loss"])))
    vdiff = float(np.nanmax(np.abs(a["val_loss"] - b["val_loss"])))
    assert diff < 1e-5 and vdiff < 1e-5
    print(
        f"\n[ddp] 2 processes (micro-batch shards, resumed at step 30) vs 1: max |train loss diff| {diff:.3g}, "
        f"max |val loss diff| {vdiff:.3g} over {len(a)} steps"
    )


@pytest.mark.slow
def test_two_torchrun_processes_sharing_rows_of_one_micro_batch_match_one_process(tmp_path, default_corpus):
    one, two = launch([], tmp_path / "one"), launch([], tmp_path / "two", torchrun=True)
    finish(one)
    finish(two)
    (_, a), (_, b) = curves(tmp_path / "one"), curves(tmp_path / "two")
    diff = float(np.max(np.abs(a["train_loss"] - b["train_loss"])))
    vdiff = float(np.nanmax(np.abs(a["val_loss"] - b["val_loss"])))
    assert diff < 1e-4 and vdiff < 1e-4  # float32 sums in another order, over ~80 AdamW steps
    print(f"\n[ddp] 2 processes (row shards) vs 1: max |train loss diff| {diff:.3g}, max |val loss diff| {vdiff:.3g}")
