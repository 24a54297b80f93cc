#!/usr/bin/env bash
# Test prerequisites of the approval console's browser test (tests/e2e/console, driven by
# crates/warden-cli/tests/approvals_console_browser.rs): Debian's Chromium and playwright-core
# from npm (which drives a browser it does not download). Idempotent: checks before installing.
#
#   /usr/bin/chromium                    Debian package `chromium`
#   target/deps/approvals/node_modules   playwright-core
set -euo pipefail
cd "$(dirname "$0")/../.."
DEPS=target/deps/approvals
mkdir -p "$DEPS"

if [ ! -x /usr/bin/chromium ]; then
  if [ ! -f /tmp/.warden-apt-updated ]; then apt-get update -qq && touch /tmp/.warden-apt-updated; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium present"
fi
/usr/bin/chromium --version

if [ ! -f "$DEPS/node_modules/playwright-core/package.json" ]; then
  [ -f "$DEPS/package.json" ] || echo '{"name":"warden-approvals-test-deps","private":true}' > "$DEPS/package.json"
  (cd "$DEPS" && npm install --no-audit --no-fund --loglevel=error "playwright-core@1.65.1")
else
  echo "playwright-core present"
fi
