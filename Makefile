# Each target does its own setup: a fresh clone needs only python3 (3.11+), npm and make.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
HELM    := tools/bin/helm
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test lint demo bench clean

setup: $(STAMP) $(HELM)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(HELM): scripts/install-helm.sh
	bash scripts/install-helm.sh tools/bin

lint: $(STAMP)
	$(VENV)/bin/ruff check cli tests bench scripts
	$(VENV)/bin/ruff format --check cli tests bench scripts
	$(VENV)/bin/mypy

## The whole suite: lint, types, unit, conformance and end-to-end tests.
test: setup lint
	$(VENV)/bin/pytest -n 2 -q

## A full deploy against the local emulators, then a broken release being caught.
demo: setup
	$(PY) scripts/demo.py

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) tools build .pytest_cache .mypy_cache .ruff_cache
