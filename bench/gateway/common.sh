# Shared by run.sh and ab.sh (sourced): the trivial upstream, the bare relay in front of it
# and the benchmark's inventory. Needs BENCH (the mcp_bench binary), WORK (a scratch
# directory) and the PIDS array (processes to stop on exit); sets UP_PORT and RELAY_PORT and
# writes "$WORK/inv/inventory.yaml".
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
