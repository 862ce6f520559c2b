"""Putting a C = 6ND allocation on a sweep's own FLOP axis: the ratio r(N) = C / (6 N D) of the sweep's convention,
exactly through the family rule for runs of this harness, statistically for anything else.

Approach 3's closed-form allocation and Kaplan's joint law assume C = 6ND (Hoffmann et al. 2022 eq. 4; Kaplan et al.
2020 §6), while Approaches 1 and 2 fit C as loaded. ``InConvention(fit, ratio).compute_optimal(C)`` returns the
allocation whose FLOPs under the sweep's convention, 6 N D r(N), equal C, so every approach shares one compute axis.

Two routes to r(N), and the report says which one it took (``ratio.route``):
- ``FamilyRatio`` (exact): runs written by this harness carry their shape (n_layer, d_model, n_head, d_ff,
  vocab_size, seq_len, tie_embeddings) and their resolved ``config.yaml`` (aspect, head size, MLP ratio, minimum
  depth, architecture and its MLP rounding; a user's own class takes the statistical route). Once every run's
  recorded shape, parameter counts and FLOPs per token are reproduced by
  ``scaling.core.family.shape_for`` and ``scaling.core.flops.flops_per_token``, r at any N is that of the shape the
  family rule gives N: r(N) = flops_per_token[convention](shape(N)) / (6 N(shape)).
- ``SixNDRatio`` (statistical, for foreign DataFrames): interpolated from the runs' own C / 6ND in log N, with the
  overhead r - 1 extrapolated as a power law of N beyond them.
"""

from __future__ import annotations

import bisect
import math
from pathlib import Path

import numpy as np
import pandas as pd

from scaling.core import archs, family, flops, records

SHAPE_COLUMNS = ("n_layer", "d_model", "n_head", "d_ff", "vocab_size", "seq_len", "tie_embeddings")
ROUTE_EXACT = "exact (family rule + scaling/core/flops.py)"
ROUTE_STATISTICAL = "statistical (the runs' own C / 6ND)"


class SixNDRatio:
    """r(N) = C / (6 N D) of a sweep's runs: how its FLOP convention relates to 6ND, as a function of model size.

    Within the sweep's sizes r is interpolated in log N; beyond them, when every r > 1, the overhead r - 1
    (attention, embeddings, logits) is extrapolated as a power law of N fitted to the runs, since each overhead
    term shrinks like a power of the width; otherwise r is held at the nearest run's value.
    """

    route = ROUTE_STATISTICAL

    def __init__(self, N, D, C):
        N, D, C = (np.asarray(x, dtype=float) for x in (N, D, C))
        r = C / (6.0 * N * D)
        df = pd.DataFrame({"lN": np.log(N), "lr": np.log(r)}).groupby("lN", as_index=False)["lr"].mean()
        self.lN, self.lr = df["lN"].to_numpy(), df["lr"].to_numpy()
        self.identity = bool(np.allclose(self.lr, 0.0, atol=1e-9))
        self.power = None
        if (np.exp(self.lr) > 1 + 1e-9).all() and len(self.lN) >= 2:
            slope, icpt = np.polyfit(self.lN, np.log(np.expm1(self.lr)), 1)
            self.power = (float(icpt), float(slope))  # log(r - 1) = icpt + slope log N

    def __call__(self, N):
        lN = np.log(np.asarray(N, dtype=float))
        out = np.interp(lN, self.lN, self.lr)
        if self.power is not None:
            icpt, slope = self.power
            outside = (lN < self.lN[0]) | (lN > self.lN[-1])
            out = np.where(outside, np.log1p(np.exp(icpt + slope * lN)), out)
        return np.exp(out)

    def describe(self) -> str:
        lo, hi = np.exp(self.lr[0]), np.exp(self.lr[-1])
        how = (
            "r - 1 extrapolated as a power law of N" if self.power is not None else "r held at the nearest run's value"
        )
        return f"C / 6ND runs from {lo:.3f} (smallest run) to {hi:.3f} (largest run); beyond the sweep's sizes {how}"


class FamilyRatio:
    """r(N) = C / (6 N D) exactly, from the family rule and the FLOP formulas (``from_runs`` checks the runs
    first). ``flops`` is the convention of C, ``params`` that of N ("non_embedding" or "total")."""

    route = ROUTE_EXACT

    def __init__(self, rule: dict, flops_convention: str, params_convention: str):
        if flops_convention not in records.FLOP_CONVENTIONS:
            raise ValueError(f"FamilyRatio: flops_convention={flops_convention!r}; allowed: {records.FLOP_CONVENTIONS}")
        if params_convention not in ("non_embedding", "total"):
            raise ValueError(
                f"FamilyRatio: params_convention={params_convention!r}; allowed: ('non_embedding', 'total')"
            )
        self.rule, self.flops_convention, self.params_convention = dict(rule), flops_convention, params_convention
        self.identity = flops_convention == "6n" and params_convention == "non_embedding"
        self._shapes: dict[float, family.Shape] = {}  # per instance (an lru_cache on the method would keep it alive)
        self._bisection: dict[float, tuple[family.Shape, int]] = {}  # (shape, count) at each visited log target
        # (A, B, shape): every N in (A, B] takes the same bisection path, so has the same answer; sorted by A
        self._paths: list[tuple[float, float, family.Shape]] = []
        self._ratios: dict[family.Shape, float] = {}

    def _count(self, sh: family.Shape) -> int:
        return sh.params_total() if self.params_convention == "total" else sh.params_non_embedding()

    def shape(self, N: float) -> family.Shape:
        """The family's shape for a model of N parameters under ``params_convention``: the shape of the smallest
        target size whose shape has at least N parameters (the family rule takes a target non-embedding count and
        rounds; counts grow with the target, so a bisection in log target finds it). Clipped to the family's
        size range."""
        key = float(f"{N:.12g}")
        if key not in self._shapes:
            self._shapes[key] = self._shape(key)
        return self._shapes[key]

    def _shape(self, N: float) -> family.Shape:
        lo, hi = math.log(family.MIN_TARGET_PARAMS), math.log(family.MAX_TARGET_PARAMS)
        if N == math.floor(N):  # a count is a whole number: the usual case for a run's own N
            first = family.shape_for(float(np.clip(N, family.MIN_TARGET_PARAMS, family.MAX_TARGET_PARAMS)), **self.rule)
            if self._count(first) == N:
                return first
        # every query bisects the same interval, comparing N with the counts at the midpoints: a query whose N lies
        # in (the largest count it went above, the smallest count it went below] of an earlier one's path takes
        # exactly that path, so it answers from the list of paths (a report's bootstraps ask ~1e5 times)
        paths = self._paths
        i = bisect.bisect_left(paths, (N,)) - 1  # the last path whose A < N
        if i >= 0 and N <= paths[i][1]:
            return paths[i][2]
        at = self._bisection
        below, above = -math.inf, math.inf
        for _ in range(48):
            mid = 0.5 * (lo + hi)
            if mid not in at:
                sh = family.shape_for(math.exp(mid), **self.rule)
                at[mid] = (sh, self._count(sh))
            count = at[mid][1]
            if count >= N:
                hi, above = mid, min(above, count)
            else:
                lo, below = mid, max(below, count)
        if hi not in at:
            sh = family.shape_for(math.exp(hi), **self.rule)
            at[hi] = (sh, self._count(sh))
        bisect.insort(paths, (below, above, at[hi][0]), key=lambda p: p[:2])
        return at[hi][0]

    def _one(self, N: float) -> float:
        if not np.isfinite(N) or N <= 0:
            return float("nan")
        sh = self.shape(N)
        if sh not in self._ratios:
            self._ratios[sh] = flops.flops_per_token(sh)[self.flops_convention] / (6.0 * self._count(sh))
        return self._ratios[sh]

    def __call__(self, N):
        N = np.asarray(N, dtype=float)
        return np.vectorize(self._one, otypes=[float])(N) if N.ndim else np.float64(self._one(float(N)))

    def describe(self) -> str:
        r = {k: v for k, v in self.rule.items()}
        return (
            f"shape(N) by scaling.core.family.shape_for({', '.join(f'{k}={v}' for k, v in r.items())}), FLOPs per "
            f"token by scaling.core.flops ('{self.flops_convention}'), N {self.params_convention.replace('_', '-')}"
        )

    @classmethod
    def from_runs(cls, runs: pd.DataFrame) -> "FamilyRatio":
        """The family rule of a sweep of this harness, checked against every run; ValueError saying what does not
        match otherwise (then the runs are foreign and only the statistical route applies)."""
        fc = runs.attrs.get("flops_convention")
        pc = runs.attrs.get("params_convention")
        if fc not in records.FLOP_CONVENTIONS or pc not in ("non_embedding", "total"):
            raise ValueError(
                f"runs.attrs has flops_convention={fc!r}, params_convention={pc!r}: not a sweep loaded "
                f"by analysis.load_runs"
            )
        missing = [c for c in SHAPE_COLUMNS + ("size", "run_dir") if c not in runs.columns]
        if missing:
            raise ValueError(f"runs lack the shape columns {missing}")
        rule = _rule_from_config(Path(runs["run_dir"].iloc[0]) / records.CONFIG_FILE)
        for col, key in (("vocab_size", "vocab_size"), ("seq_len", "seq_len"), ("tie_embeddings", "tie_embeddings")):
            vals = runs[col].unique()
            if len(vals) != 1:
                raise ValueError(f"runs differ in {col} ({sorted(map(str, vals))}): no single family")
            rule[key] = vals[0].item() if hasattr(vals[0], "item") else vals[0]
        rule["vocab_size"], rule["seq_len"] = int(rule["vocab_size"]), int(rule["seq_len"])
        rule["tie_embeddings"] = bool(rule["tie_embeddings"])
        ratio = cls(rule, fc, pc)
        for r in runs.itertuples():
            sh = family.shape_for(r.size, **rule)
            got = tuple(getattr(sh, c) for c in SHAPE_COLUMNS[:4])
            want = tuple(int(getattr(r, c)) for c in SHAPE_COLUMNS[:4])
            if got != want:
                raise ValueError(
                    f"run {r.run_id}: the family rule gives (n_layer, d_model, n_head, d_ff) = {got} for "
                    f"size {r.size!r}, the run has {want}"
                )
            fpt = flops.flops_per_token(sh)[fc]
            rec = getattr(r, f"flops_per_token_{fc}", None)
            if rec is None or not np.isclose(fpt, float(rec), rtol=1e-9):
                raise ValueError(
                    f"run {r.run_id}: scaling.core.flops gives {fpt:.6g} FLOPs per token under '{fc}', the "
                    f"run recorded {rec}"
                )
            n = ratio._count(sh)
            if not np.isclose(n, float(r.N), rtol=1e-12):
                raise ValueError(f"run {r.run_id}: the family's shape has N = {n}, the run recorded {r.N}")
            if ratio.shape(float(r.N)) != sh:
                raise ValueError(
                    f"run {r.run_id}: the family rule maps N = {r.N:g} to {ratio.shape(float(r.N))}, "
                    f"not to the run's shape {sh}"
                )
        return ratio


def _rule_from_config(path: Path) -> dict:
    """aspect, head_size, mlp_ratio, min_layers, arch, ffn_multiple of a run's resolved config.yaml (the family
    rule's knobs)."""
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read the family rule from {path}: {e}") from None
    model = (cfg or {}).get("model") or {}
    rule = {}
    for key in ("aspect", "head_size", "mlp_ratio", "min_layers"):
        if key not in model:
            raise ValueError(f"{path}: model.{key} is missing, so the family rule is unknown")
        rule[key] = model[key]
    # added later (issue 16): configs written before them are GPT runs at the default rounding
    rule["arch"] = model.get("arch", "gpt")
    rule["ffn_multiple"] = model.get("ffn_multiple", 32)
    if archs.is_user_arch(rule["arch"]):
        raise ValueError(f"{path}: model.arch={rule['arch']!r} is a user's class, whose counts only its code knows")
    return rule


def ratio_for(runs: pd.DataFrame):
    """(ratio, why): the exact ``FamilyRatio`` when the runs are this harness's and match its family rule, else
    the statistical ``SixNDRatio`` and the reason the exact route was not taken."""
    try:
        return FamilyRatio.from_runs(runs), ""
    except (ValueError, TypeError) as e:
        return SixNDRatio(runs["N"], runs["D"], runs["C"]), str(e)


class InConvention:
    """A fit whose ``compute_optimal`` assumes C = 6ND, answering in the sweep's own FLOP convention instead:
    ``compute_optimal(C)`` returns the allocation whose FLOPs under that convention, 6 N D r(N), equal C. Every
    other attribute is the fit's own."""

    def __init__(self, fit, ratio):
        self.fit, self.ratio = fit, ratio

    def compute_optimal(self, C):
        from analysis.laws.forms import Allocation

        C = np.asarray(C, dtype=float)
        c6 = C / self.ratio(self.fit.compute_optimal(C).N_opt)
        for _ in range(30):  # fixed point of c6 = C / r(N_opt(c6)); r varies slowly with N, so this settles fast
            new = C / self.ratio(self.fit.compute_optimal(c6).N_opt)
            done = np.allclose(new, c6, rtol=1e-10, equal_nan=True)
            c6 = new
            if done:
                break
        a = self.fit.compute_optimal(c6)
        return Allocation.of(C, a.N_opt, a.D_opt, a.loss)

    def __getattr__(self, name):
        if name in ("fit", "ratio") or name.startswith("__"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.fit, name)

    def __repr__(self) -> str:
        return f"InConvention({self.fit!r})"


def in_convention(fit, ratio):
    """``fit`` itself when C is already 6ND (no ratio, or an identity one), else ``InConvention(fit, ratio)``."""
    if fit is None or ratio is None or getattr(ratio, "identity", False):
        return fit
    return InConvention(fit, ratio)
