#!/usr/bin/env bash
# Describes the machine and versions a benchmark ran on (Markdown).
set -uo pipefail
cd "$(dirname "$0")/.."
COMETBFT="$(./scripts/install-cometbft.sh 2>/dev/null)"
echo "# Benchmark environment"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) × $(nproc) cores"
echo "- memory: $(free -g | awk '/Mem:/ {print $2}') GiB; disk of the devnets: $(df -h . | awk 'NR==2 {print $1}')"
echo "- OS: $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)"
echo "- bftws: $(git rev-parse --short HEAD 2>/dev/null) (release build), $(rustc --version)"
echo "- CometBFT: $("$COMETBFT" version) (Go $(go env GOVERSION 2>/dev/null))"
echo "- all nodes of a configuration on this one host, on 127.0.0.1; state on disk (fsync on)"
echo
echo "CometBFT settings (generated config.toml, both layers unless noted): create_empty_blocks = false,"
echo "timeout_commit = 0s (L2) / 20ms (L1), timeout_propose = 1s, timeout_prevote/precommit = 500ms,"
echo "flush_throttle_timeout = 1ms, peer_gossip_sleep_duration = 2ms, pex = false, persistent peers,"
echo "ABCI over a Unix socket, mempool recheck on, tx index kv."
