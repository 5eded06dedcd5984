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

.PHONY: setup demo test
setup: $(BIN)/nctool

demo: setup
	$(BIN)/nctool demo --out runs/demo

test: setup
	$(BIN)/python -m pytest
