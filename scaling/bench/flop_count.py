"""The analytic FLOP terms of each architecture (scaling/core/archs.py) against torch's flop counter, term by term:
``python -m scaling.bench.flop_count [--size 3e4] [--seq-len 64] [--vocab 512]`` prints one table per architecture.

One forward and backward pass of one sequence of seq_len tokens under ``torch.utils.flop_counter.FlopCounterMode``,
attention forced onto SDPA's math backend (on CPU the fused flash kernel is not in the counter's table, so it would
count no attention at all; the math backend runs the same two batched matmuls, QK^T and PV, that the analytic terms
count). The counter counts matmuls only (aten.mm, aten.bmm, ...), each backward as the two matmuls it runs, so the
analytic side is 3 x the forward term (Hoffmann et al. 2022 Appendix F: backward = 2 x forward). What it does not
count, by design: the embedding lookup (an index, not a matmul; Appendix F counts it as a one-hot matmul), the
softmax, rotary positions, norms, nonlinearities, the SwiGLU product and the loss.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from scaling.core import archs
from scaling.core.family import Shape, shape_for
from scaling.model import registry

# analytic terms -> which of the counter's figures they are compared with
NOT_COUNTED = {
    "embeddings": "a lookup (index), not a matmul",
    "softmax": "elementwise: the counter counts matmuls only",
    "rotary": "elementwise: the counter counts matmuls only",
}


@dataclass(frozen=True)
class Row:
    term: str
    analytic: float  # training FLOPs of one sequence: 3 x the forward term
    counted: float  # the flop counter's figure for the same operations
    note: str = ""


def count(shape: Shape, *, math_attention: bool = True) -> dict[str, dict[str, int]]:
    """The flop counter's figures of one forward + backward pass, by module path and op name."""
    registry.prepare(shape.arch)
    torch.manual_seed(0)
    model = registry.build(shape)
    idx = torch.randint(0, shape.vocab_size, (1, shape.seq_len + 1))
    with FlopCounterMode(display=False) as counter:
        if math_attention:
            with sdpa_kernel(SDPBackend.MATH):
                _, loss = model(idx[:, :-1], idx[:, 1:])
        else:
            _, loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
    return {k: {str(op): int(n) for op, n in v.items()} for k, v in counter.get_flop_counts().items()}


def compare(shape: Shape) -> list[Row]:
    """Each analytic term of ``shape``'s architecture beside the flop counter's count of the same operations."""
    counts = count(shape)
    root = type(registry.build(shape)).__name__  # the counter's top-level module name
    terms = archs.get(shape.arch).forward_terms(shape, embeddings=True)

    def module_total(suffix: str, ops: tuple[str, ...]) -> int:
        return sum(
            n
            for i in range(shape.n_layer)
            for op, n in counts.get(f"{root}.blocks.{i}.{suffix}", {}).items()
            if op.split(".")[-1].split("_")[0] in ops or op in ops
        )

    attn_mm = module_total("attn", ("aten.mm", "mm", "addmm"))
    attn_bmm = module_total("attn", ("aten.bmm", "bmm", "baddbmm"))
    rows = [
        Row("qkv + project", 3.0 * (terms["qkv"] + terms["project"]), float(attn_mm), "attention projections (mm)"),
        Row("logits + reduce", 3.0 * (terms["logits"] + terms["reduce"]), float(attn_bmm), "QK^T and PV (bmm)"),
        Row("dense", 3.0 * terms["dense"], float(module_total("mlp", ("aten.mm", "mm", "addmm"))), "MLP matmuls"),
        Row("head", 3.0 * terms["head"], float(sum(counts.get(f"{root}.head", {}).values())), "final logits"),
    ]
    for term, why in NOT_COUNTED.items():
        if term in terms:
            rows.append(Row(term, 3.0 * terms[term], 0.0, f"not counted: {why}"))
    counted_total = float(sum(counts["Global"].values()))
    rows.append(Row("total", 3.0 * sum(terms.values()), counted_total, "whole pass (Global)"))
    return rows


def table(shape: Shape) -> str:
    rows = compare(shape)
    s = shape.seq_len
    lines = [
        ("gpt " if shape.arch == "gpt" else "") + shape.describe(),
        f"{'term':<16} {'analytic/token':>15} {'counter/token':>15} {'ratio':>7}  note",
    ]
    for r in rows:
        ratio = f"{r.counted / r.analytic:.4f}" if r.analytic else "-"
        lines.append(f"{r.term:<16} {r.analytic / s:>15,.0f} {r.counted / s:>15,.0f} {ratio:>7}  {r.note}")
    default_kernel = sum(count(shape, math_attention=False)["Global"].values()) / s
    lines.append(f"{'(default SDPA)':<16} {'':>15} {default_kernel:>15,.0f} {'':>7}  CPU's fused kernel: not counted")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="3e4")
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--untied", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    for arch in archs.BUILTIN:
        sh = shape_for(
            args.size, vocab_size=args.vocab, seq_len=args.seq_len, arch=arch, tie_embeddings=not args.untied
        )
        print(table(sh), end="\n\n")


if __name__ == "__main__":
    main()
