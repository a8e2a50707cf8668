# Each target does its own setup: a fresh clone needs only python3 (3.11+), npm and make.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
HELM    := tools/bin/helm
export PATH := $(CURDIR)/tools/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test docs test-lowest test-real real cluster-up bench-real lint lock demo bench clean deploy-nonprod

NODE    := node_modules/.installed

setup: $(STAMP) $(HELM) $(NODE)

$(NODE): package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

# Every dependency from the hash-pinned lock (regenerate it with `make lock`), then the project.
$(STAMP): pyproject.toml requirements.lock
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# The lowest versions pyproject.toml's floors allow, so that the floors stay true.
LOWEST       := .venv-lowest
LOWEST_STAMP := $(LOWEST)/.installed
$(LOWEST_STAMP): pyproject.toml $(STAMP)
	rm -rf $(LOWEST)
	$(VENV)/bin/uv venv --quiet --python $(PY) $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(VENV)/bin/uv pip install --quiet --resolution lowest-direct -e '.[dev]'
	touch $@

$(HELM): scripts/install-helm.sh
	bash scripts/install-helm.sh tools/bin

lint: $(STAMP)
	$(VENV)/bin/ruff check cli tests bench scripts
	$(VENV)/bin/ruff format --check cli tests bench scripts
	$(VENV)/bin/mypy

## The whole suite: lint, types, unit, conformance and end-to-end tests; then the tests that
## cover every SDK call again at the lowest dependency versions pyproject.toml allows.
test: setup lint docs
	$(VENV)/bin/pytest -n 2 -q --durations=15
	$(MAKE) --no-print-directory test-lowest

## The documentation site (docs/ + mkdocs.yml) into build/site/, strictly: a broken link or anchor,
## or a page missing from the navigation, fails. The CLI reference is generated from the Typer app.
docs: $(STAMP)
	$(VENV)/bin/typer releasegate.app utils docs --name releasegate --title "CLI reference" \
		--output docs/cli.md
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# Every SDK call at least once: the adapters' own tests, the whole pipeline (test_e2e), server-side
# apply and pruning (the client's apply-patch content type), the analysis (SigV4) and notifications
# (urllib3). The strategies' suites add no SDK call of their own, so they run once, above.
LOWEST_TESTS := tests/test_releases.py tests/test_registry.py tests/test_kube.py tests/test_verify.py \
	tests/test_lock.py tests/test_ledger.py tests/test_render.py tests/test_config.py tests/test_version.py \
	tests/test_skaffold.py tests/test_chart.py tests/test_actions.py tests/test_report.py tests/test_e2e.py \
	tests/test_serverside.py tests/test_pruning.py tests/test_analysis.py tests/test_notify.py \
	tests/test_freeze.py tests/test_metrics.py
test-lowest: $(LOWEST_STAMP) $(HELM) $(NODE)
	PATH="$(CURDIR)/$(LOWEST)/bin:$$PATH" $(LOWEST)/bin/pytest -n 2 -q $(LOWEST_TESTS)

## The real tier's parts (etcd, kube-apiserver, controller-manager, scheduler, kubectl, kwok,
## skaffold from the Go module proxy; Prometheus from Debian), built once into a cache outside
## the clone, ~/.cache/releasegate/real: a second run costs nothing.
real:
	bash cluster/build.sh

## The real tier: the end-to-end scenarios against a real control plane, real skaffold and kubectl.
## One control plane for the run (it takes seconds to start), so the tests run one at a time.
test-real: setup real
	RELEASEGATE_TIER=real $(VENV)/bin/pytest -q --durations=15 tests/real

## A real control plane to try things by hand: prints the admin and deployer KUBECONFIGs.
cluster-up: setup real
	$(PY) -m tests.real.controlplane

## Regenerate the hash-pinned lock files from pyproject.toml (needs the package index).
lock: $(STAMP)
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --generate-hashes --universal \
		--python-version 3.11 -q -o requirements.lock
	$(VENV)/bin/uv pip compile pyproject.toml --generate-hashes --universal \
		--python-version 3.11 -q -o requirements-deploy.lock

## A full deploy against the local emulators, then a broken release being caught.
## CHART=1: the same with nonprod described by the Helm chart in helm/.
demo: setup
	$(PY) scripts/demo.py $(if $(CHART),--chart) $(if $(CANARY),--canary)

## A developer's own deploy to nonprod: their current kube-context and AWS_PROFILE.
deploy-nonprod: $(STAMP)
	@test -n "$(TAG)" || { echo "usage: make deploy-nonprod TAG=v1.4.2  (uses AWS_PROFILE and the current kube-context)"; exit 2; }
	$(VENV)/bin/releasegate deploy --env nonprod --tag "$(TAG)"

bench: setup
	$(PY) bench/run.py
	$(PY) bench/waves.py

## The same comparisons on the real control plane: releasegate beside kubectl and helm.
bench-real: setup real
	$(PY) bench/real.py

clean:
	rm -rf $(VENV) $(LOWEST) tools build node_modules .pytest_cache .mypy_cache .ruff_cache
