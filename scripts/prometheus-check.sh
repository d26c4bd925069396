#!/usr/bin/env bash
# Proves that the chart's dashboard and alerts ask only for series that bftws nodes and CometBFT
# really export: a real Prometheus (the Debian package) scrapes a 4-1 devnet of real processes
# while it runs supply-chain sessions, loads charts/bftws-operator/rules/bftws.rules.yaml, and
# then every dashboard query and every rule is evaluated (scripts/prometheus/check.py). An
# unknown metric name, a query Prometheus refuses or a rule that fails to evaluate fails the run.
#
#   scripts/prometheus-check.sh            (make prometheus-check; part of make test)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NODE="${CARGO_TARGET_DIR:-$ROOT/target}/debug/bftws-node"
COMETBFT=$("$ROOT/scripts/install-cometbft.sh")
CHART="$ROOT/charts/bftws-operator"
WORK=$(mktemp -d)
log() { echo "prometheus-check: $*" >&2; }
fail() {
  log "FAIL: $*"
  for f in "$WORK"/prometheus.log "$WORK"/devnet.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }; done
  exit 1
}

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || fail "prometheus is not installed: apt-get install prometheus"
  log "installing prometheus (Debian package)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
[ -x "$NODE" ] || fail "build it first (make dev-build): $NODE"

promtool check rules "$CHART/rules/bftws.rules.yaml" >/dev/null || fail "promtool check rules: $(promtool check rules "$CHART/rules/bftws.rules.yaml" 2>&1)"

# Free ports: a block of 1000 for the devnet (L1 from BASE, L2 from BASE + 500), one for Prometheus.
read -r BASE PROM_PORT < <(python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try: s.bind(("127.0.0.1", port)); return True
        except OSError: return False
for _ in range(100):
    base = random.randrange(30000, 59000, 1000)
    if all(free(base + i) for i in (0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33, 500, 501, 502, 503, 999)):
        print(base, base + 999); break
PY
)
[ -n "${BASE:-}" ] || fail "no free port range"

# Scrape targets, as the chart's PodMonitor sees a pod: the app's /metrics and CometBFT's, labelled
# with the BftWebService (app_kubernetes_io_instance) and layer (bftws_io_layer) that the
# PodMonitor adds from pod labels. Devnet node i of a layer owns ports base + 10 i + {0..9}:
# p2p, rpc, CometBFT metrics (+2), API (+3).
targets() { # targets BASE COUNT OFFSET
  local i
  for ((i = 0; i < $2; i++)); do printf '"127.0.0.1:%d",' $(($1 + 10 * i + $3)); done | sed 's/,$//'
}
cat >"$WORK/prometheus.yml" <<YAML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: ["$CHART/rules/bftws.rules.yaml"]
scrape_configs:
  - job_name: bftws-app
    static_configs:
      - targets: [$(targets "$BASE" 4 3)]
        labels: {namespace: devnet, app_kubernetes_io_instance: devnet, bftws_io_layer: l1}
      - targets: [$(targets $((BASE + 500)) 1 3)]
        labels: {namespace: devnet, app_kubernetes_io_instance: devnet, bftws_io_layer: l2}
  - job_name: cometbft
    static_configs:
      - targets: [$(targets "$BASE" 4 2)]
        labels: {namespace: devnet, app_kubernetes_io_instance: devnet, bftws_io_layer: l1}
      - targets: [$(targets $((BASE + 500)) 1 2)]
        labels: {namespace: devnet, app_kubernetes_io_instance: devnet, bftws_io_layer: l2}
YAML
promtool check config "$WORK/prometheus.yml" >/dev/null || fail "promtool check config: $(promtool check config "$WORK/prometheus.yml" 2>&1)"

pids=()
cleanup() { local pid; for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
pids+=($!)
"$NODE" devnet --l1 4 --l2 1 --demo --dir "$WORK/devnet" --base-port "$BASE" --cometbft "$COMETBFT" >"$WORK/devnet.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 120); do grep -q '^serving' "$WORK/devnet.log" && break; kill -0 "${pids[1]}" 2>/dev/null || fail "the devnet exited"; sleep 1; done
grep -q '^serving' "$WORK/devnet.log" || fail "the devnet did not finish its demo sessions in 120 s"
# More sessions while Prometheus scrapes every second, so rates and quantiles have data.
for round in 1 2; do
  "$NODE" demo --api "http://127.0.0.1:$((BASE + 500 + 3))" --package-id "PKG-PROMETHEUS-$round" >>"$WORK/demo.log" 2>&1 ||
    fail "demo sessions: $(tail -5 "$WORK/demo.log")"
done
sleep 3
log "devnet up and scraped; evaluating the dashboard and the rules"
python3 "$ROOT/scripts/prometheus/check.py" "http://127.0.0.1:$PROM_PORT" "$CHART/dashboards/bftws.json" ||
  fail "dashboard or rule queries do not match what the nodes export"
