#!/usr/bin/env bash
# Prerequisites of the detector's evaluation (eval/detect) and of the CLI tests that inspect
# real servers' tool lists (crates/warden-cli/tests/inspect_cli.rs). Idempotent.
#
#   target/deps/detect/node_modules  real MCP servers from npm whose tools/list output is the
#                                    benign half of the tool-poisoning evaluation set; their
#                                    packages' README files are real benign prose for the
#                                    injection evaluation's clean set
#   target/deps/detect/venv          Python with real MCP servers from PyPI (fetch, git, time)
#                                    and numpy (training the classifier: eval/detect/train.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=target/deps/detect
mkdir -p "$DEPS"

NPM_PKGS=(
  "@modelcontextprotocol/server-everything@2026.8.31"
  "@modelcontextprotocol/server-filesystem@2026.8.31"
  "@modelcontextprotocol/server-memory@2026.8.31"
  "@modelcontextprotocol/server-sequential-thinking@2026.8.31"
)
need_npm=0
for p in server-everything server-filesystem server-memory server-sequential-thinking; do
  [ -f "$DEPS/node_modules/@modelcontextprotocol/$p/package.json" ] || need_npm=1
done
if [ "$need_npm" = 1 ]; then
  [ -f "$DEPS/package.json" ] || echo '{"name":"warden-detect-eval-deps","private":true}' > "$DEPS/package.json"
  (cd "$DEPS" && npm install --no-audit --no-fund --loglevel=error "${NPM_PKGS[@]}")
else
  echo "detect: npm packages present"
fi

VENV="$DEPS/venv"
if ! "$VENV/bin/python" -c 'import numpy, mcp_server_fetch, mcp_server_git, mcp_server_time' >/dev/null 2>&1; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check \
    "mcp-server-fetch==2026.10.24" "mcp-server-git==2026.10.19" "mcp-server-time==2026.10.19" \
    "numpy==2.4.6"
else
  echo "detect: python packages present"
fi
