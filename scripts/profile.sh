#!/usr/bin/env bash
# Where the CPU goes under load: a 4-1 devnet with W concurrent workers doing full sessions,
# sampled by `perf record -a -g` over a window once the load runs. Writes, into OUT
# (default bench/results/profile):
#   cpu-by-kind.csv          CPU-seconds per process kind (L1/L2 CometBFT, L1/L2 app, load
#                            generator, other) over the window, and each one's share
#   <kind>.svg               a flamegraph per process kind (inferno)
# Needs root (perf -a), perf from Debian (linux-perf) and inferno (installed here, pinned).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKERS=${WORKERS:-64}
WINDOW=${WINDOW:-15}
OUT=${OUT:-bench/results/profile}
INFERNO_VERSION=0.12.8
CACHE_ROOT="${BFTWS_CACHE:-$HOME/.cache/bftws}"
INFERNO="$CACHE_ROOT/inferno/$INFERNO_VERSION/bin"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release/bftws-node"

command -v perf >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq linux-perf >/dev/null; }
if [[ ! -x $INFERNO/inferno-flamegraph ]]; then
	echo "profile: installing inferno $INFERNO_VERSION" >&2
	cargo install --quiet --locked inferno --version "$INFERNO_VERSION" --root "$CACHE_ROOT/inferno/$INFERNO_VERSION" >&2
fi
[[ -x $BIN ]] || { echo "profile: build the release binary first (make build)" >&2; exit 1; }
COMETBFT=$(./scripts/install-cometbft.sh)

work=$(mktemp -d)
[[ -n ${KEEP:-} ]] && echo "profile: keeping $work" >&2
trap 'kill $bench 2>/dev/null || true; wait 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$work"' EXIT
mkdir -p "$OUT"
"$BIN" bench concurrent --config 4-1 --workers "$WORKERS" --duration-secs $((WINDOW + 15)) \
	--out "$work/out" --work-dir "$work/net" --base-port 24600 --cometbft "$COMETBFT" >"$work/bench.log" 2>&1 &
bench=$!
# The load starts once all 5 CometBFT processes run and the devnet answers; give it 5 s more.
for _ in $(seq 120); do
	[[ $(pgrep -fc "cometbft start --home $work/net") -ge 5 ]] && break
	sleep 0.5
done
sleep 10
# Each process's kind, from its command line, before the window closes.
: >"$work/kinds"
for pid in $(pgrep -f "$work/net") $bench; do
	cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
	case $cmd in
	*"bench concurrent"*) kind=load-generator ;;
	*cometbft\ start*/l1/*) kind=l1-cometbft ;;
	*cometbft\ start*/l2/*) kind=l2-cometbft ;;
	*" run "*/l1/*) kind=l1-app ;;
	*" run "*/l2/*) kind=l2-app ;;
	*) continue ;;
	esac
	echo "$pid $kind" >>"$work/kinds"
done
perf record -F 499 -a -g -o "$work/perf.data" -- sleep "$WINDOW" 2>"$work/perf.log"
wait $bench || true
perf script -F comm,pid,tid,cpu,time,period,event,ip,sym,dso -i "$work/perf.data" 2>/dev/null |
	"$INFERNO/inferno-collapse-perf" --pid >"$work/folded"
# First frame is `comm-pid`: map it to a kind and split.
awk -v kinds="$work/kinds" -v out="$work" '
	BEGIN { while ((getline line < kinds) > 0) { split(line, f, " "); kind[f[1]] = f[2] } }
	{
		n = $NF; first = $0; sub(/;.*/, "", first); pid = first; sub(/.*-/, "", pid)
		k = (pid in kind) ? kind[pid] : "other"
		samples[k] += n; total += n
		print > (out "/" k ".folded")
	}
	END {
		print "kind,samples,percent_of_machine" > (out "/cpu.csv")
		for (k in samples) printf "%s,%.3f,%.1f\n", k, samples[k] / 1e9, 100 * samples[k] / total >> (out "/cpu.csv")
	}' "$work/folded"
# cpu-clock samples are weighted by their period: CPU-seconds over the window.
sort -t, -k2 -nr "$work/cpu.csv" | { echo "kind,cpu_seconds,percent_of_busy_cpu"; grep -v '^kind'; } >"$OUT/cpu-by-kind.csv"
for folded in "$work"/*.folded; do
	kind=$(basename "$folded" .folded)
	"$INFERNO/inferno-flamegraph" --minwidth 0.5 --title "bftws 4-1, $WORKERS workers: $kind" <"$folded" >"$OUT/$kind.svg"
done
grep -E "^\[concurrent" "$work/bench.log" | tail -1 >"$OUT/load.txt" || true
cat "$OUT/cpu-by-kind.csv" "$OUT/load.txt"
