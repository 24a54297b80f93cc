#!/usr/bin/env bash
# Test prerequisites of the runtime gateway (crates/warden-gateway, warden-server, warden-cli
# gateway_* tests): real MCP peers from npm and PyPI. Idempotent: checks before installing.
#
#   target/deps/gateway/node_modules   @modelcontextprotocol/server-everything, server-filesystem,
#                                      inspector-cli (a second real client)
#   target/deps/gateway/venv           Python with the PyPI `mcp` SDK (client and server)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=target/deps/gateway
mkdir -p "$DEPS"

NPM_PKGS=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/server-filesystem@2026.8.31"
  "@modelcontextprotocol/inspector-cli@1.0.3"
)
need_npm=0
for p in server-everything server-filesystem inspector-cli; do
  [ -f "$DEPS/node_modules/@modelcontextprotocol/$p/package.json" ] || need_npm=1
done
if [ "$need_npm" = 1 ]; then
  [ -f "$DEPS/package.json" ] || echo '{"name":"warden-gateway-test-deps","private":true}' > "$DEPS/package.json"
  (cd "$DEPS" && npm install --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}")
else
  echo "npm packages present"
fi

VENV="$DEPS/venv"
if ! "$VENV/bin/python" -c 'import mcp, httpx' >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "mcp==2.3.0"
else
  echo "python mcp present"
fi
# The example organisation's in-house servers run as `python3 servers/acme_mcp.py`: tests put
# "$VENV/bin" first on PATH so that python3 is this venv's.
"$VENV/bin/python" -c 'import mcp; print("mcp", mcp.__version__ if hasattr(mcp, "__version__") else "ok")'

# PostgreSQL for the store's tests against the second backend (crates/warden-store tests use
# WARDEN_TEST_POSTGRES_URL, default postgres://warden:warden@127.0.0.1:5432/postgres).
if ! command -v pg_lsclusters >/dev/null 2>&1; then
  if [ ! -f /tmp/.warden-apt-updated ]; then apt-get update -qq && touch /tmp/.warden-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
read -r PGVER PGCLUSTER PGPORT PGSTATUS _ < <(pg_lsclusters -h | head -1)
if [ -z "${PGVER:-}" ]; then
  PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_createcluster "$PGVER" main >/dev/null
  read -r PGVER PGCLUSTER PGPORT PGSTATUS _ < <(pg_lsclusters -h | head -1)
fi
if [ "$PGSTATUS" != online ]; then
  pg_ctlcluster "$PGVER" "$PGCLUSTER" start
fi
su postgres -c "psql -p $PGPORT -tAc \"SELECT 1 FROM pg_roles WHERE rolname='warden'\"" | grep -q 1 \
  || su postgres -c "psql -p $PGPORT -qc \"CREATE ROLE warden LOGIN PASSWORD 'warden' CREATEDB\""
# Drop databases left by earlier test runs.
for db in $(su postgres -c "psql -p $PGPORT -tAc \"SELECT datname FROM pg_database WHERE datname LIKE 'warden_t_%'\""); do
  su postgres -c "psql -p $PGPORT -qc 'DROP DATABASE IF EXISTS \"$db\"'" || true
done
echo "postgres $PGVER/$PGCLUSTER online on port $PGPORT"
