"""Machine-fit defaults (threads, runs in parallel, dtype), their record in each run, and the speed changes that must
keep numbers: fp32 steps bit for bit as a plain PyTorch step, bf16 attention on CPU close to fp32's."""
import os

import torch
import torch.nn.functional as F

from scaling import machine, records
from scaling.config import plan
from scaling.data import Dataset
from scaling.loop import Compute, LoopSpec, optimizer_step
from scaling.model import _causal_attention_cpu_bf16
from scaling.records import RunSummary
from scaling.run import train
from scaling.state import new_state
from test_train import tiny_cfg

GiB = 2**30


def test_the_machine_is_this_hosts_cpu():
    m = machine.detect()
    assert m.cores == len(os.sched_getaffinity(0))
    flags = open("/proc/cpuinfo").read()
    assert m.native_bf16 == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert m.isa in (*machine.ISA_ORDER, "baseline")
    assert m.memory_bytes is None or m.memory_bytes > 0


def test_small_models_run_one_thread_each_side_by_side_and_large_ones_take_every_core():
    m = machine.Machine(cores=8, flags=frozenset({"avx2", "avx512f"}), memory_bytes=64 * GiB)
    assert (m.threads_per_run(6_300), m.runs_in_parallel(6_300)) == (1, 8)
    assert (m.threads_per_run(5_000_000), m.runs_in_parallel(5_000_000)) == (8, 1)
    assert machine.Machine(8, frozenset(), memory_bytes=3 * GiB).runs_in_parallel(6_300) == 3  # memory bounds it
    assert (m.isa, m.native_bf16, m.cpu_dtype()) == ("avx512f", False, "fp32")
    newer = machine.Machine(2, frozenset({"avx2", "avx512f", "avx512_bf16"}), None)
    assert (newer.isa, newer.cpu_dtype()) == ("avx512_bf16", "bf16")


def test_a_run_records_its_threads_dtype_and_cpu_and_each_can_be_overridden(tmp_path, default_corpus):
    m = machine.detect()
    auto = train(tiny_cfg(tmp_path, threads=0))
    assert auto.threads == m.threads_per_run(auto.params_non_embedding)
    assert auto.dtype == ("bf16" if m.native_bf16 else "fp32")
    assert (auto.cpu_isa, auto.cpu_cores) == (m.isa, m.cores)
    assert auto.runs_in_parallel == m.runs_in_parallel(auto.params_non_embedding)
    pinned = train(tiny_cfg(tmp_path, threads=2, dtype="fp32"))
    assert (pinned.threads, pinned.dtype) == (2, "fp32")
    assert records.read_summary(tmp_path / "t" / pinned.run_id).dtype == "fp32"


def test_a_summary_written_before_the_machine_fields_still_loads():
    old = {k: v for k, v in RunSummary(run_id="r", sweep="s", size="5e3").to_dict().items()
           if k not in ("threads", "cpu_cores", "cpu_isa", "runs_in_parallel")}
    s = RunSummary.from_dict(old)
    assert (s.threads, s.cpu_isa, s.runs_in_parallel) == (0, "", 0)


def test_an_fp32_step_is_bit_for_bit_a_plain_pytorch_step(tmp_path, default_corpus):
    """The step's speed-ups (one loss read-back per step, foreach clipping) change no number in fp32."""
    cfg = tiny_cfg(tmp_path, dtype="fp32", batch_size=8, micro_batch_size=4, lr=3e-3)
    p, t = plan(cfg), cfg.train
    ds = Dataset.load(default_corpus, verified=True)
    spec, compute = LoopSpec.of(t, p), Compute(torch.device("cpu"), bf16=False)
    a, b = (new_state(p.shape, compute.device, seed=0, lr=3e-3, weight_decay=t.weight_decay, betas=(t.beta1, t.beta2),
                      started="", fused=compute.fused_optimizer) for _ in range(2))
    for step in range(3):
        loss_a, _ = optimizer_step(a.model, a.model, a.optimizer, ds, spec, step, compute)
        total = 0.0
        for g in b.optimizer.param_groups:
            g["lr"] = p.schedule.lr_at(step)
        for k in range(2):
            x, y = ds.train_batch(t.seed, step, k, 4, p.shape.seq_len)
            _, loss = b.model(torch.from_numpy(x), torch.from_numpy(y))
            (loss / 2).backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(b.model.parameters(), t.grad_clip, foreach=False)
        b.optimizer.step()
        b.optimizer.zero_grad(set_to_none=True)
        assert loss_a == total / 2
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_cpu_bf16_attention_is_causal_attention_to_bf16_precision():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 16, 8, generator=g) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = _causal_attention_cpu_bf16(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)
    # causal: the first position sees only itself
    assert torch.allclose(got[:, :, 0], v.bfloat16().float()[:, :, 0], atol=1e-2)


def test_automatic_evaluation_costs_a_small_share_of_training_at_every_sweep_size():
    from scaling.loop import EVAL_TOKEN_SHARE, auto_eval_interval

    for steps in (60, 372, 1551, 5887):  # a test run, then the CPU preset's shortest, a middle and its longest runs
        every = auto_eval_interval(steps, 2048, 16384)
        n = steps // every
        assert 2 <= n <= 16
        assert n * 16384 <= max(EVAL_TOKEN_SHARE * steps * 2048, 2 * 16384)
    assert steps // auto_eval_interval(5887, 2048, 16384) >= 15  # long runs keep their curves
