"""Run directories -> pandas DataFrames: the runs table (one row a run) and the curves table (one row a logged step).

Everything is read through ``scaling.core.records``, the schema both sides share. Runs that cannot be fitted (still
running, failed, diverged; a missing, truncated or hand-edited file; a summary that contradicts its metrics; a
second copy of a run id; a run the quality gate of ``analysis.data.quality`` flags) are left out with a
``RunExcludedWarning`` that names the run and the reason, and ``scan_runs`` lists every one of them, so a
half-finished or damaged sweep can still be analysed and nothing is dropped silently or counted twice.

Canonical columns every fit uses by default (see .notes/analysis_contract.md):

    N       parameters under the chosen convention ("non_embedding" or "total")
    D       training tokens
    C       training FLOPs under the chosen convention (one of scaling.core.records.FLOP_CONVENTIONS)
    loss    final validation loss: nats/token, or with ``metric="bpb"`` bits per UTF-8 byte (runs without bpb, whose
            data has no text, are then left out and say so)
    budget  the compute target the run was sized from (NaN when tokens were given directly)
    loss_predicted  True where ``loss`` is an early-stopped run's predicted end, not a measured loss (below)

Early-stopped runs (status ``stopped``: ``train.early_stop_frac``, scaling/train/callbacks/early_stop.py) have no
final loss, only the end the early stop predicted (the sweep prior's or the Tissue law's, as the summary's reason
says: ``predicted_final_loss[_lo|_hi]``, on
the measure of the intermediate evaluations: the fixed ``train.eval_tokens`` subset). ``stopped="out"`` leaves
them out like any unfinished run; ``stopped="predicted"`` (the default here and in the report, so that a notebook
and the report fit the same runs) keeps them with ``loss`` their
predicted end mapped onto the final loss's measure by the subset -> final offset (final_val_loss -
final_subset_val_loss, as ``analysis.curves.schedule.final_offset``); a stopped run has none of its own, so the
median offset of the complete runs of its sweep folder is added (``loss_offset`` says how much;
scaling/core/stopped.py, the rule the sequential sweep's planner reads them with too). Such a run's
``loss_predicted`` is True; without a complete run that logged its offset it is left out, with the reason.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np
import pandas as pd

from scaling.core import records
from scaling.core import stopped as stopped_rule

PARAMS_CONVENTIONS = ("non_embedding", "total")
METRICS = ("loss", "bpb")  # what the canonical loss column holds: nats per token, or bits per UTF-8 byte
NO_BPB = (
    "no bits per byte recorded: its data has no text (token shards without a tokenizer, a synthetic source), or the "
    "run predates bits per byte"
)
STOPPED = ("out", "predicted")  # what the loader does with an early-stopped run: leave it out, or keep its prediction
STOPPED_NO_BPB = "stopped early: its predicted end is in nats per token; it has no bits per byte"
NO_OFFSET = (
    "stopped early, and no complete run of its sweep folder logged its final subset loss (final_subset_val_loss): "
    "its predicted end, on the intermediate evaluations' subset, cannot be mapped onto the final loss's measure"
)
DEFAULT_FLOPS = "chinchilla"
DEFAULT_PARAMS = "non_embedding"

CURVE_COLUMNS = [
    "run_id",
    "step",
    "N",
    "D",
    "C",
    "train_loss",
    "val_loss",
    "loss",
    "lr",
    "schedule_complete",
    "budget",
    "tokens_per_second",
]


class RunExcludedWarning(UserWarning):
    """A run directory was left out of the analysis; the message names the run and the reason."""


def _check_conventions(flops: str, params: str, metric: str = "loss", stopped: str = "predicted") -> None:
    if stopped not in STOPPED:
        raise ValueError(f"argument stopped={stopped!r}: must be one of {STOPPED}")
    if metric not in METRICS:
        raise ValueError(f"argument metric={metric!r}: must be one of {METRICS}")
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


def _finite(x: object) -> TypeGuard[float]:
    return x is not None and isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) + 1e-9


def _kept_stopped(summary: records.RunSummary, stopped: str) -> bool:
    """Whether ``summary`` is an early-stopped run the loader keeps at its predicted end."""
    return stopped == "predicted" and summary.status == records.STATUS_STOPPED


def _exclusion_reason(
    summary: records.RunSummary, flops: str, params: str, metric: str = "loss", stopped: str = "predicted"
) -> str | None:
    """Why a readable summary cannot be fitted, or None when it can. Hand-edited values of the wrong type or sign,
    and numbers that contradict each other, are reasons too. With ``stopped="predicted"`` an early-stopped run is
    judged on its predicted end instead of a final loss."""
    predicted = _kept_stopped(summary, stopped)
    if summary.status != records.STATUS_COMPLETE and not predicted:
        why = f"status {summary.status!r}"
        return f"{why}: {summary.reason}" if summary.reason else why
    if not isinstance(summary.run_id, str) or not summary.run_id.strip():
        return f"summary field run_id={summary.run_id!r} is not a non-empty string"
    for name in ("flops", "flops_per_token", "versions"):
        if not isinstance(getattr(summary, name), dict):
            return f"summary field {name}={getattr(summary, name)!r:.100} is not a mapping"
    if predicted:
        p = summary.predicted_final_loss
        if not (_finite(p) and p > 0):
            return f"status 'stopped' but predicted_final_loss={p!r} is not a positive finite number"
        if not (_finite(summary.stopped_step) and summary.stopped_step >= 1):
            return f"status 'stopped' but stopped_step={summary.stopped_step!r} is not a step >= 1"
        if metric == "bpb":
            return STOPPED_NO_BPB
    else:
        if not _finite(summary.final_val_loss):
            return f"status 'complete' but final_val_loss={summary.final_val_loss!r} is not a finite number"
        if summary.final_val_loss < 0:
            return f"final_val_loss={summary.final_val_loss!r} is negative; a cross-entropy is >= 0"
        if metric == "bpb" and not (_finite(summary.final_val_bpb) and summary.final_val_bpb >= 0):
            return NO_BPB
    if not isinstance(summary.flops, dict) or not _finite(summary.flops.get(flops)):
        recorded = sorted(summary.flops) if isinstance(summary.flops, dict) else summary.flops
        return f"summary has no FLOP count under convention {flops!r} (recorded: {recorded!r})"
    if summary.flops[flops] <= 0:
        return f"flops[{flops!r}]={summary.flops[flops]!r} is not a positive FLOP count"
    n = summary.params_non_embedding if params == "non_embedding" else summary.params_total
    if not _finite(n) or n <= 0:
        return f"params_{params}={n!r} is not a positive parameter count"
    if not _finite(summary.tokens) or summary.tokens <= 0:
        return f"tokens={summary.tokens!r} is not a positive token count"
    if not _finite(summary.tokens_trained) or summary.tokens_trained < 0:
        return f"tokens_trained={summary.tokens_trained!r} is not a token count >= 0"
    if summary.budget is not None and not (_finite(summary.budget) and summary.budget > 0):
        return f"budget={summary.budget!r} is neither null nor a positive number of FLOPs"
    if (
        _finite(summary.steps)
        and _finite(summary.tokens_per_step)
        and summary.steps > 0
        and summary.tokens_per_step > 0
        and summary.steps * summary.tokens_per_step != summary.tokens
    ):
        return (
            f"summary contradicts itself: tokens={summary.tokens!r} but steps*tokens_per_step="
            f"{summary.steps!r}*{summary.tokens_per_step!r}"
        )
    fpt = summary.flops_per_token.get(flops) if isinstance(summary.flops_per_token, dict) else None
    if _finite(fpt) and not _close(fpt * summary.tokens, summary.flops[flops]):
        return (
            f"summary contradicts itself: flops[{flops!r}]={summary.flops[flops]:.6g} but "
            f"flops_per_token*tokens={fpt * summary.tokens:.6g}"
        )
    return None


def _config_reason(run_dir: Path) -> str | None:
    f = run_dir / records.CONFIG_FILE
    try:
        st = f.stat()
    except FileNotFoundError:
        return f"no {records.CONFIG_FILE} (the run cannot be reproduced from this directory)"
    except OSError:
        st = None
    # a report loads the sweep ~10 times (every FLOP and parameter convention): each file is parsed once a process
    key = (str(f), st.st_mtime_ns, st.st_size) if st is not None else None
    if key is not None and key in _CONFIG_REASONS:
        return _CONFIG_REASONS[key]
    reason = _parse_config(f)
    if key is not None:
        _CONFIG_REASONS[key] = reason
    return reason


_CONFIG_REASONS: dict[tuple[str, int, int], str | None] = {}


def _parse_config(f: Path) -> str | None:
    try:
        text = f.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        return f"{records.CONFIG_FILE} is not UTF-8 text ({e})"
    except OSError as e:
        return f"unreadable {records.CONFIG_FILE}: {type(e).__name__}: {e}"
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML comes with omegaconf
        return None
    try:  # libyaml's parser where PyYAML has it (~10x faster than the pure-Python one)
        cfg = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as e:
        return f"{records.CONFIG_FILE} is not valid YAML ({str(e).splitlines()[0]})"
    if not isinstance(cfg, dict):
        return f"{records.CONFIG_FILE} holds {type(cfg).__name__}, not a mapping of config groups"
    return None


def _metrics_reason(summary: records.RunSummary, m: pd.DataFrame, flops: str) -> str | None:
    """Why a complete (or kept early-stopped) run's metrics cannot be trusted (or contradict its summary), or None."""
    f = records.METRICS_FILE
    if m.empty:
        return f"{f} has no rows"
    try:
        step = m["step"].to_numpy(dtype=float)
        tokens = m["tokens"].to_numpy(dtype=float)
        c = m[f"flops_{flops}"].to_numpy(dtype=float)
        train = m["train_loss"].to_numpy(dtype=float)
        val = m["val_loss"].to_numpy(dtype=float)
    except (TypeError, ValueError) as e:
        return f"{f} has a non-numeric column ({e})"
    for name, col in (("step", step), ("tokens", tokens), (f"flops_{flops}", c), ("train_loss", train)):
        bad = ~np.isfinite(col) | (col < 0)
        if bad.any():
            i = int(np.argmax(bad))
            return f"{f}: {name}={col[i]!r} at row {i} is not a finite number >= 0"
    bad = np.isinf(val) | (val < 0)
    if bad.any():
        i = int(np.argmax(bad))
        return f"{f}: val_loss={val[i]!r} at row {i} is not a finite number >= 0"
    if len(step) > 1 and not (np.diff(step) > 0).all():
        i = int(np.argmax(np.diff(step) <= 0)) + 1
        return (
            f"{f}: step {step[i]:.0f} at row {i} does not follow step {step[i - 1]:.0f} (duplicated or reordered rows)"
        )
    if len(tokens) > 1 and (np.diff(tokens) < 0).any():
        return f"{f}: the cumulative token count decreases"
    if tokens[-1] != summary.tokens_trained:
        return (
            f"summary contradicts {f}: tokens_trained={summary.tokens_trained!r} but the last row "
            f"(step {step[-1]:.0f}) has tokens={tokens[-1]:.0f}"
        )
    measured = np.flatnonzero(np.isfinite(val))
    if summary.status == records.STATUS_STOPPED:  # kept at its predicted end: no final loss to compare
        if step[-1] != summary.stopped_step:
            return (
                f"summary contradicts {f}: stopped_step={summary.stopped_step!r} but the last row is step "
                f"{step[-1]:.0f}"
            )
        if not measured.size:
            return f"{f} has no validation loss at all, yet the summary predicts its end from its curve"
        return None
    assert summary.final_val_loss is not None  # only asked of a summary _exclusion_reason passed
    if not measured.size:
        return f"{f} has no validation loss at all, yet the summary has final_val_loss={summary.final_val_loss!r}"
    last = float(val[measured[-1]])
    if not _close(last, summary.final_val_loss):
        return (
            f"summary contradicts {f}: final_val_loss={summary.final_val_loss!r} but the last validation row "
            f"(step {step[measured[-1]]:.0f}) has val_loss={last!r}"
        )
    return None


# metrics already read in this process, by (file, its size and modification time): a report loads its sweep once a
# FLOP and parameter convention (the convention table: ten times), and the metrics do not depend on either
_METRICS_CACHE: dict[tuple[str, int, int], pd.DataFrame] = {}
_METRICS_CACHE_RUNS = 4096  # the cache is emptied when it would hold more runs than this


def _read_metrics(run_dir: Path):
    """(metrics, None) or (None, reason). A copy of a cached table when this file (same size and modification time)
    was read before in this process."""
    f = Path(run_dir) / records.METRICS_FILE
    try:
        st = f.stat()
        key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    if key is not None and key in _METRICS_CACHE:
        return _METRICS_CACHE[key].copy(), None
    try:
        m = records.read_metrics(run_dir)
    except FileNotFoundError:
        return None, f"no {records.METRICS_FILE}"
    except Exception as e:  # pyarrow raises its own error types for a corrupt file
        return None, f"unreadable {records.METRICS_FILE}: {type(e).__name__}: {str(e)[:300]}"
    if key is not None:
        if len(_METRICS_CACHE) >= _METRICS_CACHE_RUNS:
            _METRICS_CACHE.clear()
        _METRICS_CACHE[key] = m.copy()
    return m, None


def _keep_order(r: dict) -> tuple:
    """Which of several directories holding one run id to keep: a usable one, then the one whose folder is named
    after the run id (a copy usually is not), then the first by path."""
    return (not r["usable"], Path(r["run_dir"]).name != r["run_id"], r["run_dir"])


def _mark_duplicates(rows: list[dict]) -> None:
    by_id: dict[str, list[dict]] = {}
    for r in rows:
        if r["status"] != "unreadable":
            by_id.setdefault(r["run_id"], []).append(r)
    for run_id, group in by_id.items():
        if len(group) < 2:
            continue
        group.sort(key=_keep_order)
        kept = group[0]
        why = (
            "its folder is named after the run id" if Path(kept["run_dir"]).name == run_id else "it comes first by path"
        )
        if kept["usable"] and not all(g["usable"] for g in group):
            why = "it is usable"
        for r in group[1:]:
            dup = f"duplicate run id: the same run as {kept['run_dir']}, which is kept because {why}"
            if r["usable"]:
                r.update(usable=False, reason=dup)
            else:
                r["reason"] = f"{r['reason']} (also a {dup})"


def _table_row(
    s: records.RunSummary, run_dir: str, flops: str, params: str, metric: str = "loss", offset: float | None = None
) -> dict:
    """One usable run's row; ``offset`` (not None for a kept early-stopped run) maps its predicted end onto the
    final loss's measure. D and C are the planned tokens and FLOPs: the prediction is the planned run's end."""
    row = s.flatten()
    row["run_dir"] = run_dir
    row["N"] = float(s.params_non_embedding if params == "non_embedding" else s.params_total)
    row["D"] = float(s.tokens)
    row["C"] = float(s.flops[flops])
    if offset is not None:
        loss = stopped_rule.point_loss(s, offset)
        assert loss is not None  # only kept stopped runs, which passed _exclusion_reason
        row["loss"] = loss
    else:
        assert s.final_val_loss is not None  # only usable runs, which passed _exclusion_reason
        row["loss"] = float(s.final_val_bpb if metric == "bpb" else s.final_val_loss)  # type: ignore[arg-type]
    row["loss_predicted"] = offset is not None
    row["loss_offset"] = float(offset) if offset is not None else np.nan
    row["budget"] = float(s.budget) if _finite(s.budget) else np.nan
    return row


def _folder_offsets(summaries: dict[str, records.RunSummary]) -> dict[str, float]:
    """Sweep folder -> median subset -> final offset (final_val_loss - final_subset_val_loss) over its usable
    complete runs that logged it (folders with none are absent)."""
    by_folder: dict[str, list[records.RunSummary]] = {}
    for d, s in summaries.items():
        by_folder.setdefault(str(Path(d).parent), []).append(s)
    # the rule the sweep's planner reads stopped runs with too (scaling/core/stopped.py)
    offsets = {k: stopped_rule.subset_offset(v) for k, v in by_folder.items()}
    return {k: v for k, v in offsets.items() if v is not None}


def _scan(path, flops: str, params: str, quality: bool, metric: str = "loss", stopped: str = "predicted"):
    """(scan table, runs table of the usable runs, their metrics by run_dir). The one place a run is judged."""
    _check_conventions(flops, params, metric, stopped)
    rows: list[dict[str, Any]] = []
    summaries: dict[str, records.RunSummary] = {}
    metrics: dict[str, pd.DataFrame] = {}
    for d in _run_dirs(path):
        row = dict(run_id=d.name, run_dir=str(d), status="unreadable", usable=False, reason=None)
        rows.append(row)
        try:
            s = records.read_summary(d)
        except FileNotFoundError:
            row["reason"] = f"no {records.SUMMARY_FILE} (the run never finished its first summary)"
            continue
        except UnicodeDecodeError as e:
            row["reason"] = f"unreadable {records.SUMMARY_FILE}: not UTF-8 text ({e})"
            continue
        except (ValueError, TypeError, OSError) as e:  # JSONDecodeError is a ValueError
            row["reason"] = f"unreadable {records.SUMMARY_FILE}: {type(e).__name__}: {e}"
            continue
        row["status"] = s.status if isinstance(s.status, str) else "unreadable"
        if isinstance(s.run_id, str) and s.run_id.strip():
            row["run_id"] = s.run_id
        reason = _exclusion_reason(s, flops, params, metric, stopped) or _config_reason(d)
        if reason is None:
            m, reason = _read_metrics(d)
            if reason is None:
                reason = _metrics_reason(s, m, flops)
                metrics[str(d)] = m
        row.update(usable=reason is None, reason=reason)
        if reason is None:
            summaries[str(d)] = s
    _mark_duplicates(rows)  # before the offsets: a copy of a run must not count twice in its folder's median
    offsets = _folder_offsets({r["run_dir"]: summaries[r["run_dir"]] for r in rows if r["usable"]})
    offset_of: dict[str, float | None] = {}
    for r in rows:
        if r["usable"] and summaries[r["run_dir"]].status == records.STATUS_STOPPED:
            off = offsets.get(str(Path(r["run_dir"]).parent))
            if off is None:
                r.update(usable=False, reason=NO_OFFSET)
                del summaries[r["run_dir"]]
            offset_of[r["run_dir"]] = off
    table = pd.DataFrame(
        [
            _table_row(summaries[r["run_dir"]], r["run_dir"], flops, params, metric, offset_of.get(r["run_dir"]))
            for r in rows
            if r["usable"]
        ]
    )
    if quality and not table.empty:
        from analysis.data.quality import quality_gate

        table, flagged = quality_gate(table)
        kept_dirs = set(table["run_dir"])
        for r in rows:
            if r["usable"] and r["run_dir"] not in kept_dirs:
                f = flagged[flagged["run_id"] == r["run_id"]].iloc[0]
                r.update(usable=False, reason=f"quality gate ({f['check']}): {f['reason']}")
    scan = pd.DataFrame(rows, columns=["run_id", "run_dir", "status", "usable", "reason"])
    return scan, table, metrics


def scan_runs(
    path,
    *,
    flops: str = DEFAULT_FLOPS,
    params: str = DEFAULT_PARAMS,
    quality: bool = True,
    metric: str = "loss",
    stopped: str = "predicted",
) -> pd.DataFrame:
    """Every run directory under ``path`` with whether it can be fitted: columns run_id, run_dir, status, usable,
    reason. Unreadable directories are listed too (status "unreadable"), and so are runs whose files are damaged or
    contradict each other, duplicated run ids (one copy is kept) and, with ``quality`` (default), the runs the
    quality gate flags (``analysis.data.quality``: diverged, short, stalled). Issues no warnings; ``load_runs`` does.
    ``stopped`` as ``load_runs``."""
    return _scan(path, flops, params, quality, metric, stopped)[0]


def _warn_excluded(scan: pd.DataFrame, stacklevel: int = 3) -> None:
    for r in scan[~scan["usable"]].itertuples():
        warnings.warn(f"run {r.run_id!r} excluded ({r.run_dir}): {r.reason}", RunExcludedWarning, stacklevel=stacklevel)


def _no_usable_runs(path, scan: pd.DataFrame) -> ValueError:
    reasons = "; ".join(f"{r.run_id}: {r.reason}" for r in scan.itertuples())
    return ValueError(f"no usable runs under {str(path)!r} ({len(scan)} run directories, all excluded: {reasons})")


def load_runs(
    path,
    *,
    flops: str = DEFAULT_FLOPS,
    params: str = DEFAULT_PARAMS,
    quality: bool = True,
    metric: str = "loss",
    stopped: str = "predicted",
) -> pd.DataFrame:
    """One row a finished run under ``path`` (a sweep folder, a folder of sweeps, or a single run).

    Columns: every field of ``RunSummary.flatten()`` (flops_<conv>, flops_per_token_<conv>, version_<pkg>, ...),
    ``run_dir``, ``tokens_per_param``, and the canonical N, D, C, loss, budget (see the module docstring).
    ``flops`` picks the FLOP convention for C and ``params`` the parameter convention for N; both are recorded in
    ``df.attrs["flops_convention"]`` / ``df.attrs["params_convention"]``, where every fit picks them up.
    ``quality`` (default True) leaves out the runs ``analysis.data.quality.quality_gate`` flags. ``metric="bpb"``
    puts each run's final validation bits per byte (``final_val_bpb``) in ``loss``, so sweeps with different
    tokenizers compare (then ``df.attrs["metric"] == "bpb"``); runs without it are left out with the reason.
    ``stopped="predicted"`` keeps early-stopped runs at their predicted end (``loss_predicted`` True; see the module
    docstring; then, where it kept one, ``df.attrs["stopped"] == "predicted"``; the default); ``"out"`` leaves
    them out.

    Raises FileNotFoundError for a missing or empty directory and ValueError when no run is usable. Every excluded
    run (see ``scan_runs``) issues a RunExcludedWarning naming it and the reason.
    """
    scan, df, _ = _scan(path, flops, params, quality, metric, stopped)
    _warn_excluded(scan)
    if df.empty:
        raise _no_usable_runs(path, scan)
    df = df.copy()
    df["tokens_per_param"] = df["D"] / df["N"]
    df = df.sort_values(["budget", "N", "run_id"], na_position="last").reset_index(drop=True)
    df.attrs = dict(flops_convention=flops, params_convention=params, source=str(path))
    if metric != "loss":
        df.attrs["metric"] = metric
    if df["loss_predicted"].any():  # some losses are predicted ends (as the metric, said only where it matters)
        df.attrs["stopped"] = stopped
    return df


def load_curves(
    path,
    *,
    flops: str = DEFAULT_FLOPS,
    params: str = DEFAULT_PARAMS,
    quality: bool = True,
    metric: str = "loss",
    stopped: str = "predicted",
) -> pd.DataFrame:
    """One row per logged optimizer step of every finished run under ``path``.

    Columns: run_id, step, N, D (cumulative tokens after the step), C (cumulative FLOPs under ``flops``),
    train_loss, val_loss (NaN where no evaluation ran), loss (= val_loss), lr, schedule_complete (the points
    Approach 1 may use), budget, tokens_per_second. Exactly the runs of ``load_runs``, with the same exclusions.
    ``metric="bpb"``: loss is val_loss in bits per byte, each evaluation converted with the bytes per token of its
    own validation windows (the final one's, else the intermediate ones'). ``stopped="predicted"``: the curves of
    the early-stopped runs ``load_runs`` keeps too (their points up to the stop).
    """
    scan, runs, metrics = _scan(path, flops, params, quality, metric, stopped)
    _warn_excluded(scan)
    if runs.empty:
        raise _no_usable_runs(path, scan)
    frames = []
    for r in runs.itertuples():
        m = metrics[r.run_dir]
        val = m["val_loss"].to_numpy(dtype=float)
        if metric == "bpb":
            steps = m["step"].to_numpy()
            final = steps == r.steps
            per_byte = np.where(final, r.val_bytes_per_token, r.eval_bytes_per_token or r.val_bytes_per_token)
            val = val / math.log(2) / per_byte.astype(float)
        frames.append(
            pd.DataFrame(
                {
                    "run_id": r.run_id,
                    "step": m["step"].to_numpy(dtype=np.int64),
                    "N": r.N,
                    "D": m["tokens"].to_numpy(dtype=float),
                    "C": m[f"flops_{flops}"].to_numpy(dtype=float),
                    "train_loss": m["train_loss"].to_numpy(dtype=float),
                    "val_loss": m["val_loss"].to_numpy(dtype=float),
                    "loss": val,
                    "lr": m["lr"].to_numpy(dtype=float),
                    "schedule_complete": m["schedule_complete"].fillna(False).to_numpy(dtype=bool),
                    "budget": r.budget,
                    "tokens_per_second": m["tokens_per_second"].to_numpy(dtype=float),
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)[CURVE_COLUMNS]
    df = df.sort_values(["run_id", "step"]).reset_index(drop=True)
    df.attrs.update(flops_convention=flops, params_convention=params, source=str(path))
    if metric != "loss":
        df.attrs["metric"] = metric
    return df
