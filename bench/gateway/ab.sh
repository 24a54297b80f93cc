#!/usr/bin/env bash
# A/B of two Warden builds at the fixed rate: both gateways, the bare relay and the direct
# path are driven in the same interleaved run (0.25 s blocks), repeated RUNS times, and the
# added p50/p99 of each printed with the mean difference B - A. The host's state drifts
# between runs (0.02-0.04 ms on this 2-core VM), which is why only differences measured
# inside one run are compared.
#
#   bench/gateway/ab.sh WARDEN_A WARDEN_B [--runs 6] [--seconds 8] [--rate 1000]
#
# Environment: ENV_A / ENV_B (e.g. "TOKIO_WORKER_THREADS=2") are set for that gateway only.
# Uses the mcp_bench example of CARGO_TARGET_DIR (default target), release profile, built if
# missing. A/A (the same binary twice) calibrates: its mean difference should be ~0.
set -euo pipefail
cd "$(dirname "$0")/../.."
A=${1:?WARDEN_A binary}; B=${2:?WARDEN_B binary}; shift 2
RUNS=6 SECS=8 RATE=1000
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET=${CARGO_TARGET_DIR:-target}
BENCH=$TARGET/release/examples/mcp_bench
[ -x "$BENCH" ] || cargo build --release --locked -q -p warden-server --example mcp_bench
. bench/gateway/common.sh
start_upstream_and_relay

echo "# Warden A/B ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ)): $RUNS runs of $SECS s per path at $RATE calls/s"
echo "A: $A ${ENV_A:-}"
echo "B: $B ${ENV_B:-}"
echo
echo "| run | added p50 A | added p50 B | B - A | added p99 A | added p99 B | bare relay p50 |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for run in $(seq "$RUNS"); do
  # Fresh gateways per run (an empty store and journal each time).
  rm -rf "$WORK"/a.* "$WORK"/b.*
  start_warden a "$A" normal "${ENV_A:-}"
  start_warden b "$B" normal "${ENV_B:-}"
  "$BENCH" compare --direct "http://127.0.0.1:$UP_PORT/mcp" --relay "http://127.0.0.1:$RELAY_PORT/mcp" \
    --gateway "$(cat "$WORK/a.url")" --token "$(cat "$WORK/a.tok")" \
    --gateway-b "$(cat "$WORK/b.url")" --token-b "$(cat "$WORK/b.tok")" \
    --rate "$RATE" --seconds "$SECS" --max-seconds 0 > "$WORK/run.md"
  # Rows: | added by warden | | p50 | p90 | p99 | ...
  row() { tr -d '*' < "$WORK/run.md" | grep -F "$1" | head -1 | awk -F'|' -v c="$2" '{gsub(/ /,"",$c); print $c}'; }
  a50=$(row "added by warden |" 4); a99=$(row "added by warden |" 6)
  b50=$(row "added by warden B" 4); b99=$(row "added by warden B" 6)
  r50=$(row "added by the bare relay" 4)
  echo "$run $a50 $b50 $a99 $b99 $r50" >> "$WORK/all.txt"
  printf "| %d | %s | %s | %+.3f | %s | %s | %s |\n" "$run" "$a50" "$b50" "$(echo "$b50 - $a50" | bc -l)" "$a99" "$b99" "$r50"
  # Stop both gateways before the next run.
  for p in "${PIDS[@]:2}"; do kill "$p" 2>/dev/null || true; done
  wait "${PIDS[@]:2}" 2>/dev/null || true
  PIDS=("${PIDS[@]:0:2}")
done
awk '{a+=$2; b+=$3; r+=$6; n++} END {printf "| mean | %.3f | %.3f | %+.3f | | | %.3f |\n", a/n, b/n, (b-a)/n, r/n}' "$WORK/all.txt"
