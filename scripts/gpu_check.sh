#!/usr/bin/env bash
# GPU check: on a CUDA machine, from a fresh checkout, set up (CUDA torch), prepare the corpus, and run
# `python -m scaling.bench.gpu_check`: the sweeps/isoflop_gpu.yaml preset one run at a time and several runs per GPU
# (scaling/launch/placement.py), a 2-GPU torchrun when two GPUs are present, and a table of tokens/s, MFU against the GPU's
# measured bf16 matmul rate, aggregate throughput with and without concurrency, and the wall time.
# Sized to finish in under 10 minutes on one H200 (most of it the CUDA torch download on a bare machine).
#   scripts/gpu_check.sh            (or: make gpu-check)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
if command -v nvidia-cuda-mps-control >/dev/null && pgrep -x nvidia-cuda-mps >/dev/null; then
  echo "CUDA MPS daemon running: concurrent runs share the GPU through MPS"
else
  echo "no CUDA MPS daemon: concurrent runs time-slice the GPU (start one with nvidia-cuda-mps-control -d)"
fi
# a checkout already set up with the CPU wheel keeps it: the CUDA build then goes into its own venv
VENV=.venv
if [ -x .venv/bin/python ] &&
   ! .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  VENV=.venv-cuda
fi
make setup TORCH=torch VENV="$VENV"
make data VENV="$VENV"
"$VENV"/bin/python -c "import torch; assert torch.cuda.is_available(), 'gpu_check: torch sees no CUDA device'; \
print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.device_count(), 'GPU(s)')"
# the whole check may not outlast 10 minutes, setup included
left=$(( 590 - ($(date +%s) - start) ))
timeout "$left" "$VENV"/bin/python -m scaling.bench.gpu_check "$@"
echo "gpu_check: $(( $(date +%s) - start )) s in all, setup included"
