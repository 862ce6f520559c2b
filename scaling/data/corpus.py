"""What a prepared corpus is made of and how it is made: the options that decide its files (``Options``), the checks
of a source before anything is written (``check_source``, ``check_mixture``), the vocabulary a config gives a model
before anything is prepared (``vocab_size_of``), and the streamed preparation of text, shards, datasets and mixtures
into train and validation token files (``prepare_corpus``). scaling/data/cache.py owns the cache folder around it.

Memory stays bounded whatever the corpus's size: text is read and encoded a batch at a time (scaling/data/readers.py,
scaling/data/tokenize.py) into one token file, which is then cut into its splits a block at a time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.data import readers, tokenize
from scaling.data.readers import DATASET_KINDS

VAL_BLOCK = 4096

EXTRA = {"tokenizer": None, "text_column": "text", "shard_dtype": "uint16", "val_shards": None, "mixture": ()}


def inputs_fingerprint(o: Options) -> str | None:
    """Path, size and modification time of every file a shards/parquet/jsonl source reads (mixtures: of each
    component): a cache built from other files is rebuilt, never reused."""
    comps = [m["source"] for m in o.mixture] if o.source == "mix" else [o.source]
    files = []
    for s in comps:
        kind, _, spec = str(s).partition(":")
        if kind in ("shards", "parquet", "jsonl"):
            files += readers.paths(spec)
    if o.val_shards:
        files += readers.paths(o.val_shards)
    if not files:
        return None
    stats = [(os.path.abspath(f), os.path.getsize(f), os.stat(f).st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps(stats).encode()).hexdigest()


SOURCE_KINDS = ("shakespeare", "text", "markov", "chain", "shards", "disk", "parquet", "jsonl", "hf", "mix")
TEXT_KINDS = ("shakespeare", "text") + DATASET_KINDS  # sources of text, tokenized here
MIX_KINDS = TEXT_KINDS + ("shards",)  # what a mixture may hold


def _min_tokens(val_fraction: float) -> int:
    return max(2, round(1 / val_fraction)) * VAL_BLOCK if val_fraction > 0 else VAL_BLOCK


def check_mixture(mixture) -> list[tuple[str, float]]:
    """``data.mixture`` as (source, weight) pairs with weights summing to 1; a one-line ValueError names what is
    wrong (a weight negative or not a number, weights summing to zero, a source a mixture cannot hold)."""
    pairs = []
    for i, item in enumerate(mixture or ()):
        try:
            src, w = str(item["source"]), item["weight"]
        except (KeyError, TypeError):
            raise ValueError(f"data.mixture[{i}]={item!r}: must be {{source: <source>, weight: <number>}}") from None
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"data.mixture[{i}].weight={w!r}: must be a finite number >= 0")
        if src.split(":", 1)[0] not in MIX_KINDS:
            raise ValueError(f"data.mixture[{i}].source={src!r}: a mixture holds sources of the kinds {MIX_KINDS}")
        pairs.append((src, float(w)))
    if len(pairs) < 1:
        raise ValueError("data.mixture=[]: data.source=mix needs at least one {source, weight}")
    total = sum(w for _, w in pairs)
    if total <= 0:
        raise ValueError(f"data.mixture weights {[w for _, w in pairs]}: sum to {total:g}; must sum to more than 0")
    return [(s, w / total) for s, w in pairs]


def check_source(source: str, val_fraction: float = 0.05, mixture=()) -> None:
    """Fail fast on a source that cannot be prepared, before a run writes anything: ValueError naming data.source.

    ``text:<glob>`` must match readable files holding enough text for the validation split (a byte-level BPE makes
    at most 3 tokens per byte, one per byte of a U+FFFD replacement, plus one <|endoftext|> per file, so fewer bytes
    than that bound allows can never fill it); ``shards:``, ``parquet:`` and ``jsonl:`` must match files;
    ``hf:``/``disk:`` need a name or a path and the ``datasets`` package; ``mix`` a valid ``data.mixture``.
    """
    kind, sep, rest = source.partition(":")
    if kind in ("shakespeare", "markov", "mix") and sep:
        raise ValueError(f"data.source={source!r}: {kind!r} takes no ':<argument>'; must be exactly {kind!r}")
    if kind == "mix":
        for s, _ in check_mixture(mixture):
            check_source(s, val_fraction)
        return
    if kind in ("text", "shards", "parquet", "jsonl"):
        if not rest.strip():
            raise ValueError(f"data.source={source!r}: must name files after '{kind}:', e.g. {kind}:corpus/*")
        paths = readers.paths(rest)
        if not paths:
            raise ValueError(f"data.source={source!r}: no files match the glob {rest!r}; must match at least one file")
        unreadable = [p for p in paths if not os.access(p, os.R_OK)]
        if unreadable:
            raise ValueError(
                f"data.source={source!r}: {len(unreadable)} matching file(s) cannot be read, e.g. "
                f"{unreadable[0]!r}; must be readable"
            )
    if kind == "text":
        n_bytes = sum(os.path.getsize(p) for p in paths)
        need = _min_tokens(val_fraction)
        if 3 * n_bytes + len(paths) < need:
            raise ValueError(
                f"data.source={source!r}: the {len(paths)} matching file(s) hold {n_bytes:,} bytes of "
                f"text; a validation split of data.val_fraction={val_fraction} needs at least {need:,} "
                f"tokens, so must hold at least {max(0, need - len(paths)) / 3:,.0f} bytes"
            )
    if kind in ("hf", "disk"):
        if not rest.split(":", 1)[0].strip():
            raise ValueError(f"data.source={source!r}: must name a dataset after '{kind}:', e.g. {kind}:<name or path>")
    if kind in DATASET_KINDS:
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            raise ValueError(
                f"data.source={source!r}: needs the `datasets` package (pip install 'scaling-harness[datasets]')"
            )


def text_changed(source: str, meta: dict) -> bool:
    """A text: cache is stale when the files its glob matches, or their contents, changed since it was built."""
    paths = readers.paths(source.split(":", 1)[1])
    return not paths or readers.text_digest(paths) != meta.get("text_sha256")


# ---------------------------------------------------------------------------------------------------------------
# prepare


def _documents(source: str, root: Path, folio: bool, text_column: str) -> tuple[readers.Documents, dict]:
    kind, _, spec = source.partition(":")
    if kind == "shakespeare":
        docs, info = readers.shakespeare_documents(root, folio)
        return (lambda: iter(docs)), info
    if kind == "text":
        files = readers.paths(spec)
        return readers.text_documents(spec), {
            "documents": [os.path.abspath(p) for p in files],
            "text_sha256": readers.text_digest(files),
        }
    return readers.dataset_documents(source, text_column, root / "hf")


def shard_vocab(source: str, vocab_size: int, shard_dtype: str) -> tuple[list[str], int, str]:
    """A shards source's files, vocabulary size and dtype (of its .bin files): from the metadata file beside the
    shards where it says, else data.vocab_size and data.shard_dtype."""
    files = readers.shard_files(source, source.partition(":")[2])
    meta = readers.shard_meta(files)
    vocab = meta.get("vocab_size", vocab_size)
    dtype = meta.get("dtype", shard_dtype)
    if isinstance(vocab, bool) or not isinstance(vocab, int) or not 2 <= vocab <= 2**31:
        raise ValueError(f"{source}: vocab_size={vocab!r} in {readers.SHARD_META} must be an integer in [2, 2**31]")
    if dtype not in readers.SHARD_DTYPES:
        raise ValueError(f"data.shard_dtype={dtype!r}: must be one of {readers.SHARD_DTYPES}")
    return files, vocab, dtype


def copy_shards(files: list[str], dtype: str, vocab: int, out, out_dtype) -> int:
    """Append every shard's tokens to ``out`` as ``out_dtype``, a piece at a time, checking each id < ``vocab``."""
    n = 0
    for f in files:
        arr = readers.open_shard(f, dtype)
        for lo in range(0, len(arr), 1 << 22):
            piece = np.asarray(arr[lo : lo + (1 << 22)])
            readers.check_tokens(piece, vocab, f"shard {f}")
            piece.astype(out_dtype).tofile(out)
            n += len(piece)
    return n


def split_into(
    tokens: "np.ndarray | readers.TokenFile", val_fraction: float, train_f, val_f, what: str
) -> tuple[int, int]:
    """Cut ``tokens`` into blocks of VAL_BLOCK and append every ``1/val_fraction``-th block to ``val_f``, the rest to
    ``train_f``, a block at a time (``tokens`` may be a memory map larger than memory)."""
    n_blocks = math.ceil(len(tokens) / VAL_BLOCK)
    every = max(2, round(1 / val_fraction))
    if n_blocks < every:
        raise ValueError(
            f"data.source={what!r}: only {len(tokens):,} tokens: a validation split of data.val_fraction="
            f"{val_fraction} needs at least {every} blocks of {VAL_BLOCK} tokens ({every * VAL_BLOCK:,} tokens)"
        )
    n_train = n_val = 0
    for i in range(n_blocks):
        block = np.asarray(tokens[i * VAL_BLOCK : (i + 1) * VAL_BLOCK])
        if i % every == every - 1:
            block.tofile(val_f)
            n_val += len(block)
        else:
            block.tofile(train_f)
            n_train += len(block)
    return n_train, n_val


def prepare_corpus(tmp: Path, root: Path, o: Options) -> dict:
    """Text, shards, datasets and mixtures: tokenize (or copy) each component into one token file, a bounded piece at
    a time, then cut each component into its train and validation blocks. Returns meta.json's fields."""
    comps = check_mixture(o.mixture) if o.source == "mix" else [(o.source, 1.0)]
    kinds = [s.split(":", 1)[0] for s, _ in comps]
    texts = [s for s, k in zip(comps, kinds) if k in TEXT_KINDS]
    meta: dict = {}
    docs: dict[str, readers.Documents] = {}
    for s, _ in texts:
        docs[s], info = _documents(s, root, o.folio, o.text_column)
        if len(comps) == 1:
            meta.update(info)
    tok = None
    if o.tokenizer:
        tok = tokenize.load_tokenizer(o.tokenizer)
        shutil.copyfile(Path(o.tokenizer).expanduser(), tmp / "tokenizer.json")
        meta.update(tokenizer=str(Path(o.tokenizer).expanduser().absolute()))
    elif texts:
        if len(texts) < len(comps):
            raise ValueError(
                "data.mixture mixes text and token shards: give data.tokenizer=<tokenizer.json> (the one the "
                "shards were made with) so that both share one vocabulary"
            )
        tok = tokenize.train_bpe((d for s, _ in texts for d in docs[s]()), o.vocab_size)
        tok.save(str(tmp / "tokenizer.json"))
    if tok is not None:
        vocab = tok.get_vocab_size()
    else:
        vocab = max(shard_vocab(s, o.vocab_size, o.shard_dtype)[1] for s, _ in comps)
    dtype = np.uint16 if vocab <= 65536 else np.uint32
    eot = tokenize.separator_id(tok) if tok is not None else None
    segments: list[dict] = []
    spans: list[tuple[int, int]] = []
    n_bytes = 0
    with open(tmp / "all.tmp", "wb") as out:
        for (s, w), kind in zip(comps, kinds):
            start = out.tell() // np.dtype(dtype).itemsize
            if kind == "shards":
                files, v, sd = shard_vocab(s, o.vocab_size, o.shard_dtype)
                copy_shards(files, sd, min(v, vocab), out, dtype)
            else:
                _, b = tokenize.encode_to(tok, docs[s](), out, dtype, eot)
                n_bytes += b
            segments.append({"source": s, "weight": w})
            spans.append((start, out.tell() // np.dtype(dtype).itemsize))
    allt = readers.TokenFile(tmp / "all.tmp", dtype)  # read a block at a time: no mapping of the whole corpus
    n_train = n_val = 0
    with open(tmp / "train.bin", "wb") as train_f, open(tmp / "val.bin", "wb") as val_f:
        for seg, (lo, hi) in zip(segments, spans):
            if o.val_shards:
                files, v, sd = shard_vocab(f"shards:{o.val_shards}", o.vocab_size, o.shard_dtype)
                for i in range(lo, hi, 1 << 22):
                    allt[i : min(hi, i + (1 << 22))].tofile(train_f)
                a, b = hi - lo, copy_shards(files, sd, vocab, val_f, dtype)
            else:
                a, b = split_into(allt.sub(lo, hi), o.val_fraction, train_f, val_f, seg["source"])
            seg.update(train=[n_train, n_train + a], val=[n_val, n_val + b])
            n_train, n_val = n_train + a, n_val + b
    del allt
    (tmp / "all.tmp").unlink()
    if o.val_shards:
        meta["val_shards"] = o.val_shards
    if o.source == "mix":
        meta["segments"] = segments
    if tok is not None:
        val = readers.TokenFile(tmp / "val.bin", dtype)
        tb = tokenize.token_bytes(tok)
        counts = sum(np.bincount(val[i : i + (1 << 20)], minlength=len(tb)) for i in range(0, len(val), 1 << 20))
        meta["val_text_bytes"] = int(np.dot(counts, tb)) if len(val) else 0
        del val
    if texts:
        meta["text_bytes"] = n_bytes
    meta.update(vocab_size=vocab, dtype=np.dtype(dtype).name, n_train_tokens=n_train, n_val_tokens=n_val)
    return meta


@dataclass(frozen=True)
class Options:
    """Everything that decides a prepared dataset's files (``dataset_name`` puts each into the folder's name)."""

    source: str = "shakespeare"
    vocab_size: int = 512
    folio: bool = False
    val_fraction: float = 0.05
    tokenizer: str | None = None  # a tokenizer.json to use instead of training a BPE
    text_column: str = "text"  # datasets: the column holding the text
    shard_dtype: str = "uint16"  # shards: dtype of .bin files (where no meta.json beside them says)
    val_shards: str | None = None  # shards: a glob of validation shards instead of held-out blocks
    mixture: tuple = ()  # source=mix: ({source, weight}, ...)

    @classmethod
    def of(cls, data) -> Options:
        """From a config's data section (or anything with its fields)."""
        return cls(
            data.source,
            data.vocab_size,
            data.folio,
            data.val_fraction,
            getattr(data, "tokenizer", None),
            getattr(data, "text_column", "text"),
            getattr(data, "shard_dtype", "uint16"),
            getattr(data, "val_shards", None),
            tuple(dict(m) for m in getattr(data, "mixture", ()) or ()),
        )


def vocab_size_of(data) -> int:
    """The vocabulary a config's data gives a model, known before anything is prepared: the tokenizer file's
    (data.tokenizer), else the shards' metadata file's (a shards source), else data.vocab_size."""
    o = data if isinstance(data, Options) else Options.of(data)
    if o.tokenizer:
        p = Path(o.tokenizer).expanduser()
        st = p.stat() if p.is_file() else None
        return _tokenizer_vocab(str(p), st and st.st_mtime_ns, st and st.st_size)
    if o.source.startswith("shards:"):
        return shard_vocab(o.source, o.vocab_size, o.shard_dtype)[1]
    return o.vocab_size


@functools.lru_cache(maxsize=16)
def _tokenizer_vocab(path: str, mtime_ns, size) -> int:  # a plan asks once per shape: read the file once
    return tokenize.load_tokenizer(path).get_vocab_size()
