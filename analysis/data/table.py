"""A table of runs someone else trained -> the runs DataFrame every fit reads (``analysis.data.load``'s columns).

Published sweeps come as tables, not run folders: one row a run with its parameters, tokens and final loss. A CSV
(``.csv`` or ``.csv.gz``) with these columns is read as one sweep:

    N, D, loss          required: parameters, training tokens, final loss (any positive scale, one per table)
    budget              optional: the IsoFLOP budget the run belongs to (default: its C)
    C                   optional: training FLOPs; without it C = 6 N D and the FLOP convention is "6n"
    flops_convention    required with C (one value): how C was counted, e.g. 6n, chinchilla
    params_convention   optional (one value): how N was counted, e.g. non_embedding, total (default "as given")
    vocab_size, data_source, seed, wall_seconds    optional, as in a harness sweep

Every other column is kept. The conventions go into ``attrs`` as ``load_runs`` puts them, so ``analysis compare``
refuses a table and a sweep (or two tables) whose conventions differ, as it does for two sweeps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ("N", "D", "loss")
AS_GIVEN = "as given"


def is_table(path) -> bool:
    """Whether ``path`` names a table of runs (a CSV file) rather than a sweep folder."""
    name = Path(path).name.lower()
    return name.endswith(".csv") or name.endswith(".csv.gz")


def _one_value(df: pd.DataFrame, col: str, path: Path):
    vals = df[col].dropna().astype(str).unique()
    if len(vals) != 1:
        raise ValueError(f"table {path}: column {col!r} must hold one value for every row, found {list(vals)[:5]}")
    return str(vals[0])


def load_table(path) -> pd.DataFrame:
    """Read a table of runs (see the module docstring); one-line ``ValueError`` naming the column otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"table {path} does not exist")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"table {path}: not a readable CSV ({type(e).__name__}: {e})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ValueError(f"table {path}: missing column(s) {missing}; a table needs {list(REQUIRED)}")
    for col in ("N", "D", "loss") + tuple(c for c in ("C", "budget") if c in df.columns):
        v = pd.to_numeric(df[col], errors="coerce").to_numpy(float)
        bad = ~(np.isfinite(v) & (v > 0))
        if bad.any():
            raise ValueError(
                f"table {path}: column {col!r} must be a positive finite number in every row "
                f"(row {int(np.argmax(bad)) + 2} of the file is not)"
            )
        df[col] = v
    if "C" in df.columns:
        if "flops_convention" not in df.columns:
            raise ValueError(
                f"table {path}: column 'C' needs a 'flops_convention' column saying how it was counted (e.g. 6n); "
                "or drop C to use C = 6 N D"
            )
        flops = _one_value(df, "flops_convention", path)
    else:
        df["C"] = 6.0 * df["N"] * df["D"]
        flops = "6n"
        if "flops_convention" in df.columns and _one_value(df, "flops_convention", path) != "6n":
            raise ValueError(f"table {path}: flops_convention says how C was counted, but the table has no column C")
    params = _one_value(df, "params_convention", path) if "params_convention" in df.columns else AS_GIVEN
    if "budget" not in df.columns:
        df["budget"] = df["C"]
    if "run_id" not in df.columns:
        df["run_id"] = [f"{path.stem}-{i}" for i in range(len(df))]
    df.attrs = dict(flops_convention=flops, params_convention=params, source=str(path))
    return df
