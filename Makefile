# The front door: `make setup` then `make run` / `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONF ?= conf/local.yaml

.PHONY: setup run demo-data test lint bench clean

setup:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"

demo-data:
	$(BIN)/sftmix demo-data --out demo

run: demo-data
	$(BIN)/sftmix run --conf $(CONF)

test:
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check .

bench:
	$(BIN)/python benchmarks/ingest.py

clean:
	rm -rf lake demo reports benchmarks/work
