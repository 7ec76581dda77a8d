# Everything runs from a project-local virtual environment that these rules create.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The UCI benchmark data shipped beside the project (override to use another copy).
export TFBNN_UCI_DIR ?= $(abspath ../shared/data/uci)

.PHONY: setup demo test test-slow lint bench bench-uci clean

setup: $(STAMP)

$(STAMP): requirements-lock.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-lock.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/tfbnn demo

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

lint: $(STAMP)
	$(PY) -m ruff check .

bench: $(STAMP)
	$(PY) benchmarks/bench_core.py --splits 20

bench-uci: $(STAMP)
	$(VENV)/bin/tfbnn benchmark uci

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
