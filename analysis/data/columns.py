"""Checking the columns a fit reads: each role (N, D, C, loss) taken from a DataFrame as floats, with errors that
name the column, the argument that names it, the row and what is allowed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class FitError(ValueError):
    """The data cannot be fitted as asked; the message names the argument or column, the value and what is allowed."""


def take(
    df: Any,
    fn: str,
    arg: str = "runs",
    *,
    min_rows: int = 1,
    drop_nan: tuple[str, ...] = (),
    positive: tuple[str, ...] = (),
    **roles: str,
) -> pd.DataFrame:
    """Columns of ``df`` named by ``roles`` (role=column, the role N naming argument n_col and so on), as floats
    under the role names, checked. ``positive`` roles must be finite and > 0; rows where a ``drop_nan`` role is NaN
    are dropped (curves carry NaN losses at steps without an evaluation)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{fn}: {arg} must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise FitError(
            f"{fn}: {arg} is empty (0 rows); it needs rows with columns {', '.join(repr(c) for c in roles.values())}"
        )
    out = {}
    for role, col in roles.items():
        if col not in df.columns:
            argname = f"{role.lower()}_col"
            raise FitError(
                f"{fn}: column {col!r} ({argname}) is not in {arg}; its columns are {list(df.columns)}. "
                f"Pass {argname}= to name yours"
            )
        s = df[col]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise FitError(
                f"{fn}: column {col!r} ({role.lower()}_col) must be numeric; it has dtype {s.dtype} "
                f"(first value {s.iloc[0]!r})"
            )
        out[role] = s.astype(float)
    t = pd.DataFrame(out, index=df.index)
    for role in drop_nan:
        if role in t:
            t = t[t[role].notna()]
    for role in positive:
        if role not in t:
            continue
        v = t[role].to_numpy()
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise FitError(
                f"{fn}: column {roles[role]!r} ({role.lower()}_col) must be finite and > 0; "
                f"row {t.index[i]!r} has {float(v[i])!r} ({int(bad.sum())} bad row(s) in all)"
            )
    if len(t) < min_rows:
        raise FitError(f"{fn}: {arg} has {len(t)} usable row(s); at least {min_rows} are needed")
    return t


def unique_index(df: Any) -> Any:
    """``df`` with a unique index (bootstrap resamples repeat rows), so rows can be picked back out by label."""
    if isinstance(df, pd.DataFrame) and not df.index.is_unique:
        attrs = dict(df.attrs)
        df = df.reset_index(drop=True)
        df.attrs.update(attrs)
    return df


def conventions(df: pd.DataFrame) -> tuple[str, str]:
    """(FLOP convention, parameter convention) recorded in ``df.attrs`` by ``load_runs``; "unknown" if absent."""
    attrs = getattr(df, "attrs", {}) or {}
    return str(attrs.get("flops_convention", "unknown")), str(attrs.get("params_convention", "unknown"))
