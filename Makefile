# Documented entry points: demo, test, bench, lint (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/placer place sample_models/bert_base.onnx --input-shape input_ids=8,128

test: $(VENV)/.dev-installed
	$(BIN)/python -m pytest

MILP_LIMIT ?= 60

bench: $(VENV)/.installed
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_milp.py --time-limit $(MILP_LIMIT)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check placer tests bench sample_models

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
