"""The model: the GPT-style decoder-only Transformer built from a family shape, and its memory estimate."""

from __future__ import annotations

from scaling.model.gpt import GPT  # noqa: F401
