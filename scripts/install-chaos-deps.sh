#!/usr/bin/env bash
# Installs what the fault campaign (`bftws-node chaos --netns`) needs, from Debian; a warm run
# only checks: iproute2 (`ip netns`, `tc`) and nftables (`nft`: the cuts and the packet loss).
set -euo pipefail
if command -v ip >/dev/null && command -v tc >/dev/null && command -v nft >/dev/null; then
	exit 0
fi
if [[ $(id -u) != 0 ]]; then
	echo "install-chaos-deps: error: install Debian's iproute2 and nftables (apt-get, as root)" >&2
	exit 1
fi
echo "install-chaos-deps: installing iproute2 and nftables" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 nftables >/dev/null
