# bftws: every target installs what it needs (pinned, cached under $HOME) before it runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
BFTWS_CACHE ?= $(HOME)/.cache/bftws
export BFTWS_CACHE
NODE_IMAGE ?= localhost/bftws-node:dev
OPERATOR_IMAGE ?= localhost/bftws-operator:dev

.PHONY: run demo dev bench profile chaos chaos-deps test e2e e2e-kwok e2e-cluster setup build dev-build lint fmt unit openapi crds manifests check-generated image image-smoke prometheus-check console-test-deps clean

BIN = "$${CARGO_TARGET_DIR:-target}/release/bftws-node"
# Every dev build selects the same packages, targets and features, so dependencies compile once
# per run (a build of one package alone unifies features differently and rebuilds them).
DEV = --workspace --all-targets --features bftws-node/byzantine-test
DEV_BIN = "$${CARGO_TARGET_DIR:-target}/debug"

## run: set up, start a 4-1 devnet on real CometBFT, run one supplier and one warehouse session, keep serving
run: setup build
	$(BIN) devnet --l1 4 --l2 1 --demo

## demo: the same as run, but stop the devnet and exit after the workflow (for scripts)
demo: setup build
	$(BIN) devnet --l1 4 --l2 1 --demo --exit-after-demo

## dev: the whole service in one process on the in-process sequencer (no CometBFT)
dev: build
	$(BIN) dev

## bench: the full benchmark (every configuration, direct-L1 baseline, concurrency) into bench/results
bench: setup build
	./scripts/bench.sh

## profile: CPU by process kind and a flamegraph per kind of a 4-1 devnet under 64 workers (root: perf -a)
profile: setup build
	./scripts/profile.sh

## test: set up, then lint, check generated files and run every test
test: setup lint check-generated unit e2e prometheus-check image-smoke

## image: build the node and operator images (Dockerfile) with podman from local Debian bases: no registry needed
image:
	NODE_IMAGE=$(NODE_IMAGE) OPERATOR_IMAGE=$(OPERATOR_IMAGE) ./scripts/image-build.sh

## image-smoke: 4 L1 + 1 L2 node pods from the node image on a podman network commit sessions, also with an L1 node killed
image-smoke: image
	NODE_IMAGE=$(NODE_IMAGE) ./scripts/image-smoke.sh

## prometheus-check: a real Prometheus scrapes a devnet; every dashboard and alert query must use exported series
prometheus-check: dev-build
	./scripts/prometheus-check.sh

## e2e: both Kubernetes suites (below), on a control plane built from Go modules (cached under $HOME)
e2e: e2e-kwok e2e-cluster

## e2e-kwok: the operator against a real kube-apiserver with kwok's fake nodes (Helm, RBAC, leader
## election, admission, the objects it builds); one of its two replicas runs from the operator
## image (E2E_IMAGE= runs both from the host build)
E2E_IMAGE ?= $(OPERATOR_IMAGE)
e2e-kwok: $(if $(E2E_IMAGE),image) dev-build
	./scripts/k8s-testenv.sh build >/dev/null
	dir=$$(mktemp -d) && OPERATOR_IMAGE=$(E2E_IMAGE) ./scripts/k8s-testenv.sh run "$$dir/k8s" -- ./scripts/operator-e2e.sh

## e2e-cluster: the same control plane with one real node (kubelet, containerd, CNI, kube-proxy,
## CoreDNS): helm install from the operator image, the 4-1 sample on real pods of the node image,
## sessions committed, L2 scaled, a validator deleted, deletion with Retain and Delete (root)
e2e-cluster: image dev-build
	K8S_TESTENV_KUBELET=1 ./scripts/k8s-testenv.sh build >/dev/null
	./scripts/install-helm.sh >/dev/null
	dir=$$(mktemp -d) && K8S_TESTENV_KUBELET=1 NODE_IMAGE=$(NODE_IMAGE) OPERATOR_IMAGE=$(OPERATOR_IMAGE) \
		./scripts/k8s-testenv.sh run "$$dir/k8s" -- ./scripts/cluster-e2e.sh

setup:
	@./scripts/setup.sh

build:
	$(CARGO) build --release -p bftws-node

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(DEV) -- -D warnings

## dev-build: every package and test of the workspace, once (the binaries the other targets run)
dev-build:
	$(CARGO) build $(DEV)

fmt:
	$(CARGO) fmt --all

unit: dev-build console-test-deps chaos-deps
	$(CARGO) test $(DEV)

## chaos-deps: Debian's iproute2 and nftables for the fault campaign's network namespaces
chaos-deps:
	./scripts/install-chaos-deps.sh

## chaos: the long fault campaign (root): 15 minutes of every fault kind on a 4 + 4 devnet with
## each node in its own network namespace, judged by the checker; report in bench/results/chaos
CHAOS_SEED ?= 1
CHAOS_SECONDS ?= 900
chaos: setup dev-build chaos-deps
	$(DEV_BIN)/bftws-node chaos --netns --seed $(CHAOS_SEED) --seconds $(CHAOS_SECONDS) --workers 8 \
		--dir .chaos --out bench/results/chaos

## console-test-deps: Debian's Chromium and ChromeDriver and axe-core (npm) for the console's browser test
console-test-deps:
	./scripts/install-console-test-deps.sh >/dev/null

## openapi: regenerate docs/openapi.json from the handlers
openapi: dev-build
	$(DEV_BIN)/bftws-node openapi > docs/openapi.json

## crds: regenerate crds/ (and the chart's copy) from the operator's CRD types
crds: dev-build
	$(DEV_BIN)/bftws-operator crd --output crds/bftws.io_bftwebservices.yaml
	cp crds/bftws.io_bftwebservices.yaml charts/bftws-operator/crds/

## manifests: render manifests/install.yaml (namespace, CRD, operator) from the chart's defaults
manifests: crds
	./scripts/render-manifests.sh

## check-generated: fail when a generated file (OpenAPI, CRDs) is stale
check-generated: openapi crds manifests
	@git diff --exit-code -- docs/openapi.json crds/ charts/bftws-operator/crds/ manifests/ || { echo "generated files are stale: run 'make openapi manifests' and commit" >&2; exit 1; }

clean:
	$(CARGO) clean
