# Documented entry points: demo, test, bench, lint (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench bench-transformers fidelity lint clean browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# numba compiles the DP's kernels at their first run (40 s here from an empty cache, and a
# --time-limit cannot cut that short): compiled once at install, into numba's disk cache
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	$(BIN)/python -m placer.solvers.dp.warmup
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

# Two workers, each taking whole test files (module fixtures such as the calibration are
# made once): the suite takes about 60% of its one-process time on a 2-core machine.
TEST_WORKERS ?= 2

test: $(VENV)/.dev-installed browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

MILP_LIMIT ?= 60

bench: $(VENV)/.installed fidelity
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/bench_scale.py
	$(BIN)/python bench/bench_milp.py --time-limit $(MILP_LIMIT)

# placer's predictions against onnxruntime on this machine's CPU (calibrated first)
fidelity: $(VENV)/.installed
	$(BIN)/python bench/fidelity.py

# PyPI's Linux torch wheels pull in the CUDA libraries (gigabytes); the CPU build carries
# the local version "+cpu" and is found on PyTorch's CPU index (TORCH_INDEX=...) or in a
# wheel folder pip already searches (pip.conf's find-links). It goes in first, so that the
# extra's "torch>=2.4" is already met and pip leaves it alone.
TORCH ?= torch==2.13.0+cpu
TORCH_INDEX ?=
TRANSFORMERS_LIMIT ?= 60

$(VENV)/.bench-installed: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

bench-transformers: $(VENV)/.bench-installed
	$(BIN)/python bench/build_transformers.py
	$(BIN)/python bench/bench_transformers.py --time-limit $(TRANSFORMERS_LIMIT)

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check placer tests bench sample_models

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
