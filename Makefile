# Clickstream Analytics & Sessionization — every target sets up what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
PY312_BIN := $(firstword $(wildcard $(shell pyenv root 2>/dev/null)/versions/3.12.*/bin) /usr/bin)
PYTEST_ARGS ?=

.PHONY: setup demo test lint build bench check-build clean tools serve web deploy-web deploy-web-stack

$(VENV)/.stamp: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.stamp

# The browser half (web/): the tracker and the store, one npm project (web/package-lock.json), built with esbuild
# to web/tracker/dist/ and web/store/dist/. npm ci runs again only when the lock file changes.
web/node_modules/.stamp: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { echo "need node 20+ and npm on PATH for web/"; exit 1; }
	npm ci --prefix web --no-audit --no-fund
	touch $@

web: web/node_modules/.stamp
	npm run build --prefix web

# The store to a deployed stack (StoreHosting=enabled): build it, then upload web/store/dist with the config.json the
# stack's outputs make and invalidate index.html and config.json (docs/runbook.md, "Deploying the store").
# make deploy-web STACK=<stack name> [REGION=<region>] [DEPLOY_WEB_ARGS='--no-require-consent ...']
deploy-web: deploy-web-stack setup web
	$(VENV)/bin/clickstream deploy-web --stack-name "$(STACK)" $(if $(REGION),--region "$(REGION)") $(DEPLOY_WEB_ARGS)

deploy-web-stack:
	@test -n "$(STACK)" || { echo "usage: make deploy-web STACK=<stack name> [REGION=<region>]"; exit 2; }

demo: setup
	$(VENV)/bin/clickstream demo $(DEMO_ARGS)

serve: setup web
	$(VENV)/bin/clickstream serve $(SERVE_ARGS)

# The real Snowplow tracker, esbuild and playwright-core for tests/e2e/test_snowplow_tracker_browser.py; npm ci runs
# again only when the lock file changes.
SNOWPLOW_JS := web/snowplow-capture
$(SNOWPLOW_JS)/node_modules/.stamp: $(SNOWPLOW_JS)/package.json $(SNOWPLOW_JS)/package-lock.json
	@command -v npm >/dev/null || { echo "need node 20+ and npm on PATH for $(SNOWPLOW_JS)"; exit 1; }
	npm ci --prefix $(SNOWPLOW_JS) --no-audit --no-fund
	touch $@

# Coverage is measured over the unit and integration tests; the end-to-end tests (whole simulated weeks through
# moto) run after them without the line tracer, which slows their pure-Python paths about eightfold.
# Both runs use TEST_WORKERS pytest-xdist workers (2: CI's cores; TEST_WORKERS=0 runs in one process), handed a
# whole test file at a time (--dist loadfile) so a module's server or recorded run is built once; pytest-cov
# combines the workers' coverage before --cov-fail-under checks it.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile
test: setup web $(SNOWPLOW_JS)/node_modules/.stamp
	bash scripts/ensure-chromium.sh
	npm test --prefix web
	$(PY) -m pytest $(XDIST) --cov=clickstream --cov=clickstream_cli --cov=clickstream_local --cov-report=term:skip-covered --cov-fail-under=80 --ignore=tests/e2e $(PYTEST_ARGS)
	$(PY) -m pytest $(XDIST) tests/e2e $(PYTEST_ARGS)

$(TOOLS)/sam/.stamp:
	@test -x $(PY312_BIN)/python3.12 || { echo "need python3.12 (pyenv install 3.12) for the SAM tools"; exit 1; }
	$(PY312_BIN)/python3.12 -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(TOOLS)/sam/bin/pip install -q --disable-pip-version-check 'aws-sam-cli>=1.120,<2' 'cfn-lint>=1.20,<2' 'aws-sam-translator>=1.90,<2'
	touch $@

$(TOOLS)/checkov/.stamp:
	@test -x $(PY312_BIN)/python3.12 || { echo "need python3.12 (pyenv install 3.12) for checkov"; exit 1; }
	$(PY312_BIN)/python3.12 -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(TOOLS)/checkov/bin/pip install -q --disable-pip-version-check 'checkov>=3.2,<4' 'packaging<24'
	touch $@

tools: $(TOOLS)/sam/.stamp $(TOOLS)/checkov/.stamp

# cfn-lint and checkov run on the template translated by samtranslator (Refs inside serverless resources checked
# too), twice: with the parameters' defaults, and with every optional part switched on (checkov evaluates the
# template's conditions with the defaults, so the second translation writes those values as defaults). cfn-lint
# fails on errors, checkov on any failed check; a skipped check is justified in its resource's Metadata.
LINT_OPTIONS := CreateWarehouse=true EnableWaf=true Stage=prod AllowedOrigin=https://shop.example.com \
	AlarmEmail=ops@example.com
lint: setup tools
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	SAM_CLI_TELEMETRY=0 PATH="$(PY312_BIN):$$PATH" $(TOOLS)/sam/bin/sam validate --lint --template template.yaml
	$(TOOLS)/sam/bin/python scripts/translate_template.py template.yaml .aws-sam/translated.json
	$(TOOLS)/sam/bin/python scripts/translate_template.py template.yaml .aws-sam/translated-options.json \
		$(addprefix --default ,$(LINT_OPTIONS))
	$(TOOLS)/sam/bin/cfn-lint --non-zero-exit-code error -- .aws-sam/translated.json .aws-sam/translated-options.json
	$(TOOLS)/checkov/bin/checkov --skip-download --quiet --compact --framework cloudformation \
		-f .aws-sam/translated.json -f .aws-sam/translated-options.json

# sam build for python3.12 (pyenv's interpreter on PATH), then byte-compile what it built: layers ship no .pyc.
build: tools
	SAM_CLI_TELEMETRY=0 PATH="$(PY312_BIN):$$PATH" $(TOOLS)/sam/bin/sam build --template template.yaml
	$(PY312_BIN)/python3.12 scripts/compile_build.py .aws-sam/build

# Import every built handler with only its own layers on sys.path, as Lambda would; sizes and import times.
check-build: build
	$(TOOLS)/sam/bin/python scripts/check_build.py .aws-sam/build --python $(PY312_BIN)/python3.12 --runtime-from $(TOOLS)/sam

# The benchmarks' peers (Polars) come from the `bench` extra, which the dev install includes.
bench: setup
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf .aws-sam demo-output serve-output .pytest_cache .coverage web/tracker/dist web/store/dist
