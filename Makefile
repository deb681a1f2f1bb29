# Run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TOOLS  := .tools
# uv installs .venv from uv.lock. This pinned release: the one on PATH if it is that release,
# else a private copy in .tools/ (a fresh machine needs only python3).
UV_VERSION := 0.13.9
UV ?= $(shell uv --version 2>/dev/null | grep -qx 'uv $(UV_VERSION)\( .*\)\?' && command -v uv || echo $(TOOLS)/uv/bin/uv)
# The tests run on every core (pytest-xdist), each worker taking whole modules (tests/conftest.py
# keeps the users of the stacks' plan together); TEST_WORKERS=0 runs them in one process.
TEST_WORKERS ?= auto
PYTEST := $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope

.DEFAULT_GOAL := help
.PHONY: help install lock init demo test test-fast test-at lint lint-workflows infra-plan bench bench-monitor bench-batch format down clean

help: ## List the targets with one line each
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(TOOLS)/uv/bin/uv:
	$(PYTHON) -m venv $(TOOLS)/uv
	$(TOOLS)/uv/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# --frozen: install exactly what uv.lock holds, and fail rather than re-resolve if pyproject.toml
# moved on without it (`make lock` updates the lock). --compile-bytecode: uv, unlike pip, leaves
# .py files uncompiled, and every server and `mlops` process would compile numpy, pandas and
# mlflow again on import (where PYTHONDONTWRITEBYTECODE is set, on every start).
$(STAMP): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --compile-bytecode --extra dev --python $(PYTHON)
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its test tools, from uv.lock

lock: | $(UV) ## Resolve uv.lock again after a dependency in pyproject.toml changed (needs the index)
	$(UV) lock

init: $(STAMP) ## Make a fork your own project: asks the answers, renders every dependent file
	$(BIN)/mlops init

demo: $(STAMP) ## Run the whole local lifecycle: train, register, gate, preprod, promote, prod, monitor
	$(BIN)/mlops demo

test: lint lint-workflows ## Lint code and workflows, check project consistency, run the tests (offline)
	$(BIN)/mlops init --check
	$(UV) lock --check --offline  # uv.lock still holds what pyproject.toml asks for
	UV=$(UV) $(PYTEST)  # the workflows' set-up step runs this uv under act (tests/github)

test-fast: $(STAMP) ## The unit tests only: no servers, one small cached training run (seconds)
	$(PYTEST) -m unit -q

# Every Python process of the run (pytest, mlops, servers, training steps) starts its wall clock
# at WHEN plus the time since the run began (tests/clock/sitecustomize.py, time-machine).
test-at: $(STAMP) ## The whole suite with the clock moved to WHEN (UTC): make test-at WHEN='2028-02-29 23:59:00'
	@shift=$$($(BIN)/python tests/clock/shift.py '$(WHEN)') || exit 2; \
	echo "the clock runs $$shift s from now: $(WHEN) UTC at the start"; \
	MLOPS_TEST_CLOCK_SHIFT=$$shift PYTHONPATH=$(CURDIR)/tests/clock UV=$(UV) $(PYTEST)

lint: $(STAMP) ## Lint and check formatting
	$(BIN)/ruff check src tests infra benchmarks
	$(BIN)/ruff format --check src tests infra benchmarks

lint-workflows: $(STAMP) ## Check .github/ with zizmor, actionlint and the JSON schemas
	$(BIN)/zizmor --offline --quiet .
	$(BIN)/actionlint
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

infra-plan: $(STAMP) ## Print what `pulumi up` would create per stack (offline, Pulumi mocks)
	$(BIN)/python infra/plan.py

bench: $(STAMP) ## Serving benchmark, collection on: ONNX vs scikit-learn vs mlflow serve vs empty script
	$(BIN)/python benchmarks/serving.py

bench-monitor: $(STAMP) ## Drift pass over 1M collected records, beside Evidently if installed ('.[bench]')
	$(BIN)/python benchmarks/monitor.py

bench-batch: $(STAMP) ## Batch scoring of 100k and 1M rows (CSV, Parquet): rows/s and peak memory
	$(BIN)/python benchmarks/batch.py

format: $(STAMP) ## Apply the formatter and safe lint fixes
	$(BIN)/ruff format src tests infra benchmarks
	$(BIN)/ruff check --fix src tests infra benchmarks

down: $(STAMP) ## Stop every local endpoint the lifecycle started
	$(BIN)/mlops down --all --yes

clean: ## Remove local state (.mlops), the virtualenv and the private uv
	-test -x $(BIN)/mlops && $(BIN)/mlops down --all --yes
	rm -rf .mlops $(VENV) $(TOOLS)
