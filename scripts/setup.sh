#!/usr/bin/env bash
# Installs everything `make run` and `make test` need, pinned and cached under $HOME; safe to
# run again (a warm run only checks).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (Rust >= 1.88) is required: install it with rustup" >&2
  exit 1
fi
./scripts/install-cometbft.sh >/dev/null
# openssl makes the test control plane's certificates (scripts/k8s-testenv.sh).
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq openssl >/dev/null
  else
    echo "error: openssl is required (apt-get install openssl)" >&2
    exit 1
  fi
fi
