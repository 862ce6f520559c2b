"""How numbers are written, in one place: reprs of fit results, figure labels, markdown tables and the CLI."""

from __future__ import annotations

import math

import numpy as np


def short(x: float) -> str:
    """A compact number for a result's repr: 4 significant figures, scientific outside [1e-2, 1e4)."""
    if x is None or np.isnan(x):
        return "nan"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-2):
        return f"{x:.3g}"
    return f"{x:.4g}"


def sci(x: float, digits: int = 2) -> str:
    """1.5e+21 -> '1.5e21', for labels and tables."""
    if x is None or not np.isfinite(x):
        return "n/a"
    m, e = f"{x:.{digits - 1}e}".split("e")
    m = m.rstrip("0").rstrip(".") if "." in m else m
    return f"{m}e{int(e)}"


def fmt(x, kind: str = "sci") -> str:
    """Table cells: "sci" for counts and FLOPs, "loss" for losses, "exp" for exponents, "pct" for errors, "int" for
    whole numbers, "g" for anything else; booleans as yes/no, missing values as an en dash."""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, str):
        return x
    x = float(x)
    if not math.isfinite(x):
        return "–"
    if kind == "sci":
        return sci(x, 3)
    if kind == "loss":
        return f"{x:.4f}"
    if kind == "exp":
        return f"{x:.3f}"
    if kind == "pct":
        return f"{100 * x:+.1f}%"
    if kind == "int":
        return f"{x:,.0f}"
    return sci(x, 3) if x != 0 and not 1e-3 <= abs(x) < 1e4 else f"{x:.4g}"


def with_interval(est, lo=None, hi=None, kind: str = "sci") -> str:
    """``est [lo, hi]``, or ``est`` alone where the interval is missing."""
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return fmt(est, kind)
    return f"{fmt(est, kind)} [{fmt(lo, kind)}, {fmt(hi, kind)}]"


def md_table(rows: list[list], header: list[str]) -> str:
    """A markdown table: ``header`` then one line a row (a ``|`` or newline inside a cell is escaped)."""

    def cell(v):
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
