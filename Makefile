# Each target does its own setup: a fresh clone needs only python3 (3.11+), npm and make.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
HELM    := tools/bin/helm
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test lint demo bench clean deploy-nonprod

NODE    := node_modules/.installed

setup: $(STAMP) $(HELM) $(NODE)

$(NODE): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

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
## CHART=1: the same with nonprod described by the Helm chart in helm/.
demo: setup
	$(PY) scripts/demo.py $(if $(CHART),--chart)

## A developer's own deploy to nonprod: their current kube-context and AWS_PROFILE.
deploy-nonprod: $(STAMP)
	@test -n "$(TAG)" || { echo "usage: make deploy-nonprod TAG=v1.4.2  (uses AWS_PROFILE and the current kube-context)"; exit 2; }
	$(VENV)/bin/releasegate deploy --env nonprod --tag "$(TAG)"

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) tools build node_modules .pytest_cache .mypy_cache .ruff_cache
