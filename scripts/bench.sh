#!/usr/bin/env bash
# The whole benchmark (make bench): sequential runs of every configuration on two layers, the
# direct-L1 baseline, the concurrency sweep, the escrow service as a second workload, honest
# commits under a flood of refused bundles, proofs of finality (size, verification time), the
# summary and the plots, into bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${CARGO_TARGET_DIR:-target}/release/bftws-node"
OUT="${BENCH_OUT:-bench/results}"
ITERATIONS="${BENCH_ITERATIONS:-100}"
rm -rf "$OUT/sequential" "$OUT/concurrency.csv" "$OUT/escrow-concurrency.csv" "$OUT/flood.csv" "$OUT/proofs.csv"
"$BIN" bench sequential --out "$OUT" --iterations "$ITERATIONS"
"$BIN" bench sequential --out "$OUT" --iterations "$ITERATIONS" --direct-l1 --configs 4-1,7-1,10-1,13-1,16-1
"$BIN" bench concurrent --out "$OUT" --config 4-1 --workers 1,4,16,64 --duration-secs "${BENCH_SECONDS:-20}"
"$BIN" bench sequential --out "$OUT" --iterations "$ITERATIONS" --workload escrow --configs 4-1,16-1
"$BIN" bench concurrent --out "$OUT" --workload escrow --config 4-1 --workers 1,16,64 --duration-secs "${BENCH_SECONDS:-20}"
"$BIN" bench flood --out "$OUT" --config 4-1 --sessions 50
"$BIN" bench proofs --out "$OUT" --configs 4-1,7-1,16-1
"$BIN" bench report --out "$OUT" --paper bench/reference/paper-results.csv
PYTHON="$(./scripts/install-plot-deps.sh)"
"$PYTHON" bench/plot.py "$OUT" bench/reference/paper-results.csv
./scripts/environment.sh > "$OUT/environment.md"
echo "results in $OUT (summary.md, *.png, environment.md)"
