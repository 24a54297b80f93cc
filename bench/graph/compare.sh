#!/usr/bin/env bash
# Path computation: warden-graph vs networkx on the same ~100k-edge subgraph, in one run.
# Needs scripts/deps.d/70-graph.sh (networkx in target/deps/graph-venv).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
teams="${1:-49}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
py="$root/target/deps/graph-venv/bin/python"
[ -x "$py" ] || { echo "networkx venv missing: run scripts/deps.d/70-graph.sh" >&2; exit 2; }
cd "$root"
cargo run -q --release -p warden-graph --example pathbench -- "$out" "$teams" >/dev/null
"$py" bench/graph/compare.py "$out"
