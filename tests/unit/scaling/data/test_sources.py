"""The `chain` source (scaling/data/sources.py): exact entropies that a long sample confirms, determinism, the cache,
dials."""

import numpy as np
import pytest

from scaling.config.schema import Config, ConfigError, validate
from scaling.data import Dataset, dataset_name, prepare
from scaling.data.sources import CHAIN_DIALS, chain_sample, chain_source, parse_chain_source, window_entropy
from support import REPO


def _plugin_conditional_entropy(tokens: np.ndarray, V: int, k: int) -> float:
    """Plug-in H(X_t | previous k symbols) from counts, with the Miller-Madow correction (cells - contexts)/(2n)."""
    ctx = np.zeros(len(tokens) - k, dtype=np.int64)
    for i in range(k):
        ctx = ctx * V + tokens[i : len(tokens) - k + i]
    joint = np.bincount(ctx * V + tokens[k:], minlength=V ** (k + 1)).reshape(V**k, V).astype(float)
    n = joint.sum()
    p_ctx = joint.sum(axis=1, keepdims=True)
    nz = joint > 0
    h = -(joint[nz] * np.log(joint[nz] / np.broadcast_to(p_ctx, joint.shape)[nz])).sum() / n
    return h + (nz.sum() - (p_ctx > 0).sum()) / (2 * n)


@pytest.mark.parametrize("V,k,support,zipf", [(64, 1, 8, 1.0), (16, 2, 4, 1.0), (8, 3, 3, 0.5)])
def test_the_exact_entropy_rate_matches_a_long_sample(V, k, support, zipf):
    chain = chain_source(V, order=k, support=support, zipf=zipf, seed=5)
    tokens = chain_sample(chain, 2_000_000, seed=5)
    assert _plugin_conditional_entropy(tokens, V, k) == pytest.approx(chain.entropy_rate, abs=0.004)
    assert 0 < chain.entropy_rate < np.log(support)


def test_the_prefix_entropies_match_a_long_sample():
    """h_j = H(X_j | X_0..X_{j-1}) under stationarity: plug-in estimates of shorter contexts agree."""
    chain = chain_source(16, order=2, support=4, seed=1)
    tokens = chain_sample(chain, 2_000_000, seed=1)
    h0, h1 = chain.prefix_entropies
    p = np.bincount(tokens, minlength=16) / len(tokens)
    assert -(p[p > 0] * np.log(p[p > 0])).sum() == pytest.approx(h0, abs=0.003)
    assert _plugin_conditional_entropy(tokens, 16, 1) == pytest.approx(h1, abs=0.003)
    assert h0 > h1 > chain.entropy_rate


def test_the_average_log_loss_of_the_true_model_is_the_entropy_rate():
    """The ergodic theorem: -1/n sum log p(x_t | context) under the source itself converges to H."""
    chain = chain_source(64, order=1, support=16, seed=2)
    tokens = chain_sample(chain, 400_000, seed=2, n_streams=8)
    rows, nxt = tokens[:-1], tokens[1:]
    match = chain.succ[rows] == nxt[:, None]
    joins = np.arange(1, 8) * 50_001 - 1  # where a stream (its start symbol + 50,000) ends and the next begins
    keep = np.ones(len(rows), bool)
    keep[joins] = False
    assert match[keep].any(axis=1).all()  # every transition is allowed by the source
    nll = -np.log(chain.probs[rows[keep]][match[keep]])
    assert nll.mean() == pytest.approx(chain.entropy_rate, abs=0.008)


def test_the_window_floor_adds_the_cost_of_the_first_predictions():
    assert window_entropy(2.0, [4.0], 128) == 2.0  # order 1: the first prediction already sees its context
    assert window_entropy(1.5, [4.0, 3.0], 128) == pytest.approx((3.0 + 127 * 1.5) / 128)
    assert window_entropy(1.0, [5.0, 3.0, 2.0], 2) == pytest.approx((3.0 + 2.0) / 2)
    chain = chain_source(16, order=2, support=4, seed=1)
    assert chain.window_entropy(64) == pytest.approx((chain.prefix_entropies[1] + 63 * chain.entropy_rate) / 64)


def test_the_source_is_deterministic_from_its_seed():
    a, b = chain_source(32, seed=7), chain_source(32, seed=7)
    assert a.entropy_rate == b.entropy_rate and np.array_equal(a.succ, b.succ)
    assert np.array_equal(chain_sample(a, 50_000, seed=7), chain_sample(b, 50_000, seed=7))
    assert not np.array_equal(chain_sample(a, 50_000, seed=7), chain_sample(a, 50_000, seed=8))
    assert chain_source(32, seed=8).entropy_rate != a.entropy_rate


def test_zipf_makes_context_frequencies_heavy_tailed():
    flat, zipf = chain_source(512, zipf=0.0, seed=0), chain_source(512, zipf=1.0, seed=0)

    def top(c):  # the share of the 10% most frequent contexts
        return np.sort(c.pi)[::-1][:51].sum()

    assert top(flat) < 0.25 < 0.5 < top(zipf)


def test_prepare_caches_it_with_its_entropy_and_fresh_validation_data(tmp_path):
    src = "chain:tokens=2e5,seed=3"
    path = prepare(src, vocab_size=64, cache_dir=tmp_path)
    assert path.name == dataset_name(src, 64) == "chain-v64-k1-s16-z1-a0.5-n200000-seed3"
    ds = Dataset.load(path)
    chain = chain_source(64, seed=3)
    assert ds.meta["entropy_rate_nats"] == chain.entropy_rate
    assert ds.meta["chain"] == {**{k: v[0] for k, v in CHAIN_DIALS.items()}, "tokens": 200_000, "seed": 3}
    assert len(ds.train) + len(ds.val) == 200_000 and len(ds.val) > 0
    stream = chain_sample(chain, 200_000, seed=3)
    assert np.array_equal(ds.train[:4096], stream[:4096])
    assert np.array_equal(ds.val[:4096], stream[19 * 4096 : 20 * 4096])  # every 20th block, never trained on
    assert ds.known_entropy(128) == {"data_entropy_rate": chain.entropy_rate, "data_loss_floor": chain.entropy_rate}
    assert prepare(src, vocab_size=64, cache_dir=tmp_path) == path  # cached: not rebuilt


def test_sources_without_a_known_entropy_record_none(tmp_path):
    ds = Dataset(tmp_path, {"source": "text:*.txt", "vocab_size": 300}, np.zeros(10), np.zeros(10))
    assert ds.known_entropy(64) == {}
    old_markov = Dataset(
        tmp_path, {"source": "markov", "vocab_size": 32, "entropy_rate_nats": 1.5}, np.zeros(10), np.zeros(10)
    )
    assert old_markov.known_entropy(64) == {"data_entropy_rate": 1.5, "data_loss_floor": None}


@pytest.mark.parametrize(
    "source,message",
    [
        ("chain:order=9", r"order=9 must be in \[1, 4\]"),
        ("chain:support=0.5", r"support='0.5' must be int"),
        ("chain:colour=red", r"'colour=red' must be key=value with key one of \['order'"),
        ("chain:support=100", r"support=100 must be <= data.vocab_size=64"),
        ("chain:order=4", r"64 \*\* order=4 = 16,777,216 contexts must be <= 2\*\*22"),
    ],
)
def test_bad_dials_are_errors_naming_the_dial_and_range(source, message):
    with pytest.raises(ValueError, match=message):
        parse_chain_source(source, 64)


def test_config_validation_knows_the_chain_source():
    cfg = Config()
    cfg.data.source, cfg.data.vocab_size, cfg.train.tokens = "chain:zipf=1.5", 64, 1e5
    validate(cfg)
    cfg.data.vocab_size = 5000
    with pytest.raises(ConfigError, match=r"data.vocab_size=5000: must be an integer in \[2, 4096\]"):
        validate(cfg)
    cfg.data.source = "chains"
    with pytest.raises(ConfigError, match="'chain\\[:<dials>\\]'"):
        validate(cfg)


@pytest.mark.slow
def test_a_real_run_on_the_chain_records_the_truth_and_stays_above_it(tmp_path):
    """Two tiny real runs: summary.json carries H and the floor, and each loss is above it (the larger model's
    lower). The preset's measured curves are in the README."""
    from scaling.train.entry import train

    losses = []
    for size in ("6e3", "2.5e4"):
        cfg = Config()
        cfg.data.source, cfg.data.cache_dir = "chain:tokens=1e6", str(tmp_path / "cache")
        cfg.model.size, cfg.model.seq_len, cfg.model.head_size = size, 64, 8
        cfg.train.tokens, cfg.train.batch_size, cfg.train.threads = 4e5, 16, 1
        cfg.results_dir, cfg.log.progress, cfg.train.device = str(tmp_path / "results"), False, "cpu"
        s = train(cfg)
        assert s.status == "complete"
        assert s.data_entropy_rate == pytest.approx(chain_source(512, seed=0).entropy_rate)
        assert s.data_loss_floor == s.data_entropy_rate  # order 1
        assert s.final_val_loss > s.data_loss_floor
        losses.append(s.final_val_loss)
    assert losses[1] < losses[0]


def test_the_truth_preset_trains_every_run_on_fresh_data():
    """sweeps/isoflop_truth.yaml: every run's tokens fit in the chain's training split (at most one epoch)."""

    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    import scaling.train.entry  # noqa: F401  registers the structured base config
    from scaling.config.schema import apply_point, plan

    sweeps = REPO / "sweeps"
    with initialize_config_dir(config_dir=str(sweeps), version_base="1.3"):
        base = compose(config_name="isoflop_truth", return_hydra_config=True)
        (ov,) = OverridesParser.create().parse_overrides(
            [f"++point={OmegaConf.to_container(base.hydra.sweeper.params)['++point']}"]
        )
        cfgs = [
            apply_point(OmegaConf.to_object(compose(config_name="isoflop_truth", overrides=[f"++point={v}"])))
            for v in ov.sweep_string_iterator()
        ]
    assert len(cfgs) == 17 and {c.data.source for c in cfgs} == {"chain"}
    dials = parse_chain_source(cfgs[0].data.source, cfgs[0].data.vocab_size)
    train_tokens = dials["tokens"] * (1 - cfgs[0].data.val_fraction)
    assert max(plan(c).tokens for c in cfgs) <= train_tokens
