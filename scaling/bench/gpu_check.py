"""Measure what this machine's GPU does with the harness: a short sweep one run at a time, the same sweep with several
runs per GPU (scaling/launch/placement.py), a 2-GPU torchrun when two are present, and one table of the results.

    python -m scaling.bench.gpu_check                 # CUDA: sweeps/isoflop_gpu.yaml (what scripts/gpu_check.sh runs)
    python -m scaling.bench.gpu_check --tiny          # CPU, seconds: the same code path on sweeps/isoflop_tiny.yaml

The table: per run, tokens/s (median over steps) and MFU = tokens/s x training FLOPs per token (Chinchilla
Appendix F convention, scaling/core/flops.py) / the measured matmul rate (bf16 on CUDA, fp32 on CPU: a dense matmul
timed here, so MFU is against what this device really does, not a datasheet peak); aggregate throughput (every run's
tokens / the sweep's wall time) one at a time and concurrently, and their ratio; the wall time of each phase. Runs go to
``results/gpu_check/`` (one folder per phase, so the second phase does not skip the first one's complete runs); the
table is also written there as ``report.json``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from scaling.bench.matmul import matmul_rate
from scaling.core import records

REPO = Path(__file__).resolve().parents[2]


def launch(args: list[str], env_extra: dict | None = None, torchrun: int = 0) -> float:
    """Run ``python -m scaling.train`` (or under torchrun) to the end; return its wall time. Raises on failure."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    pre = (
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={torchrun}"]
        if torchrun
        else [sys.executable]
    )
    t0 = time.perf_counter()
    r = subprocess.run([*pre, "-m", "scaling.train", *args], cwd=REPO, env=env, text=True, capture_output=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed (exit {r.returncode}):\n{r.stderr[-4000:]}")
    return wall


def summaries(sweep_dir: Path) -> list[records.RunSummary]:
    out = [records.read_summary(d) for d in records.iter_run_dirs(sweep_dir)]
    bad = [s.run_id for s in out if s.status != records.STATUS_COMPLETE]
    if bad:
        raise RuntimeError(f"{sweep_dir}: runs not complete: {bad}")
    return sorted(out, key=lambda s: s.params_non_embedding)


def placement_n_jobs(preset: str, overrides: list[str]) -> int:
    from scaling.launch.placement import n_jobs

    return n_jobs(str(REPO / "sweeps"), preset, overrides, verbose=True)


def _rate(s: records.RunSummary) -> float:
    assert s.tokens_per_second is not None, s.run_id  # set on every run that trained (all of a finished sweep's)
    return s.tokens_per_second


def check(tiny: bool, out: Path, ddp: bool | None = None) -> dict:
    t_all = time.perf_counter()
    cuda = torch.cuda.is_available() and not tiny
    if not tiny and not cuda:
        raise SystemExit("gpu_check: no CUDA device here; use --tiny for the CPU code path")
    preset = "isoflop_tiny" if tiny else "isoflop_gpu"
    overrides = ["model.size=5e3,1e4", "train.budget=2e10", "train.device=cpu"] if tiny else []
    peak = matmul_rate(torch.float32, 256) if tiny else matmul_rate(torch.bfloat16, 8192, seconds=1.0, device="cuda")
    device_name = torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores)"
    if out.exists():
        shutil.rmtree(out)
    common = ["-cd", "sweeps", "-cn", preset, *overrides, "sweep=gpu_check", "log.progress=false"]

    # one run at a time
    seq_wall = launch([*common, f"results_dir={out / 'sequential'}", "hydra.launcher.n_jobs=1"])
    seq = summaries(out / "sequential" / "gpu_check")
    # several runs per device, as many as placement allows
    n = placement_n_jobs(preset, overrides)
    conc_wall = launch([*common, f"results_dir={out / 'concurrent'}", f"hydra.launcher.n_jobs={n}"])
    conc = summaries(out / "concurrent" / "gpu_check")
    tokens = sum(s.tokens_trained for s in seq)

    ddp_row = None
    n_gpus = torch.cuda.device_count() if cuda else 0
    if ddp if ddp is not None else n_gpus >= 2:
        biggest = seq[-1]
        args = [
            f"model.size={biggest.size}",
            f"train.tokens={biggest.tokens}",
            "sweep=gpu_check_ddp",
            f"results_dir={out / 'ddp'}",
            "log.progress=false",
            "train.distributed=on",
            *(
                [
                    "train.device=cpu",
                    "model.seq_len=64",
                    "model.head_size=8",
                    "train.batch_size=8",
                    "train.eval_tokens=8192",
                    "train.threads=1",
                ]
                if tiny
                else ["model.seq_len=512", "model.head_size=64", "train.batch_size=64", "train.dtype=bf16"]
            ),
        ]
        wall = launch(args, torchrun=2)
        (d,) = records.iter_run_dirs(out / "ddp" / "gpu_check_ddp")
        s = records.read_summary(d)
        ddp_row = {
            "size": s.size,
            "N": s.params_non_embedding,
            "processes": 2,
            "tokens_per_s": s.tokens_per_second,
            "wall_s": wall,
            "final_val_loss": s.final_val_loss,
        }

    report = {
        "device": device_name,
        "matmul_flops_per_s": peak,
        "preset": preset,
        "flash_sdp": bool(torch.backends.cuda.flash_sdp_enabled()) if cuda else None,
        "runs": [
            {
                "size": s.size,
                "N": s.params_non_embedding,
                "tokens": s.tokens_trained,
                "dtype": s.dtype,
                "tokens_per_s": s.tokens_per_second,
                "mfu": _rate(s) * s.flops_per_token["chinchilla"] / peak,
                "tokens_per_s_concurrent": c.tokens_per_second,
            }
            for s, c in zip(seq, conc)
        ],
        "sequential": {"jobs": 1, "wall_s": seq_wall, "tokens_per_s": tokens / seq_wall},
        "concurrent": {"jobs": n, "wall_s": conc_wall, "tokens_per_s": tokens / conc_wall},
        "speedup": seq_wall / conc_wall,
        "ddp": ddp_row,
        "wall_s": time.perf_counter() - t_all,
    }
    records.write_json_atomic(out / "report.json", report)
    return report


def table(r: dict) -> str:
    rate = "bf16" if r["preset"] != "isoflop_tiny" else "fp32"
    lines = [
        f"device: {r['device']}   measured {rate} matmul: {r['matmul_flops_per_s'] / 1e12:.2f} TFLOP/s   "
        f"preset: sweeps/{r['preset']}.yaml"
        + ("" if r["flash_sdp"] is None else f"   SDPA flash kernels enabled: {r['flash_sdp']}"),
        f"{'size':>8} {'N':>12} {'tokens':>12} {'dtype':>5} {'tok/s alone':>13} {'MFU':>7} {'tok/s shared':>13}",
    ]
    for x in r["runs"]:
        lines.append(
            f"{x['size']:>8} {x['N']:>12,} {x['tokens']:>12,} {x['dtype']:>5} {x['tokens_per_s']:>13,.0f} "
            f"{x['mfu']:>7.1%} {x['tokens_per_s_concurrent']:>13,.0f}"
        )
    sq, cc = r["sequential"], r["concurrent"]
    lines += [
        f"aggregate, one run at a time: {sq['tokens_per_s']:>12,.0f} tok/s  ({sq['wall_s']:.1f} s)",
        f"aggregate, {cc['jobs']} runs at once:     {cc['tokens_per_s']:>12,.0f} tok/s  ({cc['wall_s']:.1f} s)   "
        f"x{r['speedup']:.2f}",
    ]
    if r["ddp"]:
        d = r["ddp"]
        lines.append(
            f"torchrun, 2 processes, size {d['size']}: {d['tokens_per_s']:,.0f} tok/s ({d['wall_s']:.1f} s, "
            f"final val loss {d['final_val_loss']:.4f})"
        )
    else:
        lines.append("torchrun: skipped (fewer than 2 GPUs)")
    lines.append(f"wall time: {r['wall_s']:.1f} s")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m scaling.bench.gpu_check", description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU, tiny models: the code path in seconds (tests)")
    ap.add_argument(
        "--ddp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run the 2-process torchrun (default: when 2 GPUs are present)",
    )
    ap.add_argument("--out", default="results/gpu_check", help="results folder (replaced)")
    a = ap.parse_args(argv)
    print(table(check(a.tiny, Path(a.out).absolute(), a.ddp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
