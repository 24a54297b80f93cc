# Shared by run.sh and ab.sh (sourced once BENCH, the mcp_bench binary, is set): a scratch
# directory WORK and the PIDS array of processes, both cleaned up on exit; the trivial
# upstream, the bare relay in front of it, the benchmark's inventory, and starting a gateway
# on it.
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

# Starts the upstream and the relay; sets UP_PORT and RELAY_PORT and writes
# "$WORK/inv/inventory.yaml".
start_upstream_and_relay() {
  "$BENCH" upstream --port-file "$WORK/up.port" > /dev/null & PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/up.port" ] && break; sleep 0.05; done
  UP_PORT=$(cat "$WORK/up.port")
  # A bare relay in front of the same upstream: one extra HTTP hop with no policy and no audit.
  "$BENCH" relay --upstream "http://127.0.0.1:$UP_PORT/mcp" --port-file "$WORK/relay.port" > /dev/null & PIDS+=($!)
  for _ in $(seq 100); do [ -s "$WORK/relay.port" ] && break; sleep 0.05; done
  RELAY_PORT=$(cat "$WORK/relay.port")
  mkdir -p "$WORK/inv"
  cat > "$WORK/inv/inventory.yaml" <<YAML
humans: [{ id: bench@example.com }]
agents:
  - { id: bench-agent, owner: bench@example.com, uses: [bench.noop] }
connectors:
  - id: bench
    mcp: { url: "http://127.0.0.1:$UP_PORT/mcp" }
    pin_on_first_sight: true
    tools:
      noop: { effects: [read], args: { n: { type: integer } } }
YAML
}

# Starts `warden up` (BINARY) on that inventory with a store of its own, "$WORK/NAME.db", at
# DURABILITY, with ENV (e.g. "TOKIO_WORKER_THREADS=2") set for it only; waits for its MCP
# endpoint and writes the endpoint's URL to "$WORK/NAME.url" and an agent token to
# "$WORK/NAME.tok". Its pid is the last of PIDS.
start_warden() { # NAME BINARY DURABILITY [ENV]
  env ${4:-} "$2" up "$WORK/inv" --db "$WORK/$1.db" --listen 127.0.0.1:0 --durability "$3" \
    > "$WORK/$1.out" 2> "$WORK/$1.err" & PIDS+=($!)
  for _ in $(seq 200); do grep -q "MCP endpoint" "$WORK/$1.out" 2>/dev/null && break; sleep 0.05; done
  sed -n 's/^MCP endpoint: //p' "$WORK/$1.out" > "$WORK/$1.url"
  "$2" token issue --agent bench-agent "$WORK/inv" --db "$WORK/$1.db" 2>/dev/null > "$WORK/$1.tok"
}
