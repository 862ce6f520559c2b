"""Property: random damage to a prepared data cache is detected and reported with the command that rebuilds it.

A real prepared dataset (local text, byte-level BPE) is copied and damaged at random: bytes flipped or the file
truncated or deleted (train.bin, val.bin, tokenizer.json, meta.json), or meta.json edited (a key set to another value,
removed, or its file list changed). Loading it must then either fail with a ValueError (or FileNotFoundError for a
missing meta.json) whose message holds the rebuild command naming this source, or, for an edit that changes nothing
a run reads, load exactly the original tokens. Never another exception, never different data.
"""

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scaling.data import Dataset, prepare, verify

EXAMPLES = 50  # derandomized
TEXT = "".join(f"Line {i}: the quick brown fox, number {i * 7 % 13}, jumps over the lazy dog.\n" for i in range(4000))
FILES = ["train.bin", "val.bin", "tokenizer.json", "meta.json"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache_damage")
    (root / "a.txt").write_text(TEXT + TEXT.upper())
    path = prepare(f"text:{root}/a.txt", vocab_size=300, cache_dir=root / "cache")
    ds = Dataset.load(path)
    return path, np.array(ds.train), np.array(ds.val), verify(path)


meta_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=6),
    st.lists(st.integers(0, 3), max_size=2),
    st.sampled_from(["uint8", "float64", "object", "../x", "/etc/passwd", "", "meta.json"]),
)
damages = st.one_of(
    st.tuples(
        st.just("flip"),
        st.sampled_from(FILES),
        st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4),
        st.integers(1, 255),
    ),
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1, exclude_max=True), st.just(0)),
    st.tuples(st.just("delete"), st.sampled_from(FILES), st.just(0.0), st.just(0)),
    st.tuples(
        st.just("meta_set"),
        st.sampled_from(
            [
                "source",
                "vocab_size",
                "dtype",
                "n_train_tokens",
                "n_val_tokens",
                "files",
                "val_fraction",
                "text_bytes",
                "meta_sha256",
                "new_key",
            ]
        ),
        meta_values,
        st.just(0),
    ),
    st.tuples(
        st.just("meta_del"),
        st.sampled_from(["source", "vocab_size", "dtype", "n_train_tokens", "files", "meta_sha256", "documents"]),
        st.just(0.0),
        st.just(0),
    ),
    st.tuples(
        st.just("meta_files"),
        st.sampled_from(["drop", "rename", "digest", "extra"]),
        st.sampled_from(["train.bin", "val.bin", "tokenizer.json"]),
        st.just(0),
    ),
)


def damage(path: Path, kind, what, x, mask) -> None:
    if kind == "flip":
        f = path / what
        data = bytearray(f.read_bytes())
        for pos in x:
            data[int(pos * len(data))] ^= mask
        f.write_bytes(bytes(data))
    elif kind == "truncate":
        f = path / what
        f.write_bytes(f.read_bytes()[: int(x * f.stat().st_size)])
    elif kind == "delete":
        (path / what).unlink()
    else:
        meta = json.loads((path / "meta.json").read_text())
        if kind == "meta_set":
            meta[what] = x
        elif kind == "meta_del":
            meta.pop(what, None)
        elif what == "drop":
            meta["files"].pop(x)
        elif what == "rename":
            meta["files"][x + ".old"] = meta["files"].pop(x)
        elif what == "digest":
            meta["files"][x] = "0" * 64
        else:
            meta["files"]["../" + x] = meta["files"][x]
        (path / "meta.json").write_text(json.dumps(meta))


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(damage_=damages)
def test_damage_to_the_cache_is_reported_with_the_rebuild_command_or_changes_nothing(cache, damage_):
    path, train, val, meta = cache
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(shutil.copytree(path, Path(tmp) / path.name))
        damage(copy, *damage_)
        try:
            ds = Dataset.load(copy)
        except (ValueError, FileNotFoundError) as e:
            msg = str(e)
            assert "python -m scaling.data prepare" in msg and str(copy.parent) in msg, msg
            if damage_[1] != "meta.json" and damage_[0].startswith(("flip", "truncate", "delete")):
                assert f"prepare {meta['source']!r} --vocab-size 300" in msg, msg  # names this very source
            return
        # accepted: it must be the original data, byte for byte, with the original vocabulary
        np.testing.assert_array_equal(np.asarray(ds.train), train)
        np.testing.assert_array_equal(np.asarray(ds.val), val)
        assert ds.vocab_size == meta["vocab_size"] and ds.meta["dtype"] == meta["dtype"]
        assert (copy / "tokenizer.json").read_bytes() == (path / "tokenizer.json").read_bytes()
