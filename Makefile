# bftws: every target installs what it needs (pinned, cached under $HOME) before it runs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

CARGO ?= cargo
BFTWS_CACHE ?= $(HOME)/.cache/bftws
export BFTWS_CACHE

.PHONY: run test setup build lint fmt unit openapi check-generated clean

## run: set up, then run the local two-layer service and one full workflow
run: setup build
	"$${CARGO_TARGET_DIR:-target}/release/bftws-node" dev

## test: set up, then lint, check generated files and run every test
test: setup lint check-generated unit

setup:
	@./scripts/setup.sh

build:
	$(CARGO) build --release -p bftws-node

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

unit:
	$(CARGO) test --workspace

## openapi: regenerate docs/openapi.json from the handlers
openapi:
	$(CARGO) run -q -p bftws-node -- openapi > docs/openapi.json

## check-generated: fail when a generated file is stale
check-generated: openapi
	@git diff --exit-code -- docs/openapi.json || { echo "docs/openapi.json is stale: run 'make openapi' and commit" >&2; exit 1; }

clean:
	$(CARGO) clean
