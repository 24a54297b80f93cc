#!/usr/bin/env bash
# warden-graph: networkx for bench/graph/compare.sh (the path-computation comparison).
# Idempotent: creates target/deps/graph-venv once and installs networkx only if missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$root/target/deps/graph-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import networkx" 2>/dev/null; then
  "$venv/bin/pip" install --quiet "networkx==3.4.2"
fi
"$venv/bin/python" -c "import networkx; print('networkx', networkx.__version__)"
