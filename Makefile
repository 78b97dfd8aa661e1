# Train once, deploy anywhere. `make run` does the main job, `make test` proves it.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
MODEL_NAME ?= mnist
ARTIFACT ?= artifacts/$(MODEL_NAME)
REPOSITORY ?= models
HOST ?= 127.0.0.1
PORT ?= 8000
TRAIN_ARGS ?= --hidden 256,128 --epochs 10

.PHONY: install run train export serve test test-fast bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt -e ".[test,dev,fast]"
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund --loglevel=error; else echo "npm not found: Node-based tests will skip"; fi
	touch $(STAMP)

train: install
	$(PY) -m trainer $(TRAIN_ARGS) --out $(ARTIFACT) --overwrite

export: install
	$(PY) -m exporter $(ARTIFACT) --repository $(REPOSITORY) --name $(MODEL_NAME)

serve: install
	@echo "Serving $(REPOSITORY) on http://$(HOST):$(PORT)  (UI: http://$(HOST):$(PORT)/  docs: http://$(HOST):$(PORT)/docs)"
	@echo "Try: curl -s -X POST http://$(HOST):$(PORT)/v1/models/$(MODEL_NAME):predict -d @examples/predict-one.json"
	$(PY) -m service --repository $(REPOSITORY) --host $(HOST) --port $(PORT)

run: train export serve

test: install
	$(PY) -m pytest -m "slow or not slow" $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m pip install -q -c constraints.txt -e ".[bench]"
	$(PY) bench/train_bench.py
	$(PY) bench/export_bench.py
	$(PY) bench/serve_bench.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) node_modules artifacts models .pytest_cache .mypy_cache .ruff_cache
