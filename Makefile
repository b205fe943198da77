# execplanner: the two commands of the quick start are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The venv is rebuilt when the project's dependencies change.
VENV_STAMP := $(VENV)/.installed-$(shell cat pyproject.toml setup.py | sha1sum | cut -c1-12)

.PHONY: help venv crds build cluster cluster-down cluster-purge kubeconfig demo test test-unit \
        test-integration bench-engine bench-operator bench-booking bench-floor bench-planner bench-start bench-peers chaos operator planner token
.PHONY: image chart-lint browser test-browser

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV_STAMP): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pip install -q -e '.[test]'
	@rm -rf build $(VENV)/.installed-* && touch $@

venv: $(VENV_STAMP) ## the Python environment (.venv) with execplanner installed editable

build: ## build the local control plane's binaries (cached by version outside the checkout)
	cluster/build.sh

cluster: ## start the local control plane, or reuse the running one
	cluster/up.sh

cluster-down: ## stop the local control plane's processes
	cluster/down.sh

cluster-purge: ## stop it and delete its state (certificates, etcd data, logs)
	cluster/down.sh --purge

kubeconfig: ## print the admin kubeconfig's path
	@bash -c '. cluster/env.sh && echo "$$kubeconfig"'

demo: venv cluster ## run the main job end to end
	$(PY) -m execplanner.demo

test: venv browser ## unit tests, then integration tests against the local control plane, then the web page's in Chromium
	@cluster/up.sh || { echo "make test: the local control plane could not be started (see above); integration tests cannot run" >&2; exit 1; }
	$(PY) -m pytest tests/unit tests/integration
	$(MAKE) --no-print-directory test-browser

# The browser tests run in a pytest session of their own: they start their own operator and
# planner, which must not run beside the integration tests' ones.
test-browser: venv browser ## the web page's tests in headless Chromium (Debian's chromium, installed if missing)
	@cluster/up.sh || { echo "make test-browser: the local control plane could not be started (see above)" >&2; exit 1; }
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(PY) -m pytest tests/browser

browser: ## install Chromium for the browser tests from Debian's chromium package (apt-get), if missing
	@tests/browser/install-chromium.sh >/dev/null

crds: venv ## generate crds/ (the Helm chart links to it) from the API's models in src/execplanner/api
	$(PY) -m execplanner.api.crds --out crds

test-unit: venv ## unit tests only (no cluster)
	$(PY) -m pytest tests/unit

bench-engine: venv ## planning-engine benchmark: one JSON line per cluster size
	$(PY) bench/engine_bench.py

operator: venv cluster ## run the operator in the foreground, with its own ServiceAccount's credentials
	$(PY) -m execplanner.localrun

bench-operator: venv cluster ## operator benchmark: 1,000 plans against 200 kwok nodes, one JSON line
	$(PY) bench/operator_bench.py

bench-booking: venv cluster ## bench-operator's booking path alone (every window an hour ahead, nothing starts)
	BENCH_STARTS=later $(PY) bench/operator_bench.py

bench-floor: venv cluster ## the control plane alone (no operator): 500 Jobs at once to Running, one JSON line
	$(PY) bench/floor_bench.py

bench-start: venv cluster ## start-on-time bench (plans vs bare Jobs, API writes, operator CPU, idle plans), JSON lines; purges and restarts the cluster first unless BENCH_REUSE_CLUSTER=1
	@if [ "$(BENCH_REUSE_CLUSTER)" != 1 ]; then cluster/down.sh --purge && cluster/up.sh; fi
	$(PY) bench/start_bench.py

bench-federation: venv ## federated /accepts (three sites, one slow) against one site's, JSON lines; its own cluster
	$(PY) bench/federation_bench.py

PEER ?= kueue
bench-peers: venv ## side by side with a peer on the same work: PEER=kueue or PEER=slurm (builds or installs the peer; its own cluster)
	@case "$(PEER)" in kueue|slurm) ;; *) echo "make bench-peers: PEER must be kueue or slurm, not '$(PEER)'" >&2; exit 2;; esac
	$(PY) bench/peers_$(PEER).py

chaos: venv ## faults with nothing lost (operator kills, API server and etcd restarts, lost nodes; one JSON line) on a cluster of its own, purged at the end; CHAOS_SEED, CHAOS_PLANS
	$(PY) bench/chaos.py

IMAGE ?= execplanner:dev
image: ## build the container image (needs a Docker engine; this project's machine has none)
	@docker info >/dev/null 2>&1 || { echo "make image: no Docker engine answers here (docker info failed), so the image cannot be built on this machine; run 'make image' where Docker runs, or: docker build --build-arg HELM_VERSION=<cluster/versions.env> -t $(IMAGE) ." >&2; exit 1; }
	. cluster/versions.env && docker build --build-arg HELM_VERSION=$$HELM_VERSION -t $(IMAGE) .

chart-lint: venv ## helm lint --strict the chart, and its unit tests (helm template with several values)
	@bash -c '. cluster/env.sh && test -x "$$helm_bin/helm"' || cluster/build.sh
	@bash -c 'set -o pipefail; . cluster/env.sh && "$$helm_bin/helm" lint --strict helm/execplanner 2>&1 | grep -v "found symbolic link in path"'
	$(PY) -m pytest tests/unit/test_chart_lint.py

planner: venv cluster ## run the planner HTTP service in the foreground on http://127.0.0.1:$${PLANNER_PORT:-8080}
	$(PY) -m execplanner.localrun planner

token: venv ## print a bearer token the local planner accepts: make token USER=alice
	@test -n "$(USER)" || { echo "make token: say whose, e.g. make token USER=alice" >&2; exit 2; }
	@$(PY) -m execplanner.devidentity token "$(USER)"

bench-planner: venv cluster ## planner benchmark: 1,000 nodes, 10,000 booked plans; JSON lines
	$(PY) bench/planner_bench.py
