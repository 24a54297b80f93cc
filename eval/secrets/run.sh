#!/usr/bin/env bash
# Generates the labelled secret set into target/eval-secrets and prints precision/recall per
# rule. WARDEN=path/to/warden to use a given binary (default: the workspace's debug build).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
warden="${WARDEN:-$target/debug/warden}"
if [[ ! -x "$warden" ]]; then
  echo "no warden binary at $warden: run \`cargo build -p warden-cli\` or set WARDEN=" >&2
  exit 2
fi
out="$root/target/eval-secrets"
python3 "$root/eval/secrets/generate.py" "$out" "$@"
python3 "$root/eval/secrets/eval.py" "$out" "$warden"
