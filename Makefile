# scaling-harness. A fresh machine needs two commands: `make sweep` and `make test`; each sets up what it needs.
#   make sweep                       venv + packages + corpus, plan the default sweep for this machine (budgets from a
#                                    fixed ladder, as many as fit 60% of what MINUTES leaves after set-up and the
#                                    report), run it budget by budget (smallest first, each recentred on the minima
#                                    measured so far), then adaptive batches (the runs that narrow N_opt's interval
#                                    most per FLOP) until the deadline, with progress, fit, report; MINUTES is the whole
#   make sweep SWEEP=isoflop_cpu_llama   the same, planned the same way in the same MINUTES, for the Llama-style family
#   make sweep SWEEP=<preset>        run a named preset's exact grid (sweeps/<preset>.yaml) after checking its plan
#   make test                        venv + packages + corpus, then the whole test suite (slow end-to-end tests too)
#   make plan [SWEEP=...] [BUDGETS=1e12:1e15:7]   print (and check) every run: size, N, D, steps, FLOPs, epochs,
#                                    predicted seconds, predicted wall time; trains nothing
#   make report [SWEEP=...]          re-fit and re-plot results/$(SWEEP) without training
#   make setup TORCH=torch           GPU machines: install the default (CUDA) torch build instead of the CPU wheel
#   make compare [RECIPE_B=...]      two recipes as two machine-sized sequential sweeps (MINUTES each: about
#                                    2 x MINUTES + a few minutes of fitting), then `analysis compare` of the two
#   make lint                        ruff (lint and format check, one line length) and mypy over the code, as CI runs it

PYTHON ?= python3
VENV   ?= .venv
# CPU wheel by default: a bare `torch` requirement pulls a multi-GB CUDA build. GPU users: make setup TORCH=torch
TORCH  ?= torch==2.13.0
SWEEP  ?= isoflop_cpu
PYTEST_ARGS ?=
MINUTES ?= 10
BUDGETS ?=
PLAN_ARGS ?=
# early stop in the machine-sized sweeps (issue 18): a run whose predicted end's 90% interval lies wholly above 1.02x
# its budget's best finished run is stopped at half its steps and read at that end; EARLY_STOP=0 turns it off
EARLY_STOP ?= 0.5
# the default sweep (isoflop_cpu) and its Llama-style twin are planned for this machine in MINUTES; any other preset
# runs its exact grid
MACHINE_SIZED := isoflop_cpu isoflop_cpu_llama
PLAN_CMD = $(PY) -m scaling.sweep.plan --minutes $(MINUTES) $(if $(BUDGETS),--budgets $(BUDGETS)) $(PLAN_ARGS) \
           --preset $(SWEEP) $(if $(filter $(SWEEP),$(MACHINE_SIZED)),--sequential,--exact)

PY    := $(VENV)/bin/python
# when make began: MINUTES is the whole `make sweep` (set-up and corpus included), so the sweep plans from this
STARTED := $(shell date +%s)
STAMP := $(VENV)/.installed

.PHONY: setup data sweep plan report test test-fast lint bench clean-results compare

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q "$(TORCH)"
	$(PY) -m pip install --disable-pip-version-check -q -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

data: setup
	$(PY) -m scaling.data prepare shakespeare

sweep: data
ifneq ($(filter $(SWEEP),$(MACHINE_SIZED)),)
	$(PY) -m scaling.sweep.sequential --preset $(SWEEP) --minutes $(MINUTES) --started $(STARTED) \
	    --early-stop $(EARLY_STOP) $(if $(BUDGETS),--budgets $(BUDGETS)) $(PLAN_ARGS)
else
	$(PLAN_CMD) --write results/$(SWEEP)
	$(PY) -m scaling.train -cd sweeps -cn $(SWEEP)
endif
	$(PY) -m analysis report results/$(SWEEP)

plan: data
	$(PLAN_CMD)

report: setup
	$(PY) -m analysis report results/$(SWEEP)

test: data
	$(PY) -m pytest -q $(PYTEST_ARGS)

test-fast: data
	$(PY) -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

# issue 17: recipe A is the default sweep, recipe B the same with one change; RECIPE_B is that change (arguments or
# Hydra overrides of scaling.sweep.sequential): by default the Llama-style family (sweeps/isoflop_cpu_llama.yaml),
# e.g. RECIPE_B='--lr-rule deepseek' for another LR rule
RECIPE_A ?=
RECIPE_B ?= --preset isoflop_cpu_llama
compare: data
	$(PY) -m scaling.sweep.sequential --minutes $(MINUTES) $(if $(BUDGETS),--budgets $(BUDGETS)) --sweep compare_a $(RECIPE_A)
	$(PY) -m scaling.sweep.sequential --minutes $(MINUTES) $(if $(BUDGETS),--budgets $(BUDGETS)) --sweep compare_b $(RECIPE_B)
	$(PY) -m analysis compare results/compare_a results/compare_b --out results/compare

bench: setup
	$(PY) -m scaling.bench
	$(PY) -m analysis.studies.bench

clean-results:
	rm -rf results/$(SWEEP)

# GPU machines: set up from nothing with CUDA torch, run sweeps/isoflop_gpu.yaml alone and several runs per GPU,
# torchrun on 2 GPUs if present, and print tokens/s, MFU and aggregate throughput (scripts/gpu_check.sh)
.PHONY: gpu-check
gpu-check:
	scripts/gpu_check.sh
