# Two commands on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# BLAS thread pools thrash on small machines (see LABELING_THREADS in docs/configuration.md).
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: install install-test demo serve test clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# What the service needs (make demo), and on top of it what the tests need (make test): the
# tests' extras (torch, mlflow, schemathesis, datasets, playwright) are gigabytes a demo never uses.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/hitl db upgrade
	LABELING_PUBLIC_URL=$${LABELING_PUBLIC_URL:-http://$(HOST):$(PORT)} $(BIN)/hitl demo
	$(BIN)/hitl serve --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance/*.db*
