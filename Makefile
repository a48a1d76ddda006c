# deq-flow-jax: the two entry points of the README, plus a few helpers.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= runs/demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow lint bench clean-venv

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

## make demo: build the synthetic dataset, train a tiny DEQ-Flow on the CPU, evaluate, plot.
demo: $(STAMP)
	$(PY) -m deq_flow_jax.cli demo --workdir $(DEMO_DIR)

## make test: the CI suite (slow checks excluded).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 $(PYTEST_ARGS)

## make test-slow: only the slow-marked checks.
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow $(PYTEST_ARGS)

## make lint: ruff (rules in pyproject.toml [tool.ruff]).
lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) -m pip install -q -e '.[test,bench]'
	$(PY) benchmarks/solvers.py

clean-venv:
	rm -rf $(VENV)
