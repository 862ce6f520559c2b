"""A prepared dataset opened from the cache, and its batches: train windows a pure function of (seed, step, micro),
validation windows fixed and evenly spread, so a resumed run sees exactly the data it would have seen."""

from __future__ import annotations

import json
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

    def train_batch(
        self, seed: int, step: int, micro: int, batch_size: int, seq_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Random windows of the train split, a pure function of (seed, step, micro)."""
        n = len(self.train) - seq_len - 1
        if n <= 0:
            raise ValueError(f"train split has {len(self.train)} tokens, fewer than seq_len+1={seq_len + 1}")
        rng = np.random.default_rng([seed, step, micro])
        starts = rng.integers(0, n + 1, size=batch_size)
        return self._windows(self.train, starts, seq_len)

    def val_batches(self, n_tokens: int, batch_size: int, seq_len: int):
        """Fixed, evenly spread, non-overlapping windows of the validation split (the same at every evaluation)."""
        n_windows = max(1, min(n_tokens // seq_len, (len(self.val) - 1) // seq_len))
        if (len(self.val) - 1) // seq_len < 1:
            raise ValueError(f"val split has {len(self.val)} tokens, fewer than seq_len+1={seq_len + 1}")
        stride = (len(self.val) - 1 - seq_len) // max(1, n_windows - 1) if n_windows > 1 else 0
        starts = np.arange(n_windows) * max(stride, seq_len) if n_windows > 1 else np.array([0])
        starts = starts[starts + seq_len + 1 <= len(self.val)]
        for i in range(0, len(starts), batch_size):
            yield self._windows(self.val, starts[i : i + batch_size], seq_len)

    @staticmethod
    def _windows(arr: np.ndarray, starts: np.ndarray, seq_len: int):
        idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
        w = np.asarray(arr[idx], dtype=np.int64)
        return w[:, :-1], w[:, 1:]
