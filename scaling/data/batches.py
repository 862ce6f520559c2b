"""A prepared dataset opened from the cache, and its batches: train windows a pure function of (seed, step, micro),
validation windows fixed and evenly spread, so a resumed run sees exactly the data it would have seen. A mixture
(meta.json ``segments``) draws each train window's source by its weight and spreads the validation windows over the
sources by the same weights. ``val_bytes_per_token`` turns a validation loss into bits per byte."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import numpy as np

from scaling.data.cache import rebuild_command, verify
from scaling.data.sources import window_entropy


class KnownEntropy(TypedDict, total=False):
    """RunSummary fields of a source whose entropy is known exactly (``Dataset.known_entropy``)."""

    data_entropy_rate: float
    data_loss_floor: float | None


@dataclass
class Dataset:
    path: Path
    meta: dict
    train: np.ndarray
    val: np.ndarray

    @property
    def vocab_size(self) -> int:
        return int(self.meta["vocab_size"])

    @property
    def checksum(self) -> str:
        return self.meta["files"]["train.bin"][:16]

    @classmethod
    def load(cls, path: Path, verified: bool = False) -> "Dataset":
        """Open a prepared dataset, checking its files against meta.json unless the caller just did (``verified``)."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text()) if verified else verify(path)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{e}. Prepare it with: {rebuild_command(path, force=False)}") from e
        except ValueError as e:
            raise ValueError(f"{e}. Rebuild it with: {rebuild_command(path)}") from e
        dt = np.dtype(meta["dtype"])
        return cls(
            path,
            meta,
            np.memmap(path / "train.bin", dtype=dt, mode="r"),
            np.memmap(path / "val.bin", dtype=dt, mode="r"),
        )

    def known_entropy(self, seq_len: int) -> KnownEntropy:
        """RunSummary fields for a source whose entropy is known exactly (synthetic ones), else {}: the entropy rate
        H and, where the source records its prefix entropies, the loss floor of a perfect model on windows of
        ``seq_len`` (see ``window_entropy``)."""
        if self.meta.get("entropy_rate_nats") is None:
            return {}
        h = float(self.meta["entropy_rate_nats"])
        prefix = self.meta.get("prefix_entropies_nats")
        return KnownEntropy(
            data_entropy_rate=h,
            data_loss_floor=window_entropy(h, prefix, seq_len) if prefix is not None else None,
        )

    def tokenizer(self):
        from tokenizers import Tokenizer

        f = self.path / "tokenizer.json"
        return Tokenizer.from_file(str(f)) if f.exists() else None

    @functools.cached_property
    def token_bytes(self) -> np.ndarray | None:
        """Bytes of text each token id stands for (scaling/data/tokenize.py token_bytes); None without a tokenizer."""
        from scaling.data.tokenize import token_bytes

        tok = self.tokenizer()
        return None if tok is None else token_bytes(tok)

    def val_bytes_per_token(self, n_tokens: int, seq_len: int) -> float | None:
        """UTF-8 bytes of text per target token over exactly the validation windows ``val_batches(n_tokens, ...,
        seq_len)`` yields; None where the data has no tokenizer (shards alone, synthetic sources).

        Bits per byte is then loss / ln 2 / this: the Pile's bits per UTF-8 encoded byte (Gao et al. 2020, "The
        Pile", arXiv:2101.00027: bpb = (L_T / L_B) x loss / ln 2, L_T tokens and L_B UTF-8 bytes of the text), with
        L_T and L_B counted over the very tokens the loss averaged. Each token's bytes are nanochat's ``token_bytes``
        (scaling/data/tokenize.py); <|endoftext|> counts 0 bytes (it is no text) while its prediction's loss stays in
        the numerator, as in the Pile's formula (nanochat's evaluate_bpb drops it from both)."""
        tb = self.token_bytes
        if tb is None:
            return None
        n_tok = n_bytes = 0
        for _, y in self.val_batches(n_tokens, 256, seq_len):
            n_tok += y.size
            n_bytes += int(tb[y].sum())
        return n_bytes / n_tok if n_bytes else None

    @property
    def segments(self) -> list[dict]:
        """A mixture's sources: each with its weight and its [start, end) token ranges in train and val."""
        return list(self.meta.get("segments") or ())

    def train_batch(
        self, seed: int, step: int, micro: int, batch_size: int, seq_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random windows of the train split, a pure function of (seed, step, micro). A mixture draws each window's
        source by weight, then its start inside that source's tokens (windows never straddle two sources)."""
        rng = np.random.default_rng([seed, step, micro])
        if not self.segments:
            n = len(self.train) - seq_len - 1
            if n <= 0:
                raise ValueError(f"train split has {len(self.train)} tokens, fewer than seq_len+1={seq_len + 1}")
            starts = rng.integers(0, n + 1, size=batch_size)
            return self._windows(self.train, starts, seq_len)
        segs = self.segments
        which = rng.choice(len(segs), size=batch_size, p=[s["weight"] for s in segs])
        starts = np.empty(batch_size, dtype=np.int64)
        for i, s in enumerate(segs):
            lo, hi = s["train"]
            if hi - lo - seq_len - 1 < 0 and (which == i).any():
                raise ValueError(f"mixture source {s['source']!r}: {hi - lo} train tokens, fewer than seq_len+1")
            starts[which == i] = lo + rng.integers(0, max(0, hi - lo - seq_len - 1) + 1, size=int((which == i).sum()))
        return self._windows(self.train, starts, seq_len)

    def val_batches(self, n_tokens: int, batch_size: int, seq_len: int):
        """Fixed, evenly spread, non-overlapping windows of the validation split (the same at every evaluation); a
        mixture's windows are shared out over its sources by weight (largest remainder), each spread over its own."""
        if self.segments:
            starts = self._mixture_val_starts(n_tokens, seq_len)
            for i in range(0, len(starts), batch_size):
                yield self._windows(self.val, starts[i : i + batch_size], seq_len)
            return
        n_windows = max(1, min(n_tokens // seq_len, (len(self.val) - 1) // seq_len))
        if (len(self.val) - 1) // seq_len < 1:
            raise ValueError(f"val split has {len(self.val)} tokens, fewer than seq_len+1={seq_len + 1}")
        stride = (len(self.val) - 1 - seq_len) // max(1, n_windows - 1) if n_windows > 1 else 0
        starts = np.arange(n_windows) * max(stride, seq_len) if n_windows > 1 else np.array([0])
        starts = starts[starts + seq_len + 1 <= len(self.val)]
        for i in range(0, len(starts), batch_size):
            yield self._windows(self.val, starts[i : i + batch_size], seq_len)

    def _mixture_val_starts(self, n_tokens: int, seq_len: int) -> np.ndarray:
        segs = self.segments
        total = max(1, n_tokens // seq_len)
        quota = [s["weight"] * total for s in segs]
        counts = [math.floor(q) for q in quota]
        for i in sorted(range(len(segs)), key=lambda i: counts[i] - quota[i])[: total - sum(counts)]:
            counts[i] += 1
        out = []
        for s, k in zip(segs, counts):
            lo, hi = s["val"]
            fit = (hi - lo - 1) // seq_len
            k = min(k, fit)
            if k <= 0:
                continue
            stride = max(seq_len, (hi - lo - 1 - seq_len) // max(1, k - 1)) if k > 1 else 0
            out.append(lo + np.arange(k) * stride)
        if not out:
            raise ValueError(f"val split: no mixture source holds seq_len+1={seq_len + 1} validation tokens")
        return np.concatenate(out)

    @staticmethod
    def _windows(arr: np.ndarray, starts: np.ndarray, seq_len: int):
        idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
        w = np.asarray(arr[idx], dtype=np.int64)
        return w[:, :-1], w[:, 1:]
