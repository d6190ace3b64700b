# One obvious command per task. `make test` is what CI runs (.ci/run).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
CODE    = src tests $(wildcard bench scripts)

.PHONY: install dev run lint typecheck pytest test test-fast bench eval eval-default clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python            ## the package and its runtime dependencies
	$(BIN)/pip install -q -e .

dev: $(BIN)/python                ## plus the test, lint and type-check tools
	$(BIN)/pip install -q -e '.[dev]'

run: install                      ## the main job on the embedded defaults (builds the default snapshot once)
	$(BIN)/geowarden ip 1.2.4.8 8.8.8.8 2400:3200::1 175.45.176.1
	$(BIN)/geowarden check --ip 1.2.4.8
	$(BIN)/geowarden check --ip 8.8.8.8

lint: dev
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)

typecheck: dev
	$(BIN)/mypy

pytest: dev
	$(BIN)/python -m pytest

test: lint typecheck pytest       ## everything CI checks

test-fast: dev                    ## the quick tests only (no lint): everything not marked slow
	$(BIN)/python -m pytest -q -m "not slow"

bench: install                    ## benchmarks against the maxminddb C reader (see bench/README.md)
	$(BIN)/python bench/bench_lookup.py
	$(BIN)/python bench/bench_decide.py
	$(BIN)/python bench/bench_load.py

eval: install                     ## intel quality over ../shared/data (docs/intel-quality.md, docs/intel-holdout.md)
	$(BIN)/python scripts/eval_intel.py
	$(BIN)/python scripts/eval_intel_holdout.py --write docs/intel-holdout.md

eval-default: install             ## the default snapshot against the full build (see docs/intel-default.md)
	$(BIN)/python scripts/eval_default.py --write docs/intel-default.md

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
