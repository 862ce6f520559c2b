"""Model family: the size rule, and analytic parameter counts equal to the module's own, for many shapes."""

import random

import pytest
import torch

from scaling.core.family import NAMED_SIZES, Shape, parse_size, shape_for
from scaling.model.gpt import GPT


def random_shapes(n, seed=0):
    rng = random.Random(seed)
    for _ in range(n):
        n_head = rng.randint(1, 6)
        head = rng.choice([4, 8, 16])
        yield Shape(
            n_layer=rng.randint(1, 4),
            d_model=n_head * head,
            n_head=n_head,
            d_ff=rng.randint(8, 200),
            vocab_size=rng.randint(10, 700),
            seq_len=rng.choice([8, 16, 64, 128]),
            tie_embeddings=rng.random() < 0.5,
        )


@pytest.mark.parametrize(
    "shape",
    list(random_shapes(40)),
    ids=lambda s: f"L{s.n_layer}d{s.d_model}h{s.n_head}f{s.d_ff}V{s.vocab_size}t{int(s.tie_embeddings)}",
)
def test_analytic_counts_equal_module_counts(shape):
    model = GPT(shape)
    own = model.param_counts()
    assert own["total"] == shape.params_total()
    assert own["embedding"] == shape.params_embedding()
    assert own["non_embedding"] == shape.params_non_embedding()
    # and the module's count of unique tensors is really what torch holds
    assert sum(p.numel() for p in model.parameters()) == shape.params_total()


def test_tied_head_shares_the_embedding_tensor():
    s = shape_for("tiny", vocab_size=512, seq_len=64)
    m = GPT(s)
    assert m.head.weight is m.tok_emb.weight
    untied = GPT(Shape(**{**s.__dict__, "tie_embeddings": False}))
    assert untied.param_counts()["embedding"] == s.params_embedding() + 512 * s.d_model


@pytest.mark.parametrize("target", [1e4, 3e4, 1e5, 3e5, 1e6, 1e7, 1e8, 1e9])
def test_family_rule_hits_target_within_rounding(target):
    s = shape_for(target, vocab_size=512, seq_len=128)
    n = s.params_non_embedding()
    assert 0.5 * target < n < 1.7 * target
    assert s.d_model % s.n_head == 0 and s.head_size == 16
    assert s.d_ff == 4 * s.d_model
    # the aspect ratio stays near 32 once the model has a few layers
    if target >= 1e6:
        assert 16 <= s.d_model / s.n_layer <= 64


def test_family_is_monotone_in_size():
    sizes = [1e4 * 1.5**k for k in range(20)]
    ns = [shape_for(t, vocab_size=512, seq_len=128).params_non_embedding() for t in sizes]
    assert ns == sorted(ns)


def test_named_sizes_and_suffixes_parse():
    assert parse_size("tiny") == NAMED_SIZES["tiny"]
    assert parse_size("300k") == 3e5
    assert parse_size("0.3M") == pytest.approx(3e5)
    assert parse_size("2B") == 2e9
    assert parse_size(12345) == 12345.0


@pytest.mark.parametrize("bad", ["-5", "0", "abc", "1e20", "12q", "", True])
def test_bad_sizes_name_the_field_and_the_range(bad):
    with pytest.raises(ValueError, match=r"model\.size=.*must be a positive parameter count"):
        parse_size(bad)


def test_param_check_catches_a_wrong_count():
    s = shape_for("tiny", vocab_size=64, seq_len=32)
    m = GPT(s)
    m.extra = torch.nn.Linear(2, 2, bias=False)  # a parameter the analytic count does not know about
    with pytest.raises(AssertionError, match="analytic parameter counts"):
        m.check_param_count()


def test_depth_and_width_never_shrink_as_the_family_grows():
    """No step backwards in shape inside a sweep: min_layers keeps tiny models off the 1-layer corner."""
    shapes = [shape_for(1e3 * 1.2**k, vocab_size=512, seq_len=128, head_size=8) for k in range(45)]
    assert all(s.n_layer >= 2 for s in shapes)
    for a, b in zip(shapes, shapes[1:]):
        assert b.n_layer >= a.n_layer
        assert b.n_layer > a.n_layer or b.d_model >= a.d_model
