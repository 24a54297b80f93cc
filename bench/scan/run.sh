#!/usr/bin/env bash
# Scanner benchmark: warden vs detect-secrets vs rg (same keyword set), same run.
#   1. a generated tree of mixed agent-repository source (default 1024 MB; SIZE_MB=…),
#      in target/bench-data/scan-tree (its first eighth, scan-tree/small, is the small tree, for the
#      flat-memory comparison and for detect-secrets);
#   2. a real public agent framework's source: the sdist of langchain-community from PyPI
#      (pip download --no-binary :all: --no-deps), unpacked under target/bench-data.
# Needs a release build: WARDEN=path (default target/release/warden; SKIP_BUILD=1 to not build)
# and scripts/deps.d/80-scan.sh (ripgrep, detect-secrets).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
warden="${WARDEN:-$target/release/warden}"
if [[ -z "${SKIP_BUILD:-}" && -z "${WARDEN:-}" ]]; then
  cargo build --release -p warden-cli
fi
[[ -x "$warden" ]] || { echo "no warden binary at $warden" >&2; exit 2; }
bash scripts/deps.d/80-scan.sh >/dev/null
ds="$root/target/deps/scan/venv/bin/detect-secrets"
data="$root/target/bench-data"
mkdir -p "$data"

size="${SIZE_MB:-1024}"
tree="$data/scan-tree-$size"
if [[ ! -f "$tree/.done" ]]; then
  rm -rf "$tree"
  python3 bench/scan/gen_tree.py "$tree" "$size" --parts 32
  touch "$tree/.done"
fi
small="$tree/small"

repo="$data/langchain-community"
if [[ ! -d "$repo" ]]; then
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-binary :all: --no-deps langchain-community -d "$tmp"
  mkdir -p "$repo"
  tar -xzf "$tmp"/langchain_community-*.tar.gz -C "$repo" --strip-components=1
  rm -rf "$tmp"
fi

# The keyword set warden's prefilter uses, for rg.
python3 - "$root/crates/warden-scan/src/secrets.rs" > "$data/scan-keywords.txt" <<'PY'
import re, sys
src = open(sys.argv[1]).read()
kws = set()
for block in re.findall(r"keywords: &\[([^\]]*)\]", src):
    kws.update(re.findall(r'"([^"]+)"', block))
print("\n".join(sorted(kws)))
PY

echo "warden: $warden ($("$warden" --version))"
echo "detect-secrets: $("$ds" --version); rg: $(rg --version | head -1); cores: $(nproc)"
python3 bench/scan/bench.py --warden "$warden" --detect-secrets "$ds" --keywords "$data/scan-keywords.txt" \
  "$repo:langchain-community:ds" "$tree/small/part-00:tree-1/32:ds" "$small:tree-1/8" "$tree:tree-full"
