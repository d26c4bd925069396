#!/usr/bin/env bash
# Installs the pinned CometBFT into a cache under $HOME, idempotently, and prints its path.
# CometBFT v0.38 is the ABCI 2.0 line that tower-abci speaks; never @latest (that is v1.x).
set -euo pipefail

COMETBFT_VERSION="${COMETBFT_VERSION:-v0.38.26}"
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
BIN_DIR="$CACHE_ROOT/cometbft/$COMETBFT_VERSION/bin"
BIN="$BIN_DIR/cometbft"

if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "error: Go is required to install CometBFT $COMETBFT_VERSION (go install); install Go >= 1.22 and retry" >&2
  exit 1
fi

mkdir -p "$BIN_DIR"
echo "installing cometbft $COMETBFT_VERSION into $BIN_DIR ..." >&2
GOTOOLCHAIN=local GOBIN="$BIN_DIR" GOFLAGS=-mod=mod \
  go install "github.com/cometbft/cometbft/cmd/cometbft@$COMETBFT_VERSION" >&2
"$BIN" version >/dev/null
echo "$BIN"
