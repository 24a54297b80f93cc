#!/usr/bin/env bash
# Gateway benchmark: tools/call through `warden up` vs. directly against the same trivial
# Streamable HTTP upstream, in the same run. Prints markdown tables: added p50/p99 at a fixed
# rate (default 1,000 calls/s) and maximum calls/s with policy and audit on.
#
#   bench/gateway/run.sh [--rate 1000] [--seconds 5] [--concurrency 32] [--durability full|normal]
#
# Builds release binaries once (cargo build --release), everything listens on 127.0.0.1,
# and every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=1000 SECONDS_=5 CONC=32 DURABILITIES="normal full"
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --seconds) SECONDS_=$2; shift 2 ;;
    --concurrency) CONC=$2; shift 2 ;;
    --durability) DURABILITIES=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
TARGET=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-release}   # PROFILE=debug only to try the script itself
if [ -n "${SKIP_BUILD:-}" ]; then
  :  # use the binaries already built
elif [ "$PROFILE" = release ]; then
  cargo build --release --locked -q -p warden-cli
  cargo build --release --locked -q -p warden-server --example mcp_bench
else
  cargo build -q -p warden-cli
  cargo build -q -p warden-server --example mcp_bench
fi
WARDEN=$TARGET/$PROFILE/warden
BENCH=$TARGET/$PROFILE/examples/mcp_bench
. bench/gateway/common.sh
start_upstream_and_relay
echo "# Warden gateway benchmark ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
echo "upstream: trivial Streamable HTTP MCP server (JSON responses) on 127.0.0.1:$UP_PORT"
for DUR in $DURABILITIES; do
  start_warden "warden-$DUR" "$WARDEN" "$DUR"; WPID=${PIDS[-1]}
  DB="$WORK/warden-$DUR.db" URL=$(cat "$WORK/warden-$DUR.url") TOKEN=$(cat "$WORK/warden-$DUR.tok")
  "$BENCH" compare --direct "http://127.0.0.1:$UP_PORT/mcp" --gateway "$URL" --token "$TOKEN" \
    --relay "http://127.0.0.1:$RELAY_PORT/mcp" \
    --rate "$RATE" --seconds "$SECONDS_" --concurrency "$CONC" --label "(audit durability: $DUR)"
  kill -TERM "$WPID"; wait "$WPID" 2>/dev/null || true
  echo
  echo "audit: $("$WARDEN" audit verify "$WORK/inv" --db "$DB")"
done
