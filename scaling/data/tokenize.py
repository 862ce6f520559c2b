"""Tokenizers: the byte-level BPE trained on a corpus (the default), or a Hugging Face ``tokenizer.json`` a user already
has (``data.tokenizer``); encoding a stream of documents into a token file a bounded batch at a time; and the bytes of
text each token stands for, which turn a loss in nats per token into bits per byte (scaling/data/batches.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from scaling.data.readers import Piece

EOT = "<|endoftext|>"
# the document separator of a user's tokenizer: the first of these it has as a token (else documents are joined bare)
SEPARATORS = (EOT, "</s>", "<|end_of_text|>", "<eos>", "<|eot_id|>", "[SEP]")
ENCODE_BYTES = 1 << 18  # characters of text encoded at once: bounds the memory of one encode_batch


def train_bpe(docs: Iterator[str], vocab_size: int):
    """A byte-level BPE of ``vocab_size`` tokens (256 bytes, <|endoftext|>, merges) learned from ``docs`` as they
    stream past: the trainer keeps word counts, never the text."""
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


def load_tokenizer(path: str):
    """A user's ``tokenizer.json`` (Hugging Face `tokenizers` format); a file that does not parse is a one-line
    ValueError naming data.tokenizer."""
    from tokenizers import Tokenizer

    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"data.tokenizer={path!r}: no such file; must be a tokenizer.json (Hugging Face tokenizers)")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as e:  # tokenizers raises its own Exception subclass
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"data.tokenizer={path!r}: does not parse as a Hugging Face tokenizers file ({msg[:200]})"
        ) from None
    if tok.get_vocab_size() < 2:
        raise ValueError(f"data.tokenizer={path!r}: has {tok.get_vocab_size()} tokens; must have at least 2")
    return tok


def separator_id(tok) -> int | None:
    for s in SEPARATORS:
        i = tok.token_to_id(s)
        if i is not None:
            return int(i)
    return None


def _is_byte_level(tok) -> bool:
    spec = json.loads(tok.to_str())
    return '"ByteLevel"' in json.dumps([spec.get("pre_tokenizer"), spec.get("decoder")])


def token_bytes(tok) -> np.ndarray:
    """Bytes of UTF-8 text each token id stands for; 0 for special tokens (<|endoftext|>), which are no text.

    nanochat's ``token_bytes`` (karpathy/nanochat, nanochat/loss_eval.py). For a byte-level tokenizer (the trained BPE,
    GPT-2's and Llama 3's) it is exact: each character of a token's string is one byte, so the bytes of a run of tokens
    are exactly the UTF-8 bytes of the text they encode, however the run cuts a multi-byte character. For other
    tokenizers it is, as in nanochat, the UTF-8 length of the token decoded on its own."""
    n = tok.get_vocab_size(with_added_tokens=True)
    out = np.zeros(n, dtype=np.int64)
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    byte_level = _is_byte_level(tok)
    if byte_level:
        from tokenizers import pre_tokenizers

        alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    for s, i in tok.get_vocab(with_added_tokens=True).items():
        if s in special or i >= n:
            continue
        if byte_level and all(c in alphabet for c in s):
            out[i] = len(s)
        else:
            out[i] = len(tok.decode([i], skip_special_tokens=False).encode("utf-8"))
    return out


def _batches(docs: Iterator[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    size = 0
    for d in docs:
        batch.append(d)
        size += len(d)
        if size >= ENCODE_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def encode_to(tok, docs: Iterator[str], out, dtype, eot: int | None, total_chars: int | None = None) -> tuple[int, int]:
    """Encode ``docs`` a batch at a time and append each document's ids (then ``eot``, where there is one) to the open
    binary file ``out`` as ``dtype``. Returns (tokens written, UTF-8 bytes of text read). A progress bar on stderr
    counts the text read (when stderr is a terminal)."""
    from tqdm import tqdm

    encode = getattr(tok, "encode_batch_fast", tok.encode_batch)  # fast: no offsets (tokenizers >= 0.20)
    n_tokens = n_bytes = 0
    with tqdm(
        total=total_chars, unit="B", unit_scale=True, desc="[data] tokenizing", file=sys.stderr, disable=None
    ) as bar:
        for batch in _batches(docs):
            encs = encode(batch, add_special_tokens=False)
            pieces = []
            for d, enc in zip(batch, encs):
                pieces.append(np.asarray(enc.ids, dtype=dtype))
                if eot is not None and not isinstance(d, Piece):  # a piece: the document goes on
                    pieces.append(np.asarray([eot], dtype=dtype))
            arr = np.concatenate(pieces) if pieces else np.zeros(0, dtype=dtype)
            arr.tofile(out)
            n_tokens += len(arr)
            b = sum(len(d.encode("utf-8")) for d in batch)
            n_bytes += b
            bar.update(b)
            del encs, pieces, arr
    return n_tokens, n_bytes
