"""Whether sweeps can be compared at all, decided before any fit: one line naming what differs when they cannot.

Two sweeps are comparable when their compute axes mean the same thing (the same FLOP convention: a harness sweep
records every convention per run, so loading both under one convention is an exact conversion; a plain table
carries only its own), their model sizes are counted the same way, their metric is the same quantity on the same
scale (a per-token loss only under one tokenizer; bits per byte across tokenizers), and each has at least two
budgets (a frontier along C needs more than one point of C).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_BUDGETS = 2
TOKENIZER_FREE_METRICS = ("bpb", "bits_per_byte")  # metrics on a scale that does not depend on the tokenizer


class CompareError(ValueError):
    """Two sweeps cannot be compared; the message is one line saying why."""


def n_budgets(runs: pd.DataFrame) -> int:
    col = runs["budget"] if "budget" in runs.columns and runs["budget"].notna().all() else runs["C"]
    return int(pd.Series(np.round(np.log10(col.to_numpy(float)), 2)).nunique())


def check_comparable(names: list[str], tables: list[pd.DataFrame], metric: str = "loss") -> None:
    """Raise ``CompareError`` (one line) unless every table can be put on one frontier plot with the others."""
    if len(tables) < 2:
        raise CompareError(f"compare: needs at least two sweeps, got {len(tables)}")
    if not isinstance(metric, str) or not metric:
        raise CompareError(f"compare: metric={metric!r}; must be a column name such as 'loss' or 'bpb'")
    for name, t in zip(names, tables):
        missing = [c for c in ("N", "D", "C", metric) if c not in t.columns]
        if missing:
            raise CompareError(f"compare: sweep {name} has no column(s) {missing} (metric={metric!r})")
        if len(t) == 0:
            raise CompareError(f"compare: sweep {name} has no usable runs")
        v = pd.to_numeric(t[metric], errors="coerce").to_numpy(float)
        if not (np.isfinite(v) & (v > 0)).all():
            raise CompareError(
                f"compare: sweep {name}: metric {metric!r} must be a positive finite number in every run"
            )
        k = n_budgets(t)
        if k < MIN_BUDGETS:
            raise CompareError(
                f"compare: sweep {name} has {k} budget(s); a compute-optimal frontier needs at least {MIN_BUDGETS} "
                "(3 or more to test its exponent)"
            )
    for attr, what in (("flops_convention", "FLOP convention"), ("params_convention", "parameter convention")):
        vals = [t.attrs.get(attr, "unknown") for t in tables]
        if len(set(vals)) > 1:
            raise CompareError(
                f"compare: the sweeps' {what}s differ ({', '.join(f'{n}: {v}' for n, v in zip(names, vals))}) and "
                "there is no exact conversion between them; load them under one convention (harness sweeps record "
                "every convention: --flops) or convert the tables first"
            )
    if metric not in TOKENIZER_FREE_METRICS:
        vocabs = [_vocab(t) for t in tables]
        known = [v for v in vocabs if v is not None]
        if len(set(known)) > 1:
            raise CompareError(
                f"compare: the sweeps use different tokenizers (vocab sizes {', '.join(map(str, vocabs))}); a "
                f"per-token {metric!r} is not comparable across them: compare bits per byte (--metric bpb)"
            )


def _vocab(t: pd.DataFrame):
    if "vocab_size" not in t.columns:
        return None
    v = pd.to_numeric(t["vocab_size"], errors="coerce").dropna().unique()
    return int(v[0]) if len(v) == 1 else (tuple(sorted(int(x) for x in v)) if len(v) else None)


def data_sources_note(names: list[str], tables: list[pd.DataFrame]) -> str:
    """A warning when the sweeps trained on different data (their losses are then measured on different text)."""
    srcs = [
        ",".join(sorted(t["data_source"].dropna().astype(str).unique())) if "data_source" in t.columns else ""
        for t in tables
    ]
    if len({s for s in srcs if s}) > 1:
        return (
            "the sweeps trained on different data ("
            + "; ".join(f"{n}: {s}" for n, s in zip(names, srcs))
            + "): each loss is measured on its own validation text, so the multiplier mixes recipe and data"
        )
    return ""
