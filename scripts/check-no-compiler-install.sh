#!/usr/bin/env bash
# An install on a machine without a working C++ compiler must succeed, say in one line why the
# native addon is missing, and train on WebAssembly. Runs in a throw-away clone of this checkout.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/densetrain"
cd "$work/densetrain"

log="$work/install.log"
if ! CC=/bin/false CXX=/bin/false npm install --no-audit --no-fund >"$log" 2>&1; then
  cat "$log"; echo "FAIL: npm install exited non-zero without a compiler"; exit 1
fi
if ! grep -q "native addon not built" "$log"; then
  cat "$log"; echo "FAIL: install did not say why the native addon is missing"; exit 1
fi
if [ -e build/Release/densetrain.node ]; then
  echo "FAIL: a native addon exists although the compiler was unavailable"; exit 1
fi
grep "native addon not built" "$log"

out="$work/run"
node bin/densetrain.js train --epochs 1 --out "$out" >"$work/train.log" 2>&1 || { cat "$work/train.log"; echo "FAIL: training without the addon failed"; exit 1; }
if ! grep -q "wasm" "$work/train.log"; then
  cat "$work/train.log"; echo "FAIL: training did not run on the wasm backend"; exit 1
fi
test -s "$out/metrics.json" || { echo "FAIL: no metrics.json"; exit 1; }
grep -m1 -i "wasm" "$work/train.log"
echo "no-compiler install: OK (1 passed, 0 failed)"
