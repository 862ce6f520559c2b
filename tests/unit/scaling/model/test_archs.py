"""Architectures as a registry (scaling/core/archs.py): the default GPT unchanged bit for bit, the Llama-style block's
exact counts, both architectures' FLOP terms against torch's flop counter, and a user's class refused in one line."""

import hashlib

import pytest
import torch
import torch.nn as nn

from scaling.bench.flop_count import NOT_COUNTED, compare
from scaling.config.errors import ConfigError
from scaling.config.schema import Config, plan, run_id, validate
from scaling.core import archs
from scaling.core.family import Shape, shape_for
from scaling.core.flops import flops_per_token
from scaling.model.gpt import GPT
from scaling.model.llama import Llama
from scaling.model.registry import build


def test_the_default_gpt_is_unchanged_bit_for_bit():
    # recorded at f3ca200, before architectures became a registry: shape, initial weights, initial loss, FLOPs
    s = shape_for("3e4", vocab_size=512, seq_len=64)
    assert s == Shape(n_layer=2, d_model=32, n_head=2, d_ff=128, vocab_size=512, seq_len=64, tie_embeddings=True)
    torch.manual_seed(0)
    m = build(s)
    assert type(m) is GPT
    h = hashlib.sha256()
    for name, p in m.named_parameters():
        h.update(name.encode())
        h.update(p.detach().numpy().tobytes())
    assert h.hexdigest() == "002c5f04a0fa6b95ead6a7c612439c8eb7611afa28eb4da93ec71452ea27fd1b"
    x = torch.randint(0, 512, (2, 65), generator=torch.Generator().manual_seed(1))
    assert m(x[:, :-1], x[:, 1:])[1].item() == 6.246062278747559
    assert flops_per_token(s) == {
        "6n": 149376.0,
        "6n_attn": 173952.0,
        "chinchilla": 395520.0,
        "chinchilla_noembed": 198912.0,
        "deepseek_m": 196608.0,
    }


def test_default_configs_keep_their_run_ids():
    cfg = Config()
    cfg.train.budget = 1e12
    before = run_id(cfg)
    cfg.model.arch = "llama"
    assert run_id(cfg) != before  # another architecture is another run
    cfg.model.arch = "gpt"
    assert run_id(cfg) == before == "Ntiny_C1e12_3ff176d0"  # the id of this config before model.arch existed


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("size", ["5e3", "3e4", "1e5", "1e6"])
def test_llama_parameter_counts_equal_the_modules_own(size, tie):
    s = shape_for(size, vocab_size=300, seq_len=48, arch="llama", tie_embeddings=tie, ffn_multiple=16)
    m = Llama(s)
    m.check_param_count()
    assert sum(p.numel() for p in m.parameters()) == s.params_total()
    assert s.params_embedding() == 300 * s.d_model * (1 if tie else 2)  # no position embedding: rotary


def test_llama_swiglu_width_is_eight_thirds_d_rounded_up_to_the_multiple():
    a = archs.get("llama")
    assert a.d_ff(96, 4, 32) == 256  # 8/3 * 96 = 256 exactly
    assert a.d_ff(100, 4, 32) == 288  # int(266.67) = 266 -> 288
    assert a.d_ff(100, 4, 1) == 266
    assert a.d_ff(4096, 4, 256) == 11008  # Llama 7B (meta-llama/llama model.py FeedForward, multiple_of=256)
    g, ll = shape_for("1e6", vocab_size=512, seq_len=64), shape_for("1e6", vocab_size=512, seq_len=64, arch="llama")
    assert (g.n_layer, g.d_model) == (ll.n_layer, ll.d_model)  # same depth and width at a size


def test_llama_flops_per_token_by_hand():
    s = Shape(n_layer=2, d_model=32, n_head=2, d_ff=96, vocab_size=512, seq_len=64, arch="llama")
    L, d, a, f, V, T, h = 2, 32, 32, 96, 512, 64, 2
    n = L * (2 * d + 4 * d * a + 3 * d * f) + d
    fwd_layer = 6 * T * d * a + 4 * T * T * a + 3 * h * T * T + 2 * T * a * d + 6 * T * d * f + 6 * T * a
    got = flops_per_token(s)
    assert s.params_non_embedding() == n
    assert got["6n"] == 6 * n and got["6n_attn"] == 6 * n + 6 * L * T * a
    assert got["chinchilla_noembed"] == 3 * L * fwd_layer / T
    assert got["chinchilla"] == 3 * (L * fwd_layer + 4 * T * V * d) / T
    assert got["deepseek_m"] == 6 * L * (4 * d * a + 3 * d * f) + 12 * L * a * T


def test_llama_is_causal_and_position_aware():
    s = shape_for("3e4", vocab_size=64, seq_len=16, arch="llama")
    torch.manual_seed(0)
    m = Llama(s).eval()
    x = torch.randint(0, 64, (1, 16))
    y = x.clone()
    y[0, 10:] = (y[0, 10:] + 1) % 64
    lx, ly = m(x)[0], m(y)[0]
    assert torch.equal(lx[0, :10], ly[0, :10])  # the future does not leak back
    # without positions the last token's attention over {a, b, c} ignores their order; rotary positions see it
    abc, bac = m(torch.tensor([[1, 2, 3]]))[0][0, -1], m(torch.tensor([[2, 1, 3]]))[0][0, -1]
    assert not torch.allclose(abc, bac)


@pytest.mark.parametrize("arch", ["gpt", "llama"])
def test_flop_terms_match_torchs_flop_counter_on_a_real_forward_and_backward(arch):
    s = shape_for("3e4", vocab_size=256, seq_len=32, arch=arch, tie_embeddings=False)
    rows = {r.term: r for r in compare(s)}
    for term in ("qkv + project", "logits + reduce", "dense", "head"):  # every matmul, exactly
        assert rows[term].counted == rows[term].analytic > 0, term
    not_counted = [t for t in NOT_COUNTED if t in rows]
    assert not_counted == (["embeddings", "softmax"] + (["rotary"] if arch == "llama" else []))
    assert all(rows[t].counted == 0 for t in not_counted)
    assert rows["total"].counted == rows["total"].analytic - sum(rows[t].analytic for t in not_counted)
    assert rows["total"].analytic == 3 * s.seq_len * flops_per_token(s)["chinchilla"] / 3


def _cfg(arch: str) -> Config:
    cfg = Config()
    cfg.model.size, cfg.model.seq_len, cfg.model.arch = "5e3", 32, arch
    cfg.train.batch_size, cfg.train.tokens = 8, 8 * 32 * 4
    return cfg


class NotAModule:
    @staticmethod
    def param_counts(shape):
        return {"total": 1, "embedding": 0}


class NoCounts(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.w = nn.Linear(4, 4)


class WrongCount(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.emb = nn.Embedding(shape.vocab_size, shape.d_model)

    @staticmethod
    def param_counts(shape):
        return {"total": shape.vocab_size * shape.d_model + 1, "embedding": shape.vocab_size * shape.d_model}

    def forward(self, idx, targets=None):
        return self.emb(idx), None


class OwnFlops(WrongCount):
    """Gives its own counts, FLOPs included: the harness takes them as given (flops_source analytic)."""

    @staticmethod
    def param_counts(shape):
        return {"total": shape.vocab_size * shape.d_model, "embedding": shape.vocab_size * shape.d_model - 1}

    @staticmethod
    def flops_per_token(shape):
        return {
            c: 1000.0 + i for i, c in enumerate(("6n", "6n_attn", "chinchilla", "chinchilla_noembed", "deepseek_m"))
        }


class BadFlops(OwnFlops):
    @staticmethod
    def flops_per_token(shape):
        return {"6n": -1.0}


def test_a_users_own_flop_counts_are_taken_as_given():
    p = plan(_cfg(f"{__name__}:OwnFlops"))
    assert p.flops_per_token["chinchilla"] == 1002.0 and p.shape.params_non_embedding() == 1
    assert archs.get(f"{__name__}:OwnFlops").source == "analytic"


@pytest.mark.parametrize(
    "arch,match",
    [
        ("mamba", "model.arch='mamba': must be one of ('gpt', 'llama') or <module>:<Class>"),
        ("no_such_module_xyz:Net", "module 'no_such_module_xyz' not found"),
        (f"{__name__}:Missing", "has no class 'Missing'"),
        (f"{__name__}:NotAModule", "NotAModule is not a torch.nn.Module subclass"),
        (f"{__name__}:NoCounts", "does not follow the protocol (scaling/model/user.py): missing param_counts"),
        (f"{__name__}:WrongCount", "WrongCount.param_counts gives total=8,193, its modules hold 8,192 parameters"),
        (f"{__name__}:BadFlops", "flops_per_token must return a positive number for each of"),
    ],
)
def test_a_bad_model_arch_is_refused_in_one_line_before_any_compute(arch, match):
    with pytest.raises(ConfigError) as e:
        validate(_cfg(arch))
    assert match in str(e.value) and "\n" not in str(e.value)


def test_llama_needs_an_even_head_size():
    cfg = _cfg("llama")
    cfg.model.head_size = 7
    with pytest.raises(ConfigError, match="model.head_size=7: must be an even integer for rotary positions"):
        validate(cfg)
    cfg.model.head_size = 8
    validate(cfg)
    assert plan(cfg).shape.arch == "llama"


def test_flops_measured_for_a_users_class_include_attention():
    # GPT measured as if it were a user's class: every matmul, attention's QK^T and PV included (CPU's fused SDPA
    # kernel would hide them from the counter); not the embedding lookup nor the softmax
    from scaling.model import user

    s = shape_for("3e4", vocab_size=512, seq_len=64)
    t = archs.get("gpt").forward_terms(s)
    assert user.measure_flops_per_token(GPT, s) == 3 * (sum(t.values()) - t["embeddings"] - t["softmax"]) / 64
