#!/usr/bin/env bash
# The whole test suite, from a fresh clone. Installs what the tests need (npm and PyPI
# packages for real MCP peers, Chromium, PostgreSQL) through scripts/deps.d/*.sh, then
# builds once and runs every test. Used verbatim by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

for dep in scripts/deps.d/*.sh; do
  [ -e "$dep" ] || continue
  echo "== deps: $dep"
  bash "$dep"
done

export CARGO_PROFILE_DEV_DEBUG=0
# Build every test target once up front; tests never build anything themselves.
cargo build --workspace --all-targets --locked
cargo build -p warden-cli --locked
cargo test --workspace --locked --no-fail-fast
