# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

$(BIN)/nctool: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,ray,faiss]'
	touch $@

.PHONY: setup demo test test-fast lint
setup: $(BIN)/nctool

demo: setup
	$(BIN)/nctool demo --out runs/demo

test: setup
	$(BIN)/python -m pytest

# the edit loop: everything but the tests marked slow (end-to-end runs, the browser), under 3 minutes on 2 cores
test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# style and the layer contracts (pyproject.toml: [tool.ruff], [tool.importlinter])
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
