"""Machine-fit defaults (threads, runs in parallel, dtype), their record in each run, and the speed changes that must
keep numbers: fp32 steps bit for bit as a plain PyTorch step, bf16 attention on CPU close to fp32's."""

import json
import os
import shutil

import pytest
import torch
import torch.nn.functional as F

from scaling.config.schema import Config, ConfigError, plan, run_id, validate
from scaling.core import records
from scaling.core.records import RunSummary
from scaling.data import Dataset
from scaling.launch import machine
from scaling.model.gpt import _causal_attention_cpu_bf16
from scaling.train.lifecycle import train
from scaling.train.loop import Compute, LoopSpec, optimizer_step
from scaling.train.state import FOREACH_MAX_PARAMS, new_state
from support import run_cli, tiny_cfg

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
    old = {
        k: v
        for k, v in RunSummary(run_id="r", sweep="s", size="5e3").to_dict().items()
        if k not in ("threads", "cpu_cores", "cpu_isa", "runs_in_parallel", "compile")
    }
    s = RunSummary.from_dict(old)
    assert (s.threads, s.cpu_isa, s.runs_in_parallel, s.compile) == (0, "", 0, None)


@pytest.mark.parametrize("micro_batch_size", [4, None])
def test_an_fp32_step_is_bit_for_bit_a_plain_pytorch_step(tmp_path, default_corpus, micro_batch_size):
    """The step's speed-ups (one loss read-back per step, foreach clipping, foreach AdamW for small models, no loss
    division with one micro-batch) change no number in fp32: the plain side is torch's per-tensor AdamW and loop."""
    cfg = tiny_cfg(tmp_path, dtype="fp32", batch_size=8, micro_batch_size=micro_batch_size, lr=3e-3)
    p, t = plan(cfg), cfg.train
    n_micro = 8 // (micro_batch_size or 8)
    ds = Dataset.load(default_corpus, verified=True)
    spec, compute = LoopSpec.of(t, p), Compute(torch.device("cpu"), bf16=False)
    a, b = (
        new_state(
            p.shape,
            compute.device,
            seed=0,
            lr=3e-3,
            weight_decay=t.weight_decay,
            betas=(t.beta1, t.beta2),
            started="",
            fused=compute.fused_optimizer,
        )
        for _ in range(2)
    )
    assert p.shape.params_total() < FOREACH_MAX_PARAMS and a.optimizer.defaults["foreach"] is True
    decay = [q for q in b.model.parameters() if q.dim() >= 2]
    no_decay = [q for q in b.model.parameters() if q.dim() < 2]
    plain = torch.optim.AdamW(
        [{"params": decay, "weight_decay": t.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=3e-3,
        betas=(t.beta1, t.beta2),
    )
    for step in range(3):
        loss_a, _ = optimizer_step(a.model, a.model, a.optimizer, ds, spec, step, compute)
        total = 0.0
        for g in plain.param_groups:
            g["lr"] = p.schedule.lr_at(step)
        for k in range(n_micro):
            x, y = ds.train_batch(t.seed, step, k, 8 // n_micro, p.shape.seq_len)
            _, loss = b.model(torch.from_numpy(x), torch.from_numpy(y))
            (loss / n_micro).backward()
            total += loss.item()
        torch.nn.utils.clip_grad_norm_(b.model.parameters(), t.grad_clip, foreach=False)
        plain.step()
        plain.zero_grad(set_to_none=True)
        assert loss_a == total / n_micro
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


_STEP_FAULTS = """
import resource, torch
from scaling.launch import machine
from scaling.core.family import shape_for
from scaling.train.state import new_state
applied = machine.keep_freed_memory()
torch.set_num_threads(1)
shape = shape_for("6e3", vocab_size=512, seq_len=128, aspect=32.0, head_size=8, mlp_ratio=4, tie_embeddings=True,
                  min_layers=2)
state = new_state(shape, torch.device("cpu"), seed=0, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), started="")
x = torch.randint(0, 512, (16, 129))
def step():
    _, loss = state.model(x[:, :-1], x[:, 1:])
    loss.backward()
    state.optimizer.step()
    state.optimizer.zero_grad(set_to_none=True)
for _ in range(10):
    step()
r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(applied, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / 20)
"""


def test_a_run_process_keeps_freed_memory_so_each_step_does_not_fault_its_activations_in_again():
    """A step of the CPU preset's smallest model (its 2048 x 512 logits and their gradients are 4 MB each) in a fresh
    process set up as a run's is: its freed activations are reused, not handed back to the kernel and faulted in again
    page by page (glibc's defaults cost 1,500-3,200 faults a step here, a 4 MB block alone is 1,000)."""
    r = run_cli(["-c", _STEP_FAULTS])
    assert r.returncode == 0, r.stderr[-2000:]
    on = r.stdout.split()
    assert on[0] == "True" and float(on[1]) < 200
    r = run_cli(["-c", _STEP_FAULTS], env={"SCALING_KEEP_FREED_MEMORY": "0"})
    assert r.returncode == 0, r.stderr[-2000:]
    off = r.stdout.split()
    assert off[0] == "False"  # the switch is honoured (its fault count is glibc's luck, so it is not asserted)


def test_cpu_bf16_attention_is_causal_attention_to_bf16_precision():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 16, 8, generator=g) for _ in range(3))
    want = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    got = _causal_attention_cpu_bf16(q.bfloat16(), k.bfloat16(), v.bfloat16()).float()
    assert torch.allclose(got, want, atol=0.05, rtol=0.02)
    # causal: the first position sees only itself
    assert torch.allclose(got[:, :, 0], v.bfloat16().float()[:, :, 0], atol=1e-2)


def test_automatic_evaluation_costs_a_small_share_of_training_at_every_sweep_size():
    from scaling.train.loop import EVAL_TOKEN_SHARE, auto_eval_interval

    for steps in (60, 372, 1551, 5887):  # a test run, then the CPU preset's shortest, a middle and its longest runs
        every = auto_eval_interval(steps, 2048, 16384)
        n = steps // every
        assert 2 <= n <= 16
        assert n * 16384 <= max(EVAL_TOKEN_SHARE * steps * 2048, 2 * 16384)
    assert steps // auto_eval_interval(5887, 2048, 16384) >= 15  # long runs keep their curves


def test_torchs_isa_switches_cap_the_detected_isa_at_the_lowest_of_them():
    assert machine.isa_cap({}) == (None, "")
    assert machine.isa_cap({"ATEN_CPU_CAPABILITY": "avx2"}) == ("avx2", "ATEN_CPU_CAPABILITY=avx2")
    assert machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == ("avx512f", "ONEDNN_MAX_CPU_ISA=AVX512_CORE")
    assert machine.isa_cap({"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX2"})[0] == "avx2"
    assert machine.isa_cap({"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"})[0] == "baseline"
    assert machine.isa_cap({"ONEDNN_MAX_CPU_ISA": "ALL", "ATEN_CPU_CAPABILITY": "avx512"}) == (None, "")


_EMULATED = (
    "import json, torch\n"
    "from scaling import machine\n"
    "from scaling.config.schema import TrainConfig\n"
    "from scaling.train.loop import compute_for\n"
    "m = machine.detect()\n"
    "print(json.dumps({'isa': m.isa, 'capped_by': m.capped_by, 'dtype': m.cpu_dtype(),\n"
    "                  'bf16': compute_for(TrainConfig(device='cpu')).bf16,\n"
    "                  'torch': torch.backends.cpu.get_cpu_capability()}))\n"
)


@pytest.mark.skipif("avx2" not in open("/proc/cpuinfo").read(), reason="emulates AVX2 on a CPU that has it")
def test_a_newer_cpu_told_to_compute_like_an_avx2_one_defaults_to_fp32_as_one_would():
    """ATEN_CPU_CAPABILITY=avx2 and ONEDNN_MAX_CPU_ISA=AVX2 make torch run AVX2 kernels only (bf16 matmuls are then
    emulated); the machine's ISA, and the dtype it picks, follow what torch will run."""
    r = run_cli(["-c", _EMULATED], env={"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got == {"isa": "avx2", "capped_by": got["capped_by"], "dtype": "fp32", "bf16": False, "torch": "AVX2"}
    if machine.detect().isa != "avx2":  # a newer CPU: the cap is what made it avx2, and it says so
        assert got["capped_by"] in ("ATEN_CPU_CAPABILITY=avx2", "ONEDNN_MAX_CPU_ISA=AVX2")


def test_compile_auto_is_on_on_cuda_and_on_cpu_only_where_it_was_measured_to_pay(tmp_path):
    from scaling.config.schema import TrainConfig
    from scaling.train.loop import compile_for

    def auto(device: str, bf16: bool, size: str, steps: int, compile="auto") -> bool:
        cfg = tiny_cfg(tmp_path)
        cfg.model.size, cfg.model.seq_len, cfg.model.head_size = size, 128, 8
        cfg.train.tokens, cfg.train.batch_size = steps * 2048, 16
        return compile_for(TrainConfig(compile=compile), Compute(torch.device(device), bf16), plan(cfg))

    for size in ("6e3", "1e5", "1e6", "5e6"):  # the bench's sizes
        assert auto("cuda", False, size, 500) and auto("cuda", True, size, 500)
        assert not auto("cpu", False, size, 20_000)  # fp32: no faster compiled
    assert not auto("cpu", True, "1e5", 20_000)  # bf16 below 1M: pays back only after ~9-21k steps
    assert not auto("cpu", True, "1e6", 1_000)  # too short to pay back its compile time
    assert auto("cpu", True, "1e6", 5_000) == (shutil.which("g++") is not None)
    for choice, want in (
        ("true", True),
        ("on", True),
        ("True", True),
        (True, True),
        ("false", False),
        ("off", False),
        ("False", False),
        (False, False),
    ):
        assert auto("cpu" if want else "cuda", False, "6e3", 100, compile=choice) is want
    with pytest.raises(ConfigError, match=r"train.compile='maybe': must be 'auto'"):
        validate(tiny_cfg(tmp_path, compile="maybe"))


def test_a_config_written_when_compile_was_a_bool_still_composes_and_keeps_its_run_id(tmp_path):
    """The GPU preset and older config.yaml files say `compile: false`; Hydra hands that to the string field as
    'False'. train.compile is not part of a run's identity, so the default's change renames no run."""
    from omegaconf import OmegaConf

    for old in (False, True):
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), {"train": {"compile": old}}))
        assert cfg.train.compile == str(old)
    cfg = Config()
    cfg.model.size, cfg.train.budget = "6e3", 1e12
    assert run_id(cfg) == "N6e3_C1e12_f07087dc"  # its id before train.compile had an 'auto'
    for choice in ("auto", "true", "false"):
        cfg.train.compile = choice
        assert run_id(cfg) == "N6e3_C1e12_f07087dc"


def test_a_run_records_whether_it_compiled(tmp_path, default_corpus):
    s = train(tiny_cfg(tmp_path, dtype="fp32"))
    assert s.compile is False  # auto, on CPU
    assert records.read_summary(tmp_path / "t" / s.run_id).compile is False


@pytest.mark.slow
def test_a_cpu_run_asked_to_compile_trains_compiled_and_says_so(tmp_path, default_corpus):
    eager = train(tiny_cfg(tmp_path, dtype="fp32", compile="false"))
    compiled = train(tiny_cfg(tmp_path / "c", dtype="fp32", compile="true"))
    assert (eager.compile, compiled.compile) == (False, True)
    assert compiled.run_id == eager.run_id  # the same run, however it was computed
    assert abs(compiled.final_val_loss - eager.final_val_loss) < 0.02  # the same model, to float rounding
