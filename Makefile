# Two commands for a newcomer: `make run` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: run test lint typecheck check bench clean assets

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Front-end packages from package-lock.json (today only axe-core, used by the browser tests).
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NPM_STAMP)

assets: $(NPM_STAMP)  ## install the pinned front-end packages (npm ci)

run: $(STAMP)  ## set up, initialise the data directory if needed, serve on 127.0.0.1:8000
	$(BIN)/atom-os init
	$(BIN)/atom-os serve

export ATOM_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
export ATOM_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

test: $(STAMP) $(NPM_STAMP)  ## the whole suite on SQLite and PostgreSQL (PostgreSQL/Redis tests skip with a reason when absent)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)  ## every benchmark, each printing ratios to a floor measured in the same run
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) node_modules .artifacts .pytest_cache .mypy_cache .ruff_cache
