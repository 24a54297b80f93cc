#!/usr/bin/env bash
# Prerequisites of the scanner's benchmark (bench/scan/run.sh); the scanner's tests need none.
# Idempotent: checks before installing.
#
#   ripgrep (Debian)                 the floor for reading and prefiltering bytes
#   target/deps/scan/venv            detect-secrets 1.5.0 (PyPI), the peer scanner
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=target/deps/scan
mkdir -p "$DEPS"

if ! command -v rg >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ripgrep >/dev/null
  else
    echo "ripgrep missing and not root: install the Debian package ripgrep" >&2
    exit 1
  fi
else
  echo "ripgrep present"
fi

VENV="$DEPS/venv"
if ! "$VENV/bin/detect-secrets" --version >/dev/null 2>&1; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "detect-secrets==1.5.0"
else
  echo "detect-secrets present"
fi
"$VENV/bin/detect-secrets" --version
