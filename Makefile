# Clickstream Analytics & Sessionization — every target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
PY312_BIN := $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin) /usr/bin)
PYTEST_ARGS ?=

.PHONY: setup demo test lint build bench check-build clean tools serve

$(VENV)/.stamp: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.stamp

demo: setup
	$(VENV)/bin/clickstream demo $(DEMO_ARGS)

serve: setup
	$(VENV)/bin/clickstream serve $(SERVE_ARGS)

test: setup
	bash scripts/ensure-chromium.sh
	$(PY) -m pytest --cov=clickstream --cov-report=term:skip-covered --cov-fail-under=80 $(PYTEST_ARGS)

$(TOOLS)/sam/.stamp:
	$(PY312_BIN)/python3.12 -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install -q --upgrade pip
	$(TOOLS)/sam/bin/pip install -q 'aws-sam-cli>=1.120,<2' 'cfn-lint>=1.20,<2' 'aws-sam-translator>=1.90,<2'
	touch $@

$(TOOLS)/checkov/.stamp:
	$(PY312_BIN)/python3.12 -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q --upgrade pip
	$(TOOLS)/checkov/bin/pip install -q 'checkov>=3.2,<4' 'packaging<24'
	touch $@

tools: $(TOOLS)/sam/.stamp $(TOOLS)/checkov/.stamp

lint: setup tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PATH="$(PY312_BIN):$$PATH" $(TOOLS)/sam/bin/sam validate --lint --template template.yaml
	$(TOOLS)/sam/bin/python scripts/translate_template.py template.yaml .aws-sam/translated.json
	$(TOOLS)/sam/bin/cfn-lint .aws-sam/translated.json
	$(TOOLS)/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation -f template.yaml --soft-fail

build: tools
	PATH="$(PY312_BIN):$$PATH" $(TOOLS)/sam/bin/sam build --template template.yaml
	$(PY312_BIN)/python3.12 scripts/compile_build.py .aws-sam/build

check-build: build
	$(PY312_BIN)/python3.12 scripts/check_build.py .aws-sam/build

bench: setup
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf .aws-sam demo-output serve-output .pytest_cache .coverage
