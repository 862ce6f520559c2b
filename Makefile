# scaling-harness. A fresh machine needs two commands: `make sweep` and `make test`; each sets up what it needs.
#   make sweep [SWEEP=isoflop_cpu]   venv + packages + corpus, run the sweep preset sweeps/$(SWEEP).yaml, fit, report
#   make test                        venv + packages + corpus, then the whole test suite (slow end-to-end tests too)
#   make plan [SWEEP=...]            print every run of a preset (size, N, tokens, FLOPs, steps) without training
#   make report [SWEEP=...]          re-fit and re-plot results/$(SWEEP) without training
#   make setup TORCH=torch           GPU machines: install the default (CUDA) torch build instead of the CPU wheel

PYTHON ?= python3
VENV   ?= .venv
# CPU wheel by default: a bare `torch` requirement pulls a multi-GB CUDA build. GPU users: make setup TORCH=torch
TORCH  ?= torch==2.13.0
SWEEP  ?= isoflop_cpu
PYTEST_ARGS ?=

PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup data sweep plan report test test-fast bench clean-results

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q "$(TORCH)"
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

data: setup
	$(PY) -m scaling.data prepare shakespeare

sweep: data
	$(PY) -m scaling.train -cd sweeps -cn $(SWEEP)
	$(PY) -m analysis report results/$(SWEEP)

plan: setup
	$(PY) -m scaling.train -cd sweeps -cn $(SWEEP) dry_run=true

report: setup
	$(PY) -m analysis report results/$(SWEEP)

test: data
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: data
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(PY) -m scaling.bench
	$(PY) -m analysis.bench

clean-results:
	rm -rf results/$(SWEEP)

# GPU machines: set up from nothing with CUDA torch, run sweeps/isoflop_gpu.yaml alone and several runs per GPU,
# torchrun on 2 GPUs if present, and print tokens/s, MFU and aggregate throughput (scripts/gpu_check.sh)
.PHONY: gpu-check
gpu-check:
	scripts/gpu_check.sh
