"""Data a team already has (issue 16): token shards, datasets on disk and in local files, mixtures, a tokenizer file of
its own, each prepared into the same verified cache; bits per byte; and a one-line error for each bad input."""

import dataclasses
import json
import math

import numpy as np
import pytest

from scaling.config.schema import ConfigError, plan, validate
from scaling.core.flops import flops_per_token
from scaling.data import Dataset, prepare, readers, verify
from scaling.data.tokenize import EOT, token_bytes
from support import tiny_cfg

WORDS = "the quick brown fox jumps over lazy dog café naïve résumé über smörgåsbord".split()


def _docs(n: int, seed: int = 0, upper: bool = False) -> list[str]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        line = " ".join(WORDS[j] for j in rng.integers(0, len(WORDS), size=40))
        out.append(f"Document {i}: {line.upper() if upper else line}.\n")
    return out


@pytest.fixture(scope="module")
def tok_file(tmp_path_factory):
    """A byte-level BPE tokenizer.json of 400 tokens, built and saved here as a user's own would be."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=[EOT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(_docs(300, seed=9), trainer=trainer)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def jsonl_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("jsonl")
    with open(root / "corpus.jsonl", "w") as f:
        for d in _docs(1500):
            f.write(json.dumps({"id": 1, "body": d}) + "\n")
    return root


# ---------------------------------------------------------------------------------------------------------------
# token shards


def test_nanogpt_bin_shards_with_a_metadata_file_keep_every_token(tmp_path):
    rng = np.random.default_rng(0)
    shards = [rng.integers(0, 1000, size=n, dtype=np.uint16) for n in (50_000, 30_001)]
    for i, a in enumerate(shards):
        a.tofile(tmp_path / f"train_{i}.bin")
    (tmp_path / "meta.json").write_text(json.dumps({"vocab_size": 1000, "dtype": "uint16"}))
    path = prepare(f"shards:{tmp_path}/*.bin", cache_dir=tmp_path / "cache")
    ds = Dataset.load(path)
    assert ds.vocab_size == 1000 and ds.tokenizer() is None
    every = 20  # val_fraction 0.05: every 20th block of 4096 tokens is validation
    allt = np.concatenate(shards)
    blocks = [allt[i : i + 4096] for i in range(0, len(allt), 4096)]
    np.testing.assert_array_equal(ds.val, np.concatenate(blocks[every - 1 :: every]))
    assert len(ds.train) + len(ds.val) == len(allt)
    assert ds.val_bytes_per_token(4096, 32) is None  # no text, no bits per byte


def test_npy_shards_with_validation_files_of_their_own(tmp_path):
    rng = np.random.default_rng(1)
    train = rng.integers(0, 70_000, size=40_000, dtype=np.uint32)
    val = rng.integers(0, 70_000, size=9_000, dtype=np.uint32)
    (tmp_path / "t").mkdir()
    (tmp_path / "v").mkdir()
    np.save(tmp_path / "t" / "a.npy", train)
    np.save(tmp_path / "v" / "b.npy", val)
    path = prepare(
        f"shards:{tmp_path}/t/*.npy", vocab_size=70_000, val_shards=f"{tmp_path}/v/*.npy", cache_dir=tmp_path / "c"
    )
    ds = Dataset.load(path)
    assert ds.meta["dtype"] == "uint32"
    np.testing.assert_array_equal(ds.train, train)
    np.testing.assert_array_equal(ds.val, val)


def test_a_shard_whose_size_is_not_a_whole_number_of_tokens_is_refused(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"\x01\x00" * 5000 + b"\x07")
    with pytest.raises(ValueError, match=r"a\.bin: 10,001 bytes is not a multiple of 2 \(data.shard_dtype=uint16\)"):
        prepare(f"shards:{tmp_path}/*.bin", vocab_size=300, cache_dir=tmp_path / "c")


def test_token_ids_at_or_above_the_vocabulary_are_refused_while_preparing(tmp_path):
    a = np.zeros(30_000, dtype=np.uint16)
    a[12_345] = 300
    a.tofile(tmp_path / "a.bin")
    with pytest.raises(ValueError, match=r"token id 300 at position 12,345 is >= the vocabulary size 300"):
        prepare(f"shards:{tmp_path}/*.bin", vocab_size=300, cache_dir=tmp_path / "c")
    assert not list((tmp_path / "c").glob("shards-*/meta.json"))  # nothing half-made is left to be reused


# ---------------------------------------------------------------------------------------------------------------
# datasets: saved on disk, local files, and the hub path on a local folder


def test_saved_dataset_jsonl_and_the_hub_path_give_the_same_tokens(tmp_path, jsonl_dir, tok_file, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # no network: the hub path reads the local folder
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    ds = datasets.load_dataset("json", data_files=str(jsonl_dir / "corpus.jsonl"), split="train")
    ds.save_to_disk(str(tmp_path / "saved"))
    kw = dict(tokenizer=str(tok_file), text_column="body", cache_dir=tmp_path / "cache", val_fraction=0.25)
    paths = [
        prepare(f"disk:{tmp_path}/saved", **kw),
        prepare(f"jsonl:{jsonl_dir}/*.jsonl", **kw),
        prepare(f"hf:{jsonl_dir}", **kw),
    ]
    metas = [verify(p) for p in paths]
    assert len({m["files"]["train.bin"] for m in metas}) == 1  # one code path: the same tokens whichever way in
    assert metas[0]["vocab_size"] == 400 and metas[0]["column"] == "body" and metas[0]["rows"] == 1500
    tok = Dataset.load(paths[0]).tokenizer()
    assert tok.to_str() == type(tok).from_file(str(tok_file)).to_str()  # the user's tokenizer, as given


def test_a_column_that_does_not_exist_names_the_columns_there_are(tmp_path, jsonl_dir):
    pytest.importorskip("datasets")
    with pytest.raises(
        ValueError, match=r"data.text_column='text': not a column of .*its columns are \['id', 'body'\]"
    ):
        prepare(f"jsonl:{jsonl_dir}/*.jsonl", cache_dir=tmp_path / "cache", vocab_size=300)


# ---------------------------------------------------------------------------------------------------------------
# tokenizers


def test_a_tokenizer_file_that_does_not_parse_is_one_line_before_any_work(tmp_path):
    bad = tmp_path / "tokenizer.json"
    bad.write_text('{"version": "1.0", "model": {"type": "Nonsense"}}')
    (tmp_path / "a.txt").write_text("".join(_docs(200)))
    with pytest.raises(ValueError, match=r"data.tokenizer=.*does not parse as a Hugging Face tokenizers file") as e:
        prepare(f"text:{tmp_path}/a.txt", tokenizer=str(bad), cache_dir=tmp_path / "c")
    assert "\n" not in str(e.value)
    cfg = tiny_cfg(tmp_path)
    cfg.data.tokenizer = str(bad)
    with pytest.raises(ConfigError, match="data.tokenizer"):
        validate(cfg)


def test_the_tokenizers_vocabulary_sizes_the_model_and_its_flops(tmp_path, tok_file):
    (tmp_path / "a.txt").write_text("".join(_docs(400)))
    cfg = tiny_cfg(tmp_path)
    cfg.data.source = f"text:{tmp_path}/a.txt"
    default = plan(cfg)
    cfg.data.tokenizer = str(tok_file)
    validate(cfg)
    mine = plan(cfg)
    assert default.shape.vocab_size == 512 and mine.shape.vocab_size == 400
    assert mine.shape == dataclasses.replace(default.shape, vocab_size=400)  # the same model but for its vocabulary
    assert mine.flops_per_token == flops_per_token(mine.shape)
    assert mine.flops_per_token["chinchilla"] < default.flops_per_token["chinchilla"]
    assert mine.shape.params_embedding() == 400 * mine.shape.d_model + mine.shape.seq_len * mine.shape.d_model


def test_token_bytes_of_a_byte_level_tokenizer_count_the_utf8_text_exactly(tok_file):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_file))
    tb = token_bytes(tok)
    assert tb[tok.token_to_id(EOT)] == 0
    for text in ["smörgåsbord über alles", "naïve café\n\n  résumé", "日本語のテキスト 🙂"]:
        ids = tok.encode(text).ids
        assert int(tb[ids].sum()) == len(text.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------------------
# mixtures


def test_a_mixture_draws_its_sources_by_weight_and_records_them(tmp_path, tok_file):
    (tmp_path / "lower.txt").write_text("".join(_docs(800, seed=1)))
    (tmp_path / "upper.txt").write_text("".join(_docs(800, seed=2, upper=True)))
    mixture = [
        {"source": f"text:{tmp_path}/lower.txt", "weight": 7},
        {"source": f"text:{tmp_path}/upper.txt", "weight": 3},
    ]
    path = prepare("mix", mixture=mixture, tokenizer=str(tok_file), cache_dir=tmp_path / "c", val_fraction=0.25)
    ds = Dataset.load(path)
    segs = ds.segments
    assert [s["weight"] for s in segs] == [0.7, 0.3]
    assert segs[0]["train"][1] == segs[1]["train"][0] and segs[1]["train"][1] == len(ds.train)
    tok = ds.tokenizer()
    upper = 0
    for step in range(40):
        x, _ = ds.train_batch(seed=0, step=step, micro=0, batch_size=16, seq_len=32)
        upper += sum(tok.decode(row.tolist()).upper() == tok.decode(row.tolist()) for row in x)
    assert 0.2 < upper / 640 < 0.4  # 30% of the windows come from the upper-case source
    windows = [tok.decode(row.tolist()) for _, y in ds.val_batches(32 * 10, 10, 32) for row in y]
    assert len(windows) == 10 and sum(w == w.upper() for w in windows) == 3  # validation shared out 7:3 too
    again = Dataset.load(path).train_batch(seed=0, step=3, micro=0, batch_size=16, seq_len=32)
    np.testing.assert_array_equal(again[0], ds.train_batch(seed=0, step=3, micro=0, batch_size=16, seq_len=32)[0])


@pytest.mark.parametrize(
    "weights, msg",
    [((0.7, -0.3), r"data.mixture\[1\].weight=-0.3: must be a finite number >= 0"), ((0, 0), r"sum to 0; must sum")],
)
def test_mixture_weights_negative_or_summing_to_zero_are_refused(tmp_path, weights, msg):
    (tmp_path / "a.txt").write_text("".join(_docs(400)))
    cfg = tiny_cfg(tmp_path)
    cfg.data.source = "mix"
    cfg.data.mixture = [{"source": f"text:{tmp_path}/a.txt", "weight": w} for w in weights]
    with pytest.raises(ConfigError, match=msg):
        validate(cfg)
    with pytest.raises(ValueError, match=msg):
        prepare("mix", mixture=cfg.data.mixture, cache_dir=tmp_path / "c")


# ---------------------------------------------------------------------------------------------------------------
# streaming


def test_a_large_text_file_read_in_pieces_tokenizes_as_if_whole(tmp_path, tok_file, monkeypatch):
    # blank lines, trailing spaces and indents: runs of whitespace a careless cut would tokenize differently
    seps = ["", "\n \n", "  \n\n   "]
    text = "".join(d + seps[i % 3] for i, d in enumerate(_docs(2000, seed=4)))
    (tmp_path / "big.txt").write_text(text)
    whole = verify(
        prepare(f"text:{tmp_path}/big.txt", tokenizer=str(tok_file), cache_dir=tmp_path / "a", val_fraction=0.25)
    )
    monkeypatch.setattr(readers, "TEXT_PIECE", 20_000)  # ~30 pieces, each cut after a newline
    assert len(list(readers.text_pieces(str(tmp_path / "big.txt")))) > 20
    pieces = verify(
        prepare(f"text:{tmp_path}/big.txt", tokenizer=str(tok_file), cache_dir=tmp_path / "b", val_fraction=0.25)
    )
    assert pieces["files"] == whole["files"] and pieces["text_bytes"] == whole["text_bytes"]


def test_val_bytes_per_token_counts_the_bytes_of_the_windows_evaluated(tmp_path, tok_file):
    (tmp_path / "a.txt").write_text("".join(_docs(1500, seed=5)))
    ds = Dataset.load(
        prepare(f"text:{tmp_path}/a.txt", tokenizer=str(tok_file), cache_dir=tmp_path / "c", val_fraction=0.25)
    )
    tok = ds.tokenizer()
    inv = _byte_level_table()
    n_tok = n_bytes = 0
    for _, y in ds.val_batches(len(ds.val), 64, 32):
        for t in y.ravel().tolist():
            s = tok.id_to_token(t)
            n_tok += 1
            n_bytes += 0 if s == EOT else len([inv[c] for c in s])  # the bytes GPT-2's table maps it back to
    assert ds.val_bytes_per_token(len(ds.val), 32) == pytest.approx(n_bytes / n_tok)
    assert math.isclose(ds.meta["val_text_bytes"] / ds.meta["n_val_tokens"], n_bytes / n_tok, rel_tol=0.02)


def _byte_level_table() -> dict[str, int]:
    """GPT-2's byte-to-unicode table, inverted: the byte each character of a byte-level token stands for."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}
