"""A user's own model class: ``model.arch=<module>:<Class>``, loaded, checked and registered before any compute.

The protocol (``UserModel``), small on purpose:

- ``Class(shape)`` builds the model from a ``scaling.core.family.Shape`` (n_layer, d_model, n_head, d_ff from the
  family rule with the GPT MLP width, vocab_size, seq_len, tie_embeddings); it is an ``nn.Module``.
- ``model(idx, targets=None)`` returns ``(logits, loss)``: logits (B, T, vocab_size), the mean cross-entropy when
  targets are given (else None).
- ``Class.param_counts(shape)`` (a static or class method, no module built) returns ``{"total": ..., "embedding":
  ...}`` (ints; non-embedding N = total - embedding). The harness checks ``total`` against the built module's own
  ``sum(p.numel() for p in model.parameters())`` and refuses the class when they differ.
- optionally ``Class.flops_per_token(shape)`` returns training FLOPs per token under every convention of
  scaling.core.records.FLOP_CONVENTIONS. Without it the harness measures them once per shape with
  ``torch.utils.flop_counter.FlopCounterMode`` on a forward and backward pass of one sequence (attention forced onto
  SDPA's math backend, which the counter sees; it counts matmuls only), and records that it did
  (``flops_source = "flop_counter"`` in summary.json): every convention then holds the measured count, except
  ``6n``, which is 6 N from the class's own parameter count.

Errors are one line and name ``model.arch``: module not found, class not found, not an ``nn.Module``, a method of
the protocol missing, counts that are not integers, a parameter count that disagrees with the module.
"""

from __future__ import annotations

import importlib
import math
import sys
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn

from scaling.core import archs
from scaling.core.family import Shape
from scaling.core.records import FLOP_CONVENTIONS

FLOPS_ANALYTIC = "analytic"
FLOPS_MEASURED = "flop_counter"


@runtime_checkable
class UserModel(Protocol):
    """What ``model.arch=<module>:<Class>`` must name (besides being an nn.Module built as ``Class(shape)``)."""

    @staticmethod
    def param_counts(shape: Shape) -> dict[str, int]: ...

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, Any]: ...


class UserArch:
    """scaling.core.archs.Arch for a checked user class: counts from the class, FLOPs from it or measured."""

    mlp_matrices = 2  # the family rule's MLP width is GPT's; the class may use it as it likes

    def __init__(self, name: str, cls: type):
        self.name, self.cls = name, cls
        self.source = FLOPS_ANALYTIC if callable(getattr(cls, "flops_per_token", None)) else FLOPS_MEASURED

    def d_ff(self, d_model: int, mlp_ratio: int, ffn_multiple: int) -> int:
        return mlp_ratio * d_model

    def params_embedding(self, shape: Shape) -> int:
        return _counts(self.name, self.cls, shape)["embedding"]

    def params_non_embedding(self, shape: Shape) -> int:
        c = _counts(self.name, self.cls, shape)
        return c["total"] - c["embedding"]

    def forward_terms(self, shape: Shape, *, embeddings: bool = True) -> dict[str, int]:
        raise ValueError(f"model.arch={self.name!r}: a user's class has no term-by-term FLOP count")

    def flops_per_token(self, shape: Shape) -> dict[str, float] | None:
        if self.source == FLOPS_ANALYTIC:
            return _checked_flops(self.name, self.cls.flops_per_token(shape))  # type: ignore[attr-defined]
        measured = measure_flops_per_token(self.cls, shape)
        out = {c: measured for c in FLOP_CONVENTIONS}
        out["6n"] = 6.0 * self.params_non_embedding(shape)
        return out


def load(name: str) -> UserArch:
    """Import ``<module>:<Class>``, check it follows the protocol, register it in scaling.core.archs. ValueError with
    one line naming model.arch otherwise. Idempotent."""
    archs.check_name(name)
    mod_name, _, cls_name = name.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise ValueError(f"model.arch={name!r}: module {mod_name!r} not found ({e})") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise ValueError(f"model.arch={name!r}: module {mod_name!r} has no class {cls_name!r}")
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"model.arch={name!r}: {cls_name} is not a torch.nn.Module subclass")
    missing = [m for m in ("param_counts", "forward") if not callable(getattr(cls, m, None))]
    if missing:
        raise ValueError(
            f"model.arch={name!r}: {cls_name} does not follow the protocol (scaling/model/user.py): "
            f"missing {', '.join(missing)}"
        )
    arch = UserArch(name, cls)
    if not (archs.registered(name) and getattr(archs.get(name), "cls", None) is cls):
        archs.register(name, arch)
    return arch


def check(arch: UserArch, shape: Shape) -> None:
    """Build the class on the meta device (no memory, no compute) and compare its parameter count with the one it
    reports; ValueError with one line otherwise."""
    counts = _counts(arch.name, arch.cls, shape)
    with torch.device("meta"):
        try:
            model = arch.cls(shape)
        except Exception as e:  # the user's constructor: any failure is theirs, reported in one line
            raise ValueError(f"model.arch={arch.name!r}: {arch.cls.__name__}(shape) failed: {e}") from None
    own = sum(p.numel() for p in model.parameters())
    if own != counts["total"]:
        raise ValueError(
            f"model.arch={arch.name!r}: {arch.cls.__name__}.param_counts gives total={counts['total']:,}, its modules "
            f"hold {own:,} parameters (shape {shape.describe()})"
        )


def _counts(name: str, cls: type, shape: Shape) -> dict[str, int]:
    try:
        c = cls.param_counts(shape)  # type: ignore[attr-defined]
    except Exception as e:
        raise ValueError(f"model.arch={name!r}: {cls.__name__}.param_counts(shape) failed: {e}") from None
    if not isinstance(c, dict) or any(not isinstance(c.get(k), int) or c[k] < 0 for k in ("total", "embedding")):
        raise ValueError(
            f"model.arch={name!r}: {cls.__name__}.param_counts must return {{'total': int, 'embedding': int}}, "
            f"got {c!r}"
        )
    if c["embedding"] >= c["total"]:
        raise ValueError(f"model.arch={name!r}: param_counts embedding={c['embedding']} must be < total={c['total']}")
    return c


def _checked_flops(name: str, got: Any) -> dict[str, float]:
    ok = isinstance(got, dict) and all(
        isinstance(got.get(c), (int, float)) and math.isfinite(got[c]) and got[c] > 0 for c in FLOP_CONVENTIONS
    )
    if not ok:
        raise ValueError(
            f"model.arch={name!r}: flops_per_token must return a positive number for each of {FLOP_CONVENTIONS}, "
            f"got {got!r}"
        )
    return {c: float(got[c]) for c in FLOP_CONVENTIONS}


@lru_cache(maxsize=256)
def measure_flops_per_token(cls: type, shape: Shape) -> float:
    """Training FLOPs per token of ``cls(shape)`` measured by torch's flop counter: one forward and backward pass of
    one sequence of seq_len tokens on CPU, divided by seq_len. Once per (class, shape) in a process."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = cls(shape)
    idx = torch.randint(0, shape.vocab_size, (1, shape.seq_len + 1))
    # SDPA's math backend: the counter has no entry for CPU's fused flash kernel, so attention would count as nothing
    with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
        _, loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
    per_token = float(counter.get_total_flops()) / shape.seq_len
    print(
        f"[model] {cls.__name__}: {per_token:,.0f} training FLOPs per token measured by torch's flop counter for "
        f"{shape.describe()}",
        file=sys.stderr,
    )
    return per_token
