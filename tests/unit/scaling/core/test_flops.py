"""FLOP conventions, each against a hand-computed case.

Hand case: n_layer=2, d_model=8, n_head=2 (d_attn=8), d_ff=32, vocab=10, seq=4.
  non-embedding N per layer = 4*8 (LNs) + 3*8*8 + 8*8 + 2*8*32 = 32 + 192 + 64 + 512 = 800; + final LN 16 -> N = 1616
  6N              = 9696
  6N + attention  = 9696 + 6*2*4*8 = 9696 + 384 = 10080
  Chinchilla App. F forward per sequence (s=4):
    per layer: qkv 2*3*4*8*8=1536, logits 2*4*4*8=256, softmax 3*2*4*4=96, reduce 256, project 2*4*8*8=512,
               dense 2*4*(8*32+8*32)=4096  -> 6752; x2 layers = 13504
    embeddings 2*4*10*8 = 640, final logits 640
    with embeddings: 14784 -> training per token = 3*14784/4 = 11088; without: 3*13504/4 = 10128
  DeepSeek M = 6*2*(4*8*8 + 2*8*32) + 12*2*8*4 = 6*2*768 + 768 = 9216 + 768 = 9984
"""

import pytest

from scaling.core.family import Shape, shape_for
from scaling.core.flops import chinchilla_forward_flops_per_sequence, flops_per_token
from scaling.core.records import FLOP_CONVENTIONS

HAND = Shape(n_layer=2, d_model=8, n_head=2, d_ff=32, vocab_size=10, seq_len=4)


def test_hand_computed_case():
    assert HAND.params_non_embedding() == 1616
    f = flops_per_token(HAND)
    assert f == {"6n": 9696, "6n_attn": 10080, "chinchilla": 11088, "chinchilla_noembed": 10128, "deepseek_m": 9984}


def test_every_recorded_convention_is_computed():
    assert set(flops_per_token(HAND)) == set(FLOP_CONVENTIONS)


def test_deepseek_m_matches_their_closed_form_for_4x_mlp():
    """DeepSeek LLM 2024 §3.1: M = 72 n_layer d^2 + 12 n_layer d l_seq (for d_ff = 4d, d_attn = d)."""
    s = shape_for(1e8, vocab_size=32000, seq_len=2048)
    L, d, seq = s.n_layer, s.d_model, s.seq_len
    assert flops_per_token(s)["deepseek_m"] == 72 * L * d * d + 12 * L * d * seq


def test_chinchilla_table_a4_ratio_without_embeddings():
    """Hoffmann et al. 2022 Table A4: for their 73M..280B-ish shapes the Appendix F count (without embeddings and
    logits) is within a few percent of 6ND; e.g. the 10.5B-like shape (d=4096 x 32 heads x 32 layers, ffw=16384,
    seq 2048) gives a ratio near 1.03-1.04."""
    s = Shape(n_layer=32, d_model=4096, n_head=32, d_ff=16384, vocab_size=32000, seq_len=2048)
    f = flops_per_token(s)
    ratio = f["chinchilla_noembed"] / f["6n"]
    assert 1.0 < ratio < 1.1
    assert f["chinchilla"] > f["chinchilla_noembed"]


def test_forward_is_a_third_of_training():
    s = shape_for(3e5, vocab_size=512, seq_len=128)
    assert flops_per_token(s)["chinchilla"] == pytest.approx(3 * chinchilla_forward_flops_per_sequence(s) / 128)


def test_small_models_pay_mostly_for_the_vocabulary():
    """Why the CPU sweep budgets in the full Chinchilla convention: for tiny models 6N misses most of the cost."""
    s = shape_for(1e4, vocab_size=512, seq_len=128)
    f = flops_per_token(s)
    assert f["chinchilla"] > 2 * f["6n"]
