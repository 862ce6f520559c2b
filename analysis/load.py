"""Run directories -> pandas DataFrames: the runs table (one row a run) and the curves table (one row a logged step).

Everything is read through ``scaling.records``, the schema both sides share. Runs that cannot be fitted (still
running, failed, diverged, unreadable, no final validation loss) are left out with a ``RunExcludedWarning`` that names
the run and the reason, so a half-finished sweep can still be analysed and nothing is dropped silently.

Canonical columns every fit uses by default (see .notes/analysis_contract.md):

    N       parameters under the chosen convention ("non_embedding" or "total")
    D       training tokens
    C       training FLOPs under the chosen convention (one of scaling.records.FLOP_CONVENTIONS)
    loss    final validation loss, nats/token
    budget  the compute target the run was sized from (NaN when tokens were given directly)
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from scaling import records

PARAMS_CONVENTIONS = ("non_embedding", "total")
DEFAULT_FLOPS = "chinchilla"
DEFAULT_PARAMS = "non_embedding"

CURVE_COLUMNS = [
    "run_id", "step", "N", "D", "C", "train_loss", "val_loss", "loss", "lr", "schedule_complete", "budget",
    "tokens_per_second",
]


class RunExcludedWarning(UserWarning):
    """A run directory was left out of the analysis; the message names the run and the reason."""


def _check_conventions(flops: str, params: str) -> None:
    if flops not in records.FLOP_CONVENTIONS:
        raise ValueError(f"argument flops={flops!r}: must be one of {records.FLOP_CONVENTIONS}")
    if params not in PARAMS_CONVENTIONS:
        raise ValueError(f"argument params={params!r}: must be one of {PARAMS_CONVENTIONS}")


def _run_dirs(path) -> list[Path]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep directory {str(path)!r} does not exist")
    if not path.is_dir():
        raise NotADirectoryError(f"sweep directory {str(path)!r} is a file, not a directory of runs")
    dirs = list(records.iter_run_dirs(path))
    if not dirs:
        raise FileNotFoundError(
            f"no run directories under {str(path)!r}: expected <sweep>/<run_id>/ folders holding "
            f"{records.SUMMARY_FILE}, {records.METRICS_FILE} and {records.CONFIG_FILE}"
        )
    return dirs


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _exclusion_reason(summary: records.RunSummary, flops: str, params: str) -> str | None:
    """Why a readable run cannot be fitted, or None when it can."""
    if summary.status != records.STATUS_COMPLETE:
        why = f"status {summary.status!r}"
        return f"{why}: {summary.reason}" if summary.reason else why
    if not _finite(summary.final_val_loss):
        return f"status 'complete' but final_val_loss={summary.final_val_loss!r} is not a finite number"
    if not _finite(summary.flops.get(flops)):
        return (f"summary has no FLOP count under convention {flops!r} "
                f"(recorded: {sorted(summary.flops)})")
    n = summary.params_non_embedding if params == "non_embedding" else summary.params_total
    if not n or n <= 0:
        return f"params_{params}={n!r} is not a positive parameter count"
    if not summary.tokens or summary.tokens <= 0:
        return f"tokens={summary.tokens!r} is not a positive token count"
    return None


def scan_runs(path, *, flops: str = DEFAULT_FLOPS, params: str = DEFAULT_PARAMS) -> pd.DataFrame:
    """Every run directory under ``path`` with whether it can be fitted: columns run_id, run_dir, status, usable,
    reason. Unreadable directories are listed too (status "unreadable"). Issues no warnings; ``load_runs`` does."""
    _check_conventions(flops, params)
    rows = []
    for d in _run_dirs(path):
        try:
            s = records.read_summary(d)
        except FileNotFoundError:
            rows.append(dict(run_id=d.name, run_dir=str(d), status="unreadable", usable=False,
                             reason=f"no {records.SUMMARY_FILE} (the run never finished its first summary)"))
            continue
        except (ValueError, TypeError, OSError) as e:  # JSONDecodeError is a ValueError
            rows.append(dict(run_id=d.name, run_dir=str(d), status="unreadable", usable=False,
                             reason=f"unreadable {records.SUMMARY_FILE}: {type(e).__name__}: {e}"))
            continue
        reason = _exclusion_reason(s, flops, params)
        rows.append(dict(run_id=s.run_id, run_dir=str(d), status=s.status, usable=reason is None, reason=reason))
    return pd.DataFrame(rows, columns=["run_id", "run_dir", "status", "usable", "reason"])


def _warn_excluded(scan: pd.DataFrame, stacklevel: int = 3) -> None:
    for r in scan[~scan["usable"]].itertuples():
        warnings.warn(f"run {r.run_id!r} excluded ({r.run_dir}): {r.reason}", RunExcludedWarning,
                      stacklevel=stacklevel)


def _no_usable_runs(path, scan: pd.DataFrame) -> ValueError:
    reasons = "; ".join(f"{r.run_id}: {r.reason}" for r in scan.itertuples())
    return ValueError(f"no usable runs under {str(path)!r} ({len(scan)} run directories, all excluded: {reasons})")


def load_runs(path, *, flops: str = DEFAULT_FLOPS, params: str = DEFAULT_PARAMS) -> pd.DataFrame:
    """One row a finished run under ``path`` (a sweep folder, a folder of sweeps, or a single run).

    Columns: every field of ``RunSummary.flatten()`` (flops_<conv>, flops_per_token_<conv>, version_<pkg>, ...),
    ``run_dir``, ``tokens_per_param``, and the canonical N, D, C, loss, budget (see the module docstring).
    ``flops`` picks the FLOP convention for C and ``params`` the parameter convention for N; both are recorded in
    ``df.attrs["flops_convention"]`` / ``df.attrs["params_convention"]``, where every fit picks them up.

    Raises FileNotFoundError for a missing or empty directory and ValueError when no run is usable. Every excluded
    run issues a RunExcludedWarning naming it and the reason.
    """
    scan = scan_runs(path, flops=flops, params=params)
    _warn_excluded(scan)
    usable = scan[scan["usable"]]
    if usable.empty:
        raise _no_usable_runs(path, scan)
    rows = []
    for d in usable["run_dir"]:
        s = records.read_summary(Path(d))
        row = s.flatten()
        row["run_dir"] = d
        row["N"] = float(s.params_non_embedding if params == "non_embedding" else s.params_total)
        row["D"] = float(s.tokens)
        row["C"] = float(s.flops[flops])
        row["loss"] = float(s.final_val_loss)
        row["budget"] = float(s.budget) if _finite(s.budget) else np.nan
        rows.append(row)
    df = pd.DataFrame(rows)
    df["tokens_per_param"] = df["D"] / df["N"]
    df = df.sort_values(["budget", "N", "run_id"], na_position="last").reset_index(drop=True)
    df.attrs.update(flops_convention=flops, params_convention=params, source=str(path))
    return df


def load_curves(path, *, flops: str = DEFAULT_FLOPS, params: str = DEFAULT_PARAMS) -> pd.DataFrame:
    """One row per logged optimizer step of every finished run under ``path``.

    Columns: run_id, step, N, D (cumulative tokens after the step), C (cumulative FLOPs under ``flops``),
    train_loss, val_loss (NaN where no evaluation ran), loss (= val_loss), lr, schedule_complete (the points
    Approach 1 may use), budget, tokens_per_second. Exclusions as in ``load_runs``, plus runs whose
    metrics.parquet is missing or unreadable.
    """
    scan = scan_runs(path, flops=flops, params=params)
    frames = []
    for i, r in scan[scan["usable"]].iterrows():
        d = Path(r["run_dir"])
        try:
            m = records.read_metrics(d)
        except FileNotFoundError:
            scan.loc[i, ["usable", "reason"]] = [False, f"no {records.METRICS_FILE}"]
            continue
        except Exception as e:  # pyarrow raises its own error types for a corrupt file
            scan.loc[i, ["usable", "reason"]] = [False, f"unreadable {records.METRICS_FILE}: "
                                                        f"{type(e).__name__}: {e}"]
            continue
        if m.empty:
            scan.loc[i, ["usable", "reason"]] = [False, f"{records.METRICS_FILE} has no rows"]
            continue
        s = records.read_summary(d)
        frames.append(pd.DataFrame({
            "run_id": s.run_id,
            "step": m["step"].to_numpy(dtype=np.int64),
            "N": float(s.params_non_embedding if params == "non_embedding" else s.params_total),
            "D": m["tokens"].to_numpy(dtype=float),
            "C": m[f"flops_{flops}"].to_numpy(dtype=float),
            "train_loss": m["train_loss"].to_numpy(dtype=float),
            "val_loss": m["val_loss"].to_numpy(dtype=float),
            "loss": m["val_loss"].to_numpy(dtype=float),
            "lr": m["lr"].to_numpy(dtype=float),
            "schedule_complete": m["schedule_complete"].fillna(False).to_numpy(dtype=bool),
            "budget": float(s.budget) if _finite(s.budget) else np.nan,
            "tokens_per_second": m["tokens_per_second"].to_numpy(dtype=float),
        }))
    _warn_excluded(scan)
    if not frames:
        raise _no_usable_runs(path, scan)
    df = pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]
    df = df.sort_values(["run_id", "step"]).reset_index(drop=True)
    df.attrs.update(flops_convention=flops, params_convention=params, source=str(path))
    return df
