#!/usr/bin/env bash
# Installs what the console's browser test needs, pinned; a warm run only checks:
# - Debian's Chromium and ChromeDriver (apt-get, as root; nothing downloads a browser),
# - axe-core from npm into $BFTWS_CACHE/console-test (injected into the page by the test).
set -euo pipefail
AXE_VERSION=4.14.1
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
AXE_DIR="$CACHE_ROOT/console-test"
AXE_JS="$AXE_DIR/node_modules/axe-core/axe.min.js"

if ! [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "install-console-test-deps: error: install Debian's chromium and chromium-driver (apt-get, as root)" >&2
		exit 1
	fi
	echo "install-console-test-deps: installing chromium and chromium-driver" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

installed=$(node -p "require('$AXE_DIR/node_modules/axe-core/package.json').version" 2>/dev/null || true)
if [[ $installed != "$AXE_VERSION" ]]; then
	command -v npm >/dev/null || { echo "install-console-test-deps: error: npm is required" >&2; exit 1; }
	echo "install-console-test-deps: installing axe-core $AXE_VERSION" >&2
	mkdir -p "$AXE_DIR"
	npm install --prefix "$AXE_DIR" --no-audit --no-fund --silent "axe-core@$AXE_VERSION" >/dev/null
fi
[[ -f $AXE_JS ]] || { echo "install-console-test-deps: error: $AXE_JS is missing" >&2; exit 1; }
echo "$AXE_JS"
