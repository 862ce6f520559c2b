"""Make the stored reference loss curve: one tiny fp32 run on CPU (1 thread, 40 steps, a few seconds) through the
user's own command line, its per-step train loss and final validation loss written with the config that made them.

    python tests/data/make_reference_curve.py              # rewrite tests/data/reference_curve.json
    python tests/data/make_reference_curve.py --out X.json  # write elsewhere (tests/e2e/test_reference_curve.py does)

Regenerate only when a change is meant to move the numbers, and say why in the commit. Needs the default corpus in
the cache (`make data`, or $SCALING_DATA_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
STORED = HERE / "reference_curve.json"
COMMAND = "python tests/data/make_reference_curve.py"
STEPS = 40
OVERRIDES = [
    "sweep=reference",
    "data.source=shakespeare",
    "data.vocab_size=512",
    "model.size=5e3",
    "model.seq_len=32",
    "train.batch_size=8",
    f"train.tokens={STEPS * 8 * 32}",
    "train.seed=0",
    "train.dtype=fp32",
    "train.threads=1",
    "train.eval_interval=10",
    "train.eval_tokens=2048",
    "train.final_eval_tokens=8192",
    "log.progress=false",
]


def make(results_dir: Path) -> dict:
    """Train the reference run into ``results_dir`` (python -m scaling.train, one CPU thread) and return the record."""
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "WANDB_MODE": "offline",
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    env.setdefault("SCALING_DATA_DIR", str(REPO / ".cache" / "data"))
    env.pop("SCALING_FAULT_POINT", None)
    cmd = [sys.executable, "-m", "scaling.train", *OVERRIDES, f"results_dir={results_dir}"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"the reference run failed (exit {r.returncode}):\n{r.stderr[-3000:]}")
    (run_dir,) = (results_dir / "reference").glob("N*")
    metrics = pq.read_table(run_dir / "metrics.parquet", columns=["step", "train_loss"]).to_pydict()
    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config.pop("results_dir", None)  # where it ran, not what it ran
    return {
        "command": COMMAND,
        "overrides": OVERRIDES,
        "config": config,
        "made_with": {
            "torch": summary["versions"].get("torch"),
            "cpu_isa": summary["cpu_isa"],
            "threads": summary["threads"],
            "dtype": summary.get("dtype"),
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY"),
            "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        },
        "steps": [int(s) for s in metrics["step"]],
        "train_loss": [float(x) for x in metrics["train_loss"]],
        "final_val_loss": float(summary["final_val_loss"]),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=STORED, help=f"where to write the curve (default {STORED})")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        record = make(Path(tmp))
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{len(record['train_loss'])} steps, final val loss {record['final_val_loss']!r} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
