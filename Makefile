# Run `make help` for the list of targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
.PHONY: help install init demo test lint lint-workflows infra-plan bench bench-monitor bench-batch format down clean

help: ## List the targets with one line each
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade 'pip>=24.2'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its test tools

init: $(STAMP) ## Make a fork your own project: asks the answers, renders every dependent file
	$(BIN)/mlops init

demo: $(STAMP) ## Run the whole local lifecycle: train, register, gate, preprod, promote, prod, monitor
	$(BIN)/mlops demo

test: lint lint-workflows ## Lint code and workflows, check project consistency, run the tests (offline)
	$(BIN)/mlops init --check
	$(BIN)/python -m pytest

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

clean: ## Remove local state (.mlops) and the virtualenv
	-test -x $(BIN)/mlops && $(BIN)/mlops down --all --yes
	rm -rf .mlops $(VENV)
