"""Runs on data a team brings (issue 16): a tokenizer file of its own sizes the model, every run records its
validation bits per byte where its data has text, and the analysis fits bits per byte or says which runs lack it."""

import json
import math

import numpy as np
import pytest

from analysis.data.load import NO_BPB, load_runs, scan_runs
from scaling.core import records
from scaling.train.entry import train
from support import tiny_cfg


def _tokenizer(path, texts, vocab=320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.save(str(path))
    return tok


def test_bits_per_byte_is_recorded_and_fitted_and_absent_without_text(tmp_path):
    rng = np.random.default_rng(0)
    words = "alpha beta gamma delta épsilon zeta eta thêta".split()
    text = "".join(" ".join(rng.choice(words, size=30)) + ".\n" for _ in range(3000))
    (tmp_path / "a.txt").write_text(text)
    tok = _tokenizer(tmp_path / "tokenizer.json", [text])
    cfg = tiny_cfg(tmp_path / "results", tokens=20 * 8 * 32)
    cfg.data.source, cfg.data.tokenizer = f"text:{tmp_path}/a.txt", str(tmp_path / "tokenizer.json")
    cfg.data.val_fraction, cfg.data.cache_dir = 0.25, str(tmp_path / "cache")
    s = train(cfg)
    assert s.vocab_size == tok.get_vocab_size() < 512 and s.data_tokenizer == cfg.data.tokenizer
    assert s.final_val_bpb == pytest.approx(s.final_val_loss / math.log(2) / s.val_bytes_per_token)
    # my own count: the UTF-8 bytes of the targets of the final evaluation's windows (the whole validation split)
    from scaling.data import Dataset

    ds = Dataset.load(next(p for p in (tmp_path / "cache").iterdir() if (p / "meta.json").exists()))
    ids = np.concatenate([y.ravel() for _, y in ds.val_batches(len(ds.val), 64, cfg.model.seq_len)])
    n_bytes = len(tok.decode(ids.tolist()).encode("utf-8"))  # ~: a window may cut an é in two (U+FFFD)
    assert s.val_bytes_per_token == pytest.approx(n_bytes / len(ids), rel=2e-3)

    # token shards without a tokenizer: no text, so no bits per byte, and the analysis says why
    (tmp_path / "shards").mkdir()
    rng.integers(0, 300, size=60_000, dtype=np.uint16).tofile(tmp_path / "shards" / "a.bin")
    (tmp_path / "shards" / "meta.json").write_text(json.dumps({"vocab_size": 300}))
    cfg2 = tiny_cfg(tmp_path / "results", tokens=20 * 8 * 32)
    cfg2.data.source, cfg2.data.cache_dir, cfg2.data.val_fraction = (
        f"shards:{tmp_path}/shards/*.bin",
        cfg.data.cache_dir,
        0.25,
    )
    s2 = train(cfg2)
    assert s2.vocab_size == 300 and s2.final_val_bpb is None and s2.val_bytes_per_token is None

    sweep = tmp_path / "results" / "t"
    with pytest.warns(UserWarning, match="no bits per byte recorded"):
        df = load_runs(sweep, metric="bpb", quality=False)
    assert list(df["loss"]) == [pytest.approx(s.final_val_bpb)] and df.attrs["metric"] == "bpb"
    scan = scan_runs(sweep, metric="bpb", quality=False)
    assert (scan["reason"] == NO_BPB).sum() == 1
    assert len(load_runs(sweep, quality=False)) == 2  # in nats per token both runs count


def test_a_summary_written_before_bits_per_byte_still_loads(tmp_path):
    old = records.RunSummary(run_id="r", sweep="s").to_dict()
    for k in ("data_tokenizer", "data_mixture", "val_bytes_per_token", "eval_bytes_per_token", "final_val_bpb"):
        old.pop(k)
    s = records.RunSummary.from_dict(old)
    assert s.final_val_bpb is None and s.data_mixture is None
