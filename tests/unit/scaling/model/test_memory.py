"""Resource limits: a run's memory is estimated before it starts (scaling/model/memory.py), a run that cannot fit the
device is refused with a fix that fits, and the estimate bounds what a real run uses."""

import json
import re

import pytest
import torch

from scaling.config.schema import ConfigError
from scaling.model import memory
from scaling.train.lifecycle import resolve, train
from support import REPO, run_cli, tiny_cfg

CPU = torch.device("cpu")


def test_a_run_too_big_for_this_machine_is_refused_naming_a_micro_batch_that_fits(tmp_path):
    avail = memory.available_bytes(CPU)
    assert avail and avail > 0
    cfg = tiny_cfg(tmp_path)
    cfg.model.seq_len, cfg.train.eval_tokens, cfg.train.device = 2048, 2048, "cpu"
    cfg.train.dtype = "fp32"  # the estimates below are fp32's (4 bytes per activation); auto may pick bf16 here
    b = 1
    while memory.estimate(resolve(_with(cfg, b)).plan.shape, b).needed_bytes <= avail:
        b *= 2
    b *= 4  # well past the limit, so the free memory moving a little while the test runs changes nothing
    cfg = _with(cfg, b)
    sh = resolve(_with(cfg, b)).plan.shape
    with pytest.raises(ConfigError) as e:
        train(cfg)
    msg = str(e.value)
    print(f"\n[memory] {msg}")
    assert msg.startswith(f"train.micro_batch_size=None ({b} sequences of 2048 tokens per forward pass)")
    k = int(
        re.search(
            r"set train.micro_batch_size=(\d+) \(gradient accumulation keeps train.batch_size=(\d+)\)", msg
        ).group(1)
    )
    assert b % k == 0 and k < b
    # the largest micro-batch that fits (free memory may move by a few percent while the test runs)
    assert memory.estimate(sh, k).needed_bytes <= 1.1 * avail and memory.estimate(sh, 2 * k).needed_bytes > 0.9 * avail
    assert "GiB available" in msg and "another device" in msg and "scaling/model/memory.py" in msg
    assert not (tmp_path / "t").exists()  # refused before anything is written


def test_a_model_that_cannot_fit_even_one_sequence_says_so(tmp_path):
    cfg = tiny_cfg(tmp_path)
    cfg.model.seq_len, cfg.train.eval_tokens, cfg.train.batch_size, cfg.train.device = 65536, 65536, 1, "cpu"
    cfg.train.tokens = 65536
    with pytest.raises(ConfigError, match=r"even one sequence per micro-batch does not fit: use a device with more"):
        train(cfg)
    assert not (tmp_path / "t").exists()


def _with(cfg, batch_size):
    import copy

    c = copy.deepcopy(cfg)
    c.train.batch_size, c.train.tokens = batch_size, float(batch_size * c.model.seq_len)
    return c


def test_the_formula_counts_state_and_activations():
    from scaling.core.family import Shape

    s = Shape(n_layer=2, d_model=16, n_head=2, d_ff=64, vocab_size=100, seq_len=8, tie_embeddings=True)
    e = memory.estimate(s, 3)
    assert e.state_bytes == 16 * s.params_total()
    per_layer = 3 * 8 * (10 * 16 + 2 * 64) + 2 * 3 * 2 * 8 * 8
    assert e.activation_bytes == 4 * (2 * per_layer + 3 * 3 * 8 * 16) + 12 * 3 * 8 * 100
    assert memory.estimate(s, 6).activation_bytes == 2 * e.activation_bytes  # linear in the micro-batch


@pytest.mark.slow
def test_the_estimate_bounds_a_real_runs_peak_memory(tmp_path, default_corpus):
    # a child process, so the peak resident set (VmHWM) is this run's alone
    code = f"""
import json, sys
sys.path.insert(0, {str(REPO / "tests")!r})
def rss(key):
    return next(int(l.split()[1]) * 1024 for l in open('/proc/self/status') if l.startswith(key))
import torch
from scaling.data import Dataset, prepare
from scaling.train.lifecycle import resolve, run
from scaling.model import memory
from scaling.core import records
from support import tiny_cfg
torch.set_num_threads(1)
cfg = tiny_cfg({str(tmp_path)!r}, tokens=3 * 64 * 128, batch_size=64, eval_tokens=4096, final_eval_tokens=4096)
cfg.model.size, cfg.model.seq_len = "3e5", 128
cfg.train.dtype = "fp32"  # the estimate compared below is fp32's
spec = resolve(cfg)
ds = Dataset.load(prepare("shakespeare", vocab_size=512), verified=True)
ds.train_batch(0, 0, 0, 64, 128); list(ds.val_batches(4096, 64, 128))
base = rss("VmRSS:")
s = run(spec)
print(json.dumps(dict(measured=rss("VmHWM:") - base, estimate=memory.estimate(spec.plan.shape, 64).total_bytes,
                      recorded=s.memory_estimate_bytes)))
"""
    if not __import__("os").path.exists("/proc/self/status"):
        pytest.skip("needs /proc (Linux) to read the peak resident set")
    r = run_cli(["-c", code], timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print(
        f"\n[memory] N=3e5 seq 128 micro-batch 64: estimate {out['estimate'] / 2**20:.0f} MiB, measured peak "
        f"{out['measured'] / 2**20:.0f} MiB above the loaded process"
    )
    assert out["recorded"] == out["estimate"]
    assert out["measured"] <= memory.SAFETY * out["estimate"] + memory.OVERHEAD_BYTES  # what the check relies on
    assert out["estimate"] <= 3 * out["measured"]  # and not wildly pessimistic
