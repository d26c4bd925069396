#!/usr/bin/env bash
# A Python virtualenv with pinned matplotlib under $HOME (idempotent); prints its python.
set -euo pipefail
VENV="${BFTWS_CACHE:-$HOME/.cache/bftws}/venv-plot"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  python3 -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet 'matplotlib==3.9.2' >&2
fi
echo "$VENV/bin/python"
