"""Converting a C = 6ND allocation to a sweep's own FLOP convention (analysis/laws/conventions.py): exactly through the
family rule for this harness's runs, statistically for foreign data; and the convention-robustness table
(analysis/uncertainty/robustness.py)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.data.load import RunExcludedWarning, load_runs
from analysis.laws.conventions import ROUTE_EXACT, ROUTE_STATISTICAL, FamilyRatio, InConvention, SixNDRatio, ratio_for
from analysis.laws.forms import ParametricLaw
from scaling.core import family, flops
from synthetic_sweep import write_sweep

RULE = dict(aspect=32.0, head_size=8, mlp_ratio=4, min_layers=2)
VOCAB, SEQ = 512, 64
TRUTH = ParametricLaw("truth", E=1.6, A=60.0, B=120.0, alpha=0.34, beta=0.28)


# the family's shapes (n_layer, d_model, n_head, d_ff) for target sizes beyond the sweep's, under RULE, VOCAB, SEQ
BEYOND = {
    ("non_embedding", 3e6): (6, 208, 26, 832),
    ("non_embedding", 1e9): (43, 1392, 174, 5568),
    ("total", 3e6): (6, 200, 25, 800),
    ("total", 1e9): (43, 1392, 174, 5568),
}


def hand_non_embedding_params(L, d, h, f):
    """Per layer 2 LayerNorms (4d) + QKV (3 d d_attn) + attention out (d_attn d) + MLP (2 d f), d_attn = d here; plus
    the final LayerNorm (2d). E.g. (6, 208, 26, 832): 6 * (832 + 129,792 + 43,264 + 346,112) + 416 = 3,120,416."""
    return L * (4 * d + 3 * d * d + d * d + 2 * d * f) + 2 * d


def hand_flops_per_token(L, d, h, f, V=VOCAB, s=SEQ):
    """Training FLOPs per token from the papers' terms, written out here rather than taken from scaling.core.flops.

    Chinchilla (Hoffmann et al. 2022 App. F), forward per sequence of s tokens, d_attn = d:
      per layer: QKV 2*3*s*d*d + logits 2*s*s*d + softmax 3*h*s*s + reduce 2*s*s*d + out-proj 2*s*d*d
                 + dense 2*s*2*d*f; plus embeddings 2*s*V*d and final logits 2*s*d*V; training = 3 x forward, / s.
      (6, 208, 26, 832): per layer 16,613,376 + 1,703,936 + 319,488 + 1,703,936 + 5,537,792 + 44,302,336
                 = 70,180,864; x 6 = 421,085,184; + 2 * 13,631,488 = 448,348,160; x 3 / 64 = 21,016,320 per token,
                 so C / 6ND = 21,016,320 / (6 * 3,120,416) = 1.12252.
    Kaplan et al. 2020 Table 1: 6N + 6 * L * s * d_attn (forward 2N + 2 L n_ctx d_attn, training 3x).
    DeepSeek LLM 2024 §3.1 M: 6 * L * (4 d d_attn + 2 d f) + 12 * L * d_attn * s (their 72 L d^2 + 12 L d s at f = 4d).
    """
    n = hand_non_embedding_params(L, d, h, f)
    per_layer = 2 * 3 * s * d * d + 2 * s * s * d + 3 * h * s * s + 2 * s * s * d + 2 * s * d * d + 2 * s * 2 * d * f
    forward = L * per_layer + 2 * s * V * d + 2 * s * d * V
    return {
        "chinchilla": 3 * forward / s,
        "6n_attn": 6 * n + 6 * L * s * d,
        "deepseek_m": 6 * L * (4 * d * d + 2 * d * f) + 12 * L * d * s,
    }


def test_the_hand_count_reproduces_the_worked_example():
    assert hand_non_embedding_params(6, 208, 26, 832) == 3_120_416
    by_hand = hand_flops_per_token(6, 208, 26, 832)
    assert by_hand["chinchilla"] == 21_016_320
    assert by_hand["chinchilla"] / (6 * 3_120_416) == pytest.approx(1.12252, abs=1e-5)


def harness_runs(tmp_path, flops_convention="chinchilla", params_convention="non_embedding", arch=None):
    """A runs table as load_runs gives it for a sweep of this harness: shapes from the family rule, FLOPs per token
    from scaling.core.flops, a resolved config.yaml per run. ``arch``: {"arch": ..., "ffn_multiple": ...} in the
    shape rule and the config (None: a config written before model.arch existed, a GPT)."""
    rows = []
    rule = {**RULE, **(arch or {})}
    for size in (5e3, 1e4, 2e4, 4e4):
        sh = family.shape_for(size, vocab_size=VOCAB, seq_len=SEQ, tie_embeddings=True, **rule)
        fpt = flops.flops_per_token(sh)
        run_dir = tmp_path / f"N{size:g}"
        run_dir.mkdir()
        (run_dir / "config.yaml").write_text("model:\n" + "".join(f"  {k}: {v}\n" for k, v in rule.items()))
        D = 1e6
        N = sh.params_total() if params_convention == "total" else sh.params_non_embedding()
        rows.append(
            dict(
                run_id=run_dir.name,
                run_dir=str(run_dir),
                size=f"{size:g}",
                n_layer=sh.n_layer,
                d_model=sh.d_model,
                n_head=sh.n_head,
                d_ff=sh.d_ff,
                vocab_size=VOCAB,
                seq_len=SEQ,
                tie_embeddings=True,
                N=float(N),
                D=D,
                C=fpt[flops_convention] * D,
                loss=3.0,
                **{f"flops_per_token_{c}": v for c, v in fpt.items()},
            )
        )
    df = pd.DataFrame(rows)
    df.attrs.update(flops_convention=flops_convention, params_convention=params_convention)
    return df


def test_llama_runs_take_the_exact_route_through_their_architectures_counts(tmp_path):
    runs = harness_runs(tmp_path, arch={"arch": "llama", "ffn_multiple": 8})
    ratio, why = ratio_for(runs)
    assert ratio.route == ROUTE_EXACT and why == ""
    assert np.allclose(ratio(runs["N"]), runs["C"] / (6 * runs["N"] * runs["D"]), rtol=1e-12)
    # the same runs read as GPT's (a config without model.arch) do not match the family: statistical, with the reason
    for cfg in tmp_path.glob("*/config.yaml"):
        cfg.write_text("model:\n" + "".join(f"  {k}: {v}\n" for k, v in RULE.items()))
    ratio, why = ratio_for(runs)
    assert ratio.route == ROUTE_STATISTICAL and "the run has (2, 16, 2, 48)" in why


@pytest.mark.parametrize("fc", ["chinchilla", "6n_attn", "deepseek_m"])
@pytest.mark.parametrize("pc", ["non_embedding", "total"])
def test_the_exact_route_reproduces_every_runs_flops_and_follows_the_family_beyond_them(tmp_path, fc, pc):
    runs = harness_runs(tmp_path, fc, pc)
    ratio, why = ratio_for(runs)
    assert isinstance(ratio, FamilyRatio) and ratio.route == ROUTE_EXACT and why == ""
    measured = runs["C"] / (6 * runs["N"] * runs["D"])
    np.testing.assert_allclose(ratio(runs["N"].to_numpy()), measured, rtol=1e-12)  # exact at the sweep's sizes
    for N in (3e6, 1e9):  # beyond them: the shape the family gives that size, its FLOPs counted by hand
        sh = ratio.shape(N)
        assert (sh.n_layer, sh.d_model, sh.n_head, sh.d_ff) == BEYOND[pc, N]
        n = hand_non_embedding_params(*BEYOND[pc, N])
        if pc == "total":
            n += VOCAB * sh.d_model + SEQ * sh.d_model  # token + position embeddings (tied head)
        assert n >= N and ratio(N) == pytest.approx(hand_flops_per_token(*BEYOND[pc, N])[fc] / (6 * n), rel=1e-12)
    # an allocation converted to the sweep's convention spends exactly C under it (D * FLOPs per token of N's shape)
    C = np.array([1e13, 1e16, 1e19])
    a = InConvention(TRUTH, ratio).compute_optimal(C)
    np.testing.assert_allclose(6 * a.N_opt * a.D_opt * ratio(a.N_opt), C, rtol=1e-8)


def test_6n_flops_with_non_embedding_parameters_is_the_identity(tmp_path):
    ratio, _ = ratio_for(harness_runs(tmp_path, "6n", "non_embedding"))
    assert isinstance(ratio, FamilyRatio) and ratio.identity and ratio(1e9) == pytest.approx(1.0, rel=1e-12)


def test_foreign_runs_take_the_statistical_route_and_say_why(tmp_path):
    runs = harness_runs(tmp_path)
    foreign = runs[["N", "D", "C", "loss"]].copy()  # no shape columns: a published table
    ratio, why = ratio_for(foreign)
    assert isinstance(ratio, SixNDRatio) and ratio.route == ROUTE_STATISTICAL and "shape columns" in why
    changed = runs.copy()
    changed.attrs.update(runs.attrs)
    changed.loc[0, "flops_per_token_chinchilla"] *= 1.01  # FLOPs the family and scaling.core.flops do not reproduce
    ratio, why = ratio_for(changed)
    assert isinstance(ratio, SixNDRatio) and "FLOPs per token" in why and runs["run_id"][0] in why
    (tmp_path / "N5000" / "config.yaml").write_text("model:\n  aspect: 32\n")
    ratio, why = ratio_for(runs)
    assert isinstance(ratio, SixNDRatio) and "model.head_size is missing" in why


def test_the_test_sweep_with_bias_terms_is_foreign_and_its_report_says_so(tmp_path):
    sweep = write_sweep(tmp_path / "s", with_bad_runs=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunExcludedWarning)
        runs = load_runs(sweep)
    ratio, why = ratio_for(runs)
    assert isinstance(ratio, SixNDRatio) and why


def test_convention_table_has_every_convention_and_warns_by_its_stated_rule(tmp_path):
    from analysis.uncertainty.robustness import convention_table

    sweep = write_sweep(tmp_path / "s", with_bad_runs=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct = convention_table(
            sweep,
            n_boot=20,
            grid="small",
            flops_conventions=("6n", "chinchilla"),
            loaded=("chinchilla", "non_embedding"),
        )
    t = ct.table
    assert len(t) == 2 * 2 * 2 and t["loaded"].sum() == 2  # 2 approaches x 2 FLOP x 2 parameter conventions
    assert (t["lo"] <= t["a"]).all() and (t["a"] <= t["hi"]).all()
    a3 = t[(t["approach"] == "approach3")].set_index(["flops", "params"])
    # Approach 3's a under 6n FLOPs and non-embedding N is beta / (alpha + beta) itself
    from analysis.fits.approach3 import fit_approach3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_approach3(load_runs(sweep), grid="small")
    assert a3.loc[("6n", "non_embedding"), "a"] == pytest.approx(fit.a, rel=1e-6)
    for approach, g in t.groupby("approach"):
        ref = g[g["loaded"]].iloc[0]
        outside = g[~g["loaded"] & ((g["a"] < ref["lo"]) | (g["a"] > ref["hi"]))]
        name = {"approach2": "Approach 2", "approach3": "Approach 3"}[approach]
        warned = [w for w in ct.warnings if w.startswith(name)]
        assert bool(len(outside)) == bool(warned)
        for r in outside.itertuples():
            assert f"{r.flops} / {r.params.replace('_', '-')} (a = {r.a:.3f})" in warned[0]


def test_the_shape_of_an_n_does_not_depend_on_the_queries_before_it(tmp_path):
    """FamilyRatio caches its bisection's midpoints across queries (a bootstrap asks ~1e5 times): the shape it gives
    an N must be the one a fresh instance gives, whatever was asked before."""
    ratio, _ = ratio_for(harness_runs(tmp_path))
    assert isinstance(ratio, FamilyRatio)
    Ns = np.exp(np.random.default_rng(0).uniform(np.log(2e3), np.log(1e7), 300))
    # and the edges of the cached paths' intervals: a shape's own count, and just either side of it
    counts = [ratio._count(ratio.shape(float(N))) for N in Ns[:20]]
    Ns = np.concatenate([Ns, [c + d for c in counts for d in (-0.5, 0.0, 0.5, 1.0)]])
    shared = [ratio.shape(float(N)) for N in Ns]
    values = ratio(Ns)
    for i, (N, sh) in list(enumerate(zip(Ns, shared)))[::-1][:100]:
        fresh = FamilyRatio(ratio.rule, ratio.flops_convention, ratio.params_convention)
        assert fresh.shape(float(N)) == sh and fresh._count(sh) >= N
        assert fresh(float(N)) == values[i]
