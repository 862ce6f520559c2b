"""Test helper: write a realistic IsoFLOP sweep to disk, run directories and all, with losses from a known law.

Each run is a folder <root>/<run_id>/ with config.yaml, metrics.parquet and summary.json written through
scaling.core.records, exactly as the trainer writes them, so the loader, fits, plots and report are tested on the same
files a real sweep produces. Final losses follow L(N, D) = E + A/N^alpha + B/D^beta (times small log-normal noise);
the curves follow the same law along D with a cosine LR schedule, so only each run's last step has a finished
schedule. Next to the good runs the sweep holds the debris a real one collects: a diverged run, a failed run, one
still running, one with a corrupt summary.json and one that never wrote a summary.

Shapes: a ladder of (n_layer, d_model) pairs (head size 32, d_ff = 4 d_model), vocabulary 512, context 128, untied
embeddings, so params_non_embedding = 12 n_layer d_model^2 (+ small bias and LayerNorm terms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scaling.core import records
from scaling.core.forms import chinchilla_exponents, chinchilla_optimum

VOCAB = 512
SEQ = 128


@dataclass(frozen=True)
class Law:
    """The known truth the synthetic losses come from (Hoffmann et al. 2022 eq. 2 form)."""

    E: float = 1.6
    A: float = 60.0
    B: float = 120.0
    alpha: float = 0.34
    beta: float = 0.28

    def loss(self, N, D):
        return self.E + self.A / np.power(N, self.alpha) + self.B / np.power(D, self.beta)

    def n_opt(self, C):
        """Compute-optimal N under C = 6ND (Hoffmann et al. 2022, Appendix D.2)."""
        return chinchilla_optimum(np.asarray(C, dtype=float), self.A, self.B, self.alpha, self.beta)[0]

    @property
    def a(self) -> float:
        return chinchilla_exponents(self.alpha, self.beta)[0]


TRUE_LAW = Law()


def shape(n_layer: int, d: int) -> dict:
    d_ff = 4 * d
    per_layer = 4 * d * d + 2 * d * d_ff + 4 * d + 2 * d + 2 * d  # attention + MLP weights and biases, 2 LayerNorms
    non_emb = n_layer * per_layer + 2 * d  # + final LayerNorm
    emb = VOCAB * d + SEQ * d + VOCAB * d  # token + position embeddings, untied output head
    return dict(
        n_layer=n_layer,
        d_model=d,
        n_head=d // 32,
        d_ff=d_ff,
        params_non_embedding=non_emb,
        params_embedding=emb,
        params_total=non_emb + emb,
    )


def flops_per_token(sh: dict) -> dict[str, float]:
    """Per-token training FLOPs under each convention in scaling.core.records.FLOP_CONVENTIONS, each cited to its
    paper in scaling/core/flops.py."""
    L, d, h, dff, s, V = sh["n_layer"], sh["d_model"], sh["n_head"], sh["d_ff"], SEQ, VOCAB
    N = sh["params_non_embedding"]
    # Hoffmann et al. 2022 Appendix F, forward FLOPs per sequence of s tokens
    layer = 2 * 3 * s * d * d + 2 * s * s * d + 3 * h * s * s + 2 * s * s * d + 2 * s * d * d + 2 * s * 2 * d * dff
    embed, logits = 2 * s * V * d, 2 * s * d * V
    return {
        "6n": 6.0 * N,
        "6n_attn": 6.0 * N + 6.0 * L * s * d,
        "chinchilla": 3.0 * (embed + L * layer + logits) / s,
        "chinchilla_noembed": 3.0 * L * layer / s,
        "deepseek_m": 72.0 * L * d * d + 12.0 * L * d * s,
    }


def _config_yaml(sweep: str, n_layer: int, d_model: int, budget: float, tokens: int, seed: int) -> str:
    return (
        f"model:\n  n_layer: {n_layer}\n  d_model: {d_model}\n  vocab_size: {VOCAB}\n  seq_len: {SEQ}\n"
        f"train:\n  budget: {budget:g}\n  budget_convention: 6n\n  tokens: {tokens}\n  schedule: cosine\n"
        f"  seed: {seed}\nsweep: {sweep}\n"
    )


def _curve(
    law: Law, N: float, sh: dict, steps: int, tokens_per_step: int, final_loss: float, rng, lr: float, eval_every: int
) -> list[dict]:
    """Per-step metrics of a cosine run that ends exactly at ``final_loss``."""
    fpt = flops_per_token(sh)
    step = np.arange(1, steps + 1)
    tokens = step * tokens_per_step
    warm = max(1, steps // 20)
    progress = np.clip((step - warm) / max(1, steps - warm), 0, 1)
    lr_t = np.where(step <= warm, lr * step / warm, lr * (0.1 + 0.9 * 0.5 * (1 + np.cos(math.pi * progress))))
    # An unannealed point sits above the law; the excess vanishes as the LR decays to its floor.
    smooth = law.loss(N, tokens) + 0.15 * (lr_t - 0.1 * lr) / lr
    smooth = np.minimum(smooth, math.log(VOCAB))
    smooth = smooth + (final_loss - smooth[-1]) * (step / steps)  # land on the run's (noisy) final loss
    val = np.where((step % eval_every == 0) | (step == steps), smooth, np.nan)
    train = smooth * np.exp(rng.normal(0, 0.02, steps))
    rows = []
    for i in range(steps):
        row = dict(step=int(step[i]), tokens=int(tokens[i]))
        for c, f in fpt.items():
            row[f"flops_{c}"] = float(f * tokens[i])
        row.update(
            train_loss=float(train[i]),
            val_loss=float(val[i]),
            lr=float(lr_t[i]),
            tokens_per_second=float(2e5 / (1 + N / 1e6)),
            schedule_complete=bool(i == steps - 1),
        )
        rows.append(row)
    return rows


def write_run(
    root: Path,
    sweep: str,
    size: tuple[int, int],
    budget: float,
    *,
    law: Law = TRUE_LAW,
    noise: float = 0.005,
    tokens_per_step: int = 65536,
    seed: int = 0,
    rng=None,
    status: str = records.STATUS_COMPLETE,
    reason: str | None = None,
    eval_every: int = 10,
    run_id: str | None = None,
) -> Path:
    """Write one run directory; returns it. ``status`` != complete writes the state such a run leaves behind."""
    rng = rng if rng is not None else np.random.default_rng(seed)
    n_layer, d_model = size
    sh = shape(n_layer, d_model)
    N = sh["params_non_embedding"]
    fpt = flops_per_token(sh)
    steps = max(10, round(budget / fpt["6n"] / tokens_per_step))
    tokens = steps * tokens_per_step
    final = float(law.loss(N, tokens) * math.exp(rng.normal(0, noise)))
    lr = 0.1 / math.sqrt(d_model)
    run_id = run_id or f"L{n_layer}_d{d_model}_C{budget:.0e}".replace("+", "")
    run_dir = Path(root) / run_id
    records.write_text_atomic(
        run_dir / records.CONFIG_FILE, _config_yaml(sweep, n_layer, d_model, budget, tokens, seed)
    )
    rows = _curve(law, N, sh, steps, tokens_per_step, final, rng, lr, eval_every)

    summary = records.RunSummary(
        run_id=run_id,
        sweep=sweep,
        status=status,
        reason=reason,
        size=str(N),
        vocab_size=VOCAB,
        seq_len=SEQ,
        tie_embeddings=False,
        budget=budget,
        budget_convention="6n",
        tokens=tokens,
        tokens_trained=tokens,
        steps=steps,
        tokens_per_step=tokens_per_step,
        flops_per_token=fpt,
        flops={c: f * tokens for c, f in fpt.items()},
        lr=lr,
        schedule="cosine",
        warmup_steps=max(1, steps // 20),
        seed=seed,
        data_source="synthetic",
        data_checksum="0" * 64,
        unique_train_tokens=10**9,
        epochs=tokens / 10**9,
        final_train_loss=rows[-1]["train_loss"],
        final_val_loss=final,
        best_val_loss=final,
        wall_seconds=tokens / rows[-1]["tokens_per_second"],
        tokens_per_second=rows[-1]["tokens_per_second"],
        device="cpu",
        dtype="float32",
        versions={"python": "3.11", "scaling": "0.1"},
        started="2025-01-01T00:00:00",
        finished="2025-01-01T01:00:00",
        **{k: v for k, v in sh.items()},
    )
    if status == records.STATUS_DIVERGED:
        cut = max(2, steps // 3)
        rows = rows[:cut]
        rows[-1]["train_loss"] = float("nan")
        rows[-1]["val_loss"] = float("nan")
        summary.reason = reason or f"train loss became non-finite at step {cut}"
        summary.tokens_trained = cut * tokens_per_step
        summary.final_val_loss = summary.best_val_loss = summary.final_train_loss = None
    elif status == records.STATUS_FAILED:
        rows = rows[: max(1, steps // 5)]
        summary.reason = reason or "RuntimeError: out of memory"
        summary.tokens_trained = len(rows) * tokens_per_step
        summary.final_val_loss = summary.final_train_loss = summary.finished = None
    elif status == records.STATUS_RUNNING:
        rows = rows[: max(1, steps // 2)]
        for r in rows:
            r["schedule_complete"] = False
        summary.tokens_trained = len(rows) * tokens_per_step
        summary.final_val_loss = summary.final_train_loss = summary.finished = None
        (run_dir / records.CHECKPOINT_FILE).write_bytes(b"not a real checkpoint")
    records.write_metrics(run_dir, rows)
    records.write_summary(run_dir, summary)
    return run_dir


# (n_layer, d_model) from ~5e4 to ~2.5e7 non-embedding parameters, each about 1.6x the one before.
LADDER = (
    (1, 64),
    (1, 96),
    (2, 96),
    (2, 128),
    (3, 128),
    (3, 160),
    (4, 192),
    (4, 256),
    (5, 256),
    (6, 320),
    (8, 384),
    (8, 512),
)


def params(size: tuple[int, int]) -> int:
    return shape(*size)["params_non_embedding"]


def sizes_for_budget(budget: float, n_sizes: int, law: Law = TRUE_LAW) -> list[tuple[int, int]]:
    """The ``n_sizes`` ladder sizes nearest (in log N) to the law's N_opt at ``budget``: an IsoFLOP bracket."""
    target = math.log(float(law.n_opt(budget)))
    by_distance = sorted(LADDER, key=lambda s: abs(math.log(params(s)) - target))
    return sorted(by_distance[:n_sizes], key=params)


BUDGETS = (1e13, 3e13, 1e14, 3e14)


def write_sweep(
    root,
    *,
    budgets=BUDGETS,
    n_sizes: int = 6,
    law: Law = TRUE_LAW,
    noise: float = 0.005,
    seed: int = 0,
    with_bad_runs: bool = True,
    tokens_per_step: int = 65536,
    sweep: str = "synthetic_isoflop",
) -> Path:
    """Write a whole IsoFLOP sweep under ``root``; returns ``root``.

    With ``with_bad_runs`` the sweep also holds the five runs ``BAD_RUNS`` names, which the loader must leave out,
    and a Hydra ``.hydra/`` folder that is not a run at all.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for budget in budgets:
        for size in sizes_for_budget(budget, n_sizes, law):
            write_run(
                root, sweep, size, budget, law=law, noise=noise, rng=rng, seed=seed, tokens_per_step=tokens_per_step
            )
    if with_bad_runs:
        b, kw = budgets[-1], dict(rng=rng, tokens_per_step=tokens_per_step, law=law)
        write_run(root, sweep, LADDER[-1], b, status=records.STATUS_DIVERGED, run_id="big_diverged", **kw)
        write_run(root, sweep, LADDER[-2], b, status=records.STATUS_FAILED, run_id="big_failed", **kw)
        write_run(root, sweep, LADDER[-3], b, status=records.STATUS_RUNNING, run_id="big_running", **kw)
        corrupt = root / "corrupt_summary"
        records.write_text_atomic(corrupt / records.CONFIG_FILE, "model:\n  n_layer: 2\n")
        (corrupt / records.SUMMARY_FILE).write_text('{"run_id": "corrupt_summary", "sweep": "x", "stat')
        records.write_text_atomic(root / "no_summary" / records.CONFIG_FILE, "model:\n  n_layer: 3\n")
        # Hydra's own folder sits beside the runs in a real multirun; it is not a run.
        records.write_text_atomic(root / ".hydra" / "config.yaml", "hydra: {}\n")
    return root


# run id -> a word the exclusion warning for it must contain
BAD_RUNS = {
    "big_diverged": "diverged",
    "big_failed": "failed",
    "big_running": "running",
    "corrupt_summary": "unreadable",
    "no_summary": "no summary.json",
}
