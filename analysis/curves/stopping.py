"""Early stopping from curve fits (issue 18, item 5), replayed on a finished sweep with the trainer's own rule
(``scaling/train/callbacks/early_stop.py``, ``train.early_stop_frac``): at the first evaluation from a fraction of
each run at which the curve has seen at least half of the run's annealing area (``curve_law.decision_ready``: before
a WSD cooldown the law cannot see the drop to come, so the trainer defers), fit the Tissue law to its curve so far
(``scaling.core.curve_law.tissue_end``, on the subset's measure), extrapolate its end with a 90% interval, and stop
it when even the interval's low end lies more than ``margin`` above the best finished end among the other runs of its
budget (its IsoFLOP neighbours; their final subset loss where logged, else their final loss, as the trainer
compares). The replay sees every neighbour finished, the trainer only those finished before the run reaches the
fraction: the replay's stops are an upper bound of the trainer's.

``law``: "tissue" (the trainer before the sweep prior), "prior" (``scaling.core.end_prior``: the run's training loss
at the look x the end ratio of a pool of finished runs of its schedule, with the pool's leave-one-out interval), or
"trainer" (today's trainer: the prior where the pool has ``end_prior.MIN_POOL`` runs, else Tissue). The prior looks at
the first evaluation from ``frac`` (it needs no annealing seen), Tissue at the first ready one. ``pool``: the
runs of smaller budgets (what a sequential sweep has finished when a run starts; the default) or every other run.
``python -m analysis.curves.stopping ROOT`` prints Tissue and the prior side by side, and the prior's interval
coverage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.curves.schedule import subset_curve
from scaling.core import end_prior, records
from scaling.core.curve_law import annealing_shares, decision_ready, tissue_end

LAWS = ("tissue", "prior", "trainer")
POOLS = ("smaller", "others")


def _prior(runs: pd.DataFrame, r, look: int, n: int, pool: str) -> tuple[float, float, float, int]:
    """The sweep prior's (end, lo, hi, pool size) for run ``r`` looked at step ``look`` of ``n``, its pool's members
    taken by the trainer's own rule (``end_prior.pool_entry``: complete runs of its schedule with a final subset
    loss, no cooldown branch); NaN where the pool has fewer than ``end_prior.MIN_POOL`` runs."""
    key = end_prior.config_schedule_key(r.run_dir)
    frac = look / n
    others = runs[runs["run_id"] != r.run_id]
    if pool == "smaller":
        others = others[others["budget"] < r.budget]
    entries = [e for o in others.itertuples() if (e := end_prior.pool_entry(Path(str(o.run_dir)), key, frac))]
    if len(entries) < end_prior.MIN_POOL:
        return np.nan, np.nan, np.nan, len(entries)
    m = records.read_metrics(Path(str(r.run_dir)))
    lv = end_prior.level(m["step"].to_numpy(), m["train_loss"].to_numpy(dtype=float), n, frac)
    ratios, lengths = [e[0] for e in entries], [e[1] for e in entries]
    return (*end_prior.end_interval(lv, ratios, n, lengths), len(entries))


def replay(
    runs: pd.DataFrame,
    frac: float = 0.5,
    margin: float = 0.02,
    law: str = "tissue",
    n_boot: int = 50,
    pool: str = "smaller",
) -> pd.DataFrame:
    """One row a run: budget, N, final loss, the step looked at (NaN: no evaluation was ready), predicted end
    [lo, hi] from the curve up to it, whether it would have stopped, the FLOPs that saves, and whether the run was
    its budget's lowest final loss."""
    if not 0.0 < frac < 1.0:
        raise ValueError(f"frac={frac}: must be in (0, 1)")
    if margin < 0:
        raise ValueError(f"margin={margin}: must be >= 0")
    if law not in LAWS:
        raise ValueError(f"law={law!r}: must be one of {LAWS}")
    if pool not in POOLS:
        raise ValueError(f"pool={pool!r}: must be one of {POOLS}")
    same = {}
    for r in runs.itertuples():
        s = records.read_summary(r.run_dir)
        same[r.run_id] = s.final_subset_val_loss if s.final_subset_val_loss is not None else float(r.loss)
    rows = []
    for r in runs.itertuples():
        others = runs[(runs["budget"] == r.budget) & (runs["run_id"] != r.run_id)]
        eta, steps, loss = subset_curve(str(r.run_dir))
        n = len(eta)
        shares = annealing_shares(eta)
        look = [int(s) for s in steps if decision_ready(shares, int(s), n, frac)]
        row = dict(run_id=r.run_id, budget=r.budget, N=r.N, C=r.C, loss=r.loss, step=np.nan)
        row.update(pred=np.nan, lo=np.nan, hi=np.nan, by="", pool=0)
        first = [int(s) for s in steps if frac * n <= s < n]  # the prior needs no annealing seen: no gate
        if len(first) and law != "tissue":
            row["step"] = int(first[0])
            row["pred"], row["lo"], row["hi"], row["pool"] = _prior(runs, r, int(first[0]), n, pool)
            row["by"] = "prior" if np.isfinite(row["pred"]) else ""
            row["step"] = row["step"] if row["by"] else np.nan
        if len(look) and law != "prior" and not row["by"]:
            row["step"] = int(look[0])
            row["by"] = "tissue"
            try:
                row["pred"], row["lo"], row["hi"] = tissue_end(eta, steps, loss, upto=int(look[0]), n_boot=n_boot)
            except ValueError:  # too few points before the cut: never stopped
                pass
        row["end"] = same[r.run_id]  # the measured end on the predictions' measure (the subset's)
        best_other = min((same[i] for i in others["run_id"]), default=np.inf)
        row["best_other"] = best_other
        row["stop"] = bool(np.isfinite(row["lo"]) and row["lo"] > (1 + margin) * best_other)
        row["flops_saved"] = (1 - row["step"] / n) * float(r.C) if row["stop"] else 0.0
        row["was_minimum"] = bool(len(others) == 0 or r.loss <= others["loss"].min())
        rows.append(row)
    return pd.DataFrame(rows)


def write_stopped(runs: pd.DataFrame, replayed: pd.DataFrame, out_dir) -> Path:
    """A copy of the sweep in ``out_dir`` as the trainer would have left it with ``replayed``'s stops (``replay``):
    every run folder copied, and each stopped run's metrics cut at the step it stopped after and its summary made
    the trainer's ``stopped`` one (no final loss, the prediction in ``predicted_final_loss[_lo|_hi]``), so that the
    loader (``analysis.data.load``, ``stopped=``) reads the replay as it would read a live sweep. Returns out_dir."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"out_dir {str(out)!r} is not empty: the replayed sweep is written into a new folder")
    stops = replayed[replayed["stop"]].set_index("run_id")
    for r in runs.itertuples():
        dst = out / Path(str(r.run_dir)).name
        shutil.copytree(str(r.run_dir), dst)
        if r.run_id not in stops.index:
            continue
        st = stops.loc[r.run_id]
        step = int(st["step"])
        m = records.read_metrics(dst)
        records.write_metrics(dst, m[m["step"] <= step].to_dict("records"))
        s = records.read_summary(dst)
        s.status = records.STATUS_STOPPED
        s.reason = f"early stop at step {step} (replayed by analysis.curves.stopping)"
        s.final_val_loss = s.final_val_bpb = s.final_subset_val_loss = None
        s.stopped_step = step
        s.tokens_trained = step * s.tokens_per_step
        s.predicted_final_loss, s.predicted_final_loss_lo, s.predicted_final_loss_hi = (
            float(st["pred"]),
            float(st["lo"]),
            float(st["hi"]),
        )
        records.write_summary(dst, s)
        (dst / records.CHECKPOINT_FILE).unlink(missing_ok=True)
    return out


def compare(root: Path, frac: float = 0.5, margin: float = 0.02, pool: str = "smaller") -> pd.DataFrame:
    """Tissue and the sweep prior replayed side by side on the sweep under ``root`` (one row a run: the look, each
    one's predicted end and interval, and whether it stops); prints them, the stops, the errors against the measured
    end and how often each 90% interval covers it."""
    import warnings

    from analysis.data.load import load_runs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = load_runs(root, stopped="out")  # a replay of stops needs measured ends, not earlier predictions
    t = replay(runs, frac, margin, "tissue")
    p = replay(runs, frac, margin, "prior", pool=pool)
    both = t[["run_id", "N", "budget", "end", "best_other", "was_minimum", "step"]].copy()
    both["best_other"] = both["best_other"].where(np.isfinite(both["best_other"]))
    for name, r in (("tissue", t), ("prior", p)):
        for c in ("pred", "lo", "hi", "stop", "flops_saved"):
            both[f"{name}_{c}"] = r[c].to_numpy()
    both["pool"] = p["pool"].to_numpy()
    both["tissue_look"] = both.pop("step") / runs["steps"].to_numpy()  # the look's share of the run's steps
    both["prior_look"] = p["step"].to_numpy() / runs["steps"].to_numpy()
    show = both.drop(columns=["run_id", "tissue_flops_saved", "prior_flops_saved"])
    show = show[[c for c in show.columns if not c.startswith("trainer_")]]
    print(show.to_string(index=False, float_format=lambda x: f"{x:.4g}"))
    tr = replay(runs, frac, margin, "trainer", pool=pool)
    for c in ("pred", "lo", "hi", "stop", "flops_saved"):
        both[f"trainer_{c}"] = tr[c].to_numpy()
    C = float(runs["C"].sum())
    oracle = both["end"] > (1 + margin) * both["best_other"]
    print(f"oracle (measured end > (1 + {margin:g}) x best other of its budget): {int(oracle.sum())} runs")
    for name in ("tissue", "prior", "trainer"):
        ok = both[f"{name}_pred"].notna()
        err = (both.loc[ok, f"{name}_pred"] / both.loc[ok, "end"] - 1).abs()
        cov = (
            (both.loc[ok, f"{name}_lo"] <= both.loc[ok, "end"]) & (both.loc[ok, "end"] <= both.loc[ok, f"{name}_hi"])
        ).mean()
        st = both[both[f"{name}_stop"]]
        which = ", ".join(
            f"N={n:.3g} C={b:.3g} end {e:.4f} pred {q:.4f}"
            for n, b, e, q in zip(st["N"], st["budget"], st["end"], st[f"{name}_pred"])
        )
        saved = st[f"{name}_flops_saved"].sum() / C
        print(
            f"{name}: predicted {int(ok.sum())} of {len(both)} runs at the look; |error| median {err.median():.2%}, "
            f"worst {err.max():.2%}; 90% interval covers {cov:.0%}; stops at margin {margin:g}: {len(st)} ({which}); "
            f"a budget minimum stopped: {bool(st['was_minimum'].any())}; stops the oracle would not make: "
            f"{int((both[f'{name}_stop'] & ~oracle).sum())}; FLOPs saved {saved:.1%}"
        )
    return both


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=compare.__doc__)
    ap.add_argument("root", type=Path)
    ap.add_argument("--frac", type=float, default=0.5)
    ap.add_argument("--margin", type=float, default=0.02)
    ap.add_argument("--pool", choices=POOLS, default="smaller")
    a = ap.parse_args()
    compare(a.root, a.frac, a.margin, a.pool)
