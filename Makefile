# Documented entry points: demo, test, bench, lint (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint clean browser

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

# The HTML report test renders pages in Debian's headless Chromium: install it when
# missing (as root, or through sudo); PLACER_SKIP_BROWSER=1 skips it instead.
CHROMIUM := /usr/bin/chromium
APT := $(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get

browser:
	@if [ "$$PLACER_SKIP_BROWSER" != 1 ] && [ ! -x $(CHROMIUM) ]; then \
		echo "installing Debian's chromium for the HTML report test"; \
		$(APT) update -qq && $(APT) install -y -qq --no-install-recommends chromium >/dev/null; \
	fi

test: $(VENV)/.dev-installed browser
	$(BIN)/python -m pytest

MILP_LIMIT ?= 60

bench: $(VENV)/.installed
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_milp.py --time-limit $(MILP_LIMIT)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check placer tests bench sample_models

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
