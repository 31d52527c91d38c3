#!/usr/bin/env bash
# The package as users get it: packs the npm tarball from this checkout (after `npm install`)
# and installs it into fresh folders the ways users do, then trains from the installed package:
#
#   A. a normal install                                     -> native (the prebuilt addon)
#   B. --ignore-scripts, no C++ compiler                    -> native (the prebuilt addon)
#   C. no compiler and no prebuild for the platform         -> wasm, with a line saying why and what to do
#      (simulated with npm_config_arch=arm64, the platform override node-gyp-build honours)
#
# plus what the tarball holds, the prebuild's minimum glibc, and imports from the installed package
# (ESM, CommonJS require, TypeScript --strict --module nodenext without @types/node).
# Ends with one line "package checks: N passed, N failed"; exits non-zero if any failed.
#
#   bash scripts/check-package.sh [--keep]     (--keep leaves the work folder for inspection)
set -uo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/densetrain-package-XXXXXX)"
[[ "${1:-}" == "--keep" ]] && echo "work folder: $work" || trap 'rm -rf "$work"' EXIT

passed=0
failed=0
pass() { passed=$((passed + 1)); printf 'ok    %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL  %s\n' "$1"; [[ -n "${2:-}" && -f "$2" ]] && tail -n 30 "$2" | sed 's/^/      | /'; }
check() { # check NAME LOGFILE COMMAND...: passes when COMMAND succeeds
  local name="$1" log="$2"; shift 2
  if "$@" >>"$log" 2>&1; then pass "$name"; else fail "$name" "$log"; fi
}
seconds() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- the tarball --------------------------------------------------------------------------
cd "$repo"
pack_log="$work/pack.log"
if ! npm pack --pack-destination "$work" >"$pack_log" 2>&1; then
  fail "npm pack" "$pack_log"
  echo "package checks: $passed passed, $failed failed"
  exit 1
fi
tgz="$(ls "$work"/densetrain-*.tgz)"
pass "npm pack: $(basename "$tgz"), $(du -h "$tgz" | cut -f1), $(tar tzf "$tgz" | grep -vc '/$') files"
tar tzf "$tgz" | sed 's|^package/||' | sort >"$work/files.txt"

contents_ok() {
  local bad=0
  for required in LICENSE README.md package.json bin/densetrain.js dist/src/index.js dist/src/index.d.ts dist/wasm/densetrain.wasm \
    binding.gyp native/src/addon.cc scripts/install-native.mjs data/mnist-sample/images-idx3-ubyte.gz data/mnist-sample/labels-idx1-ubyte.gz; do
    grep -qx "$required" "$work/files.txt" || { echo "missing: $required"; bad=1; }
  done
  grep -q "^prebuilds/$(node -p 'process.platform + "-" + process.arch')/node\.napi\..*node$" "$work/files.txt" || { echo "missing: the prebuilt addon for this platform"; bad=1; }
  # Nothing for developers only: build caches, tests, build scripts, sanitizer or benchmark sources of the addon.
  if grep -E '\.tsbuildinfo$|^test/|^assembly/|^native/(test|bench|build)/|^scripts/(build-wasm|asan-test|check-|prebuild|make-|screenshot)|^\.ci/' "$work/files.txt"; then
    echo "developer-only files in the tarball (above)"; bad=1
  fi
  # Every source map points at sources that ship.
  mkdir -p "$work/unpacked" && tar xzf "$tgz" -C "$work/unpacked"
  node -e '
    const fs = require("fs"), path = require("path");
    const root = process.argv[1]; let bad = 0, maps = 0;
    const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".map")) { maps++; for (const s of JSON.parse(fs.readFileSync(p, "utf8")).sources) {
        const target = path.resolve(path.dirname(p), s);
        if (!fs.existsSync(target)) { console.log(`${path.relative(root, p)} -> ${s}: not shipped`); bad++; } } } } };
    walk(root); console.log(`${maps} source maps checked`); process.exit(bad ? 1 : 0);
  ' "$work/unpacked/package"
  return $bad
}
check "tarball holds what users need and nothing for developers only" "$work/contents.log" contents_ok

glibc_ok() {
  local prebuild max
  prebuild="$(ls "$work"/unpacked/package/prebuilds/linux-x64/*.node 2>/dev/null | head -1)"
  [[ -n "$prebuild" ]] || { echo "no linux-x64 prebuild"; return 1; }
  command -v objdump >/dev/null || { echo "objdump not found"; return 1; }
  max="$(objdump -T "$prebuild" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -Vu | tail -1)"
  echo "prebuild needs glibc $max; C++ runtime: $(objdump -p "$prebuild" | grep NEEDED | awk '{print $2}' | tr '\n' ' ')"
  # README promises glibc 2.34; libstdc++ is linked in, so no GLIBCXX version is needed.
  [[ "$(printf '%s\n2.34\n' "$max" | sort -V | tail -1)" == "2.34" ]] && ! objdump -p "$prebuild" | grep -q 'NEEDED.*libstdc++'
}
if [[ "$(node -p 'process.platform + "-" + process.arch')" == "linux-x64" ]]; then
  check "linux-x64 prebuild needs glibc <= 2.34 and no libstdc++" "$work/glibc.log" glibc_ok
  sed 's/^/      /' "$work/glibc.log"
fi

# ---- installs -----------------------------------------------------------------------------
# install NAME [ENV=VALUE ...] -- [npm install options]: a fresh folder with the tarball installed.
install_into() {
  local name="$1"; shift
  local dir="$work/$name" envs=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$dir" && (cd "$dir" && npm init -y >/dev/null)
  local start; start="$(seconds)"
  if (cd "$dir" && env "${envs[@]}" npm install --no-audit --no-fund "$@" "$tgz") >"$dir/install.log" 2>&1; then
    pass "install $name ($*): $(elapsed "$start") s, node_modules $(du -sh "$dir/node_modules" | cut -f1)"
  else
    fail "install $name ($*)" "$dir/install.log"
    return 1
  fi
}

# trains NAME EXPECTED_BACKEND_REGEX [ENV=VALUE ...]: one short epoch from the installed package.
train_in() {
  local name="$1" expect="$2"; shift 2
  local dir="$work/$name"
  # The installed bin, run by node directly: npx would read npm_config_* overrides as npm settings.
  if (cd "$dir" && env "$@" node node_modules/densetrain/bin/densetrain.js info) >"$dir/info.log" 2>&1 &&
    (cd "$dir" && env "$@" node node_modules/densetrain/bin/densetrain.js train --epochs 1 --out "$dir/run") >"$dir/train.log" 2>&1 &&
    grep -m1 '^backend: ' "$dir/train.log" | grep -qE "$expect" && test -s "$dir/run/metrics.json" && test -s "$dir/run/report.html"; then
    pass "train $name: $(grep -m1 '^auto picks: ' "$dir/info.log" | cut -c1-110)"
    grep -m1 '^backend: ' "$dir/train.log" | sed 's/^/      /'
  else
    fail "train $name (expected backend /$expect/)" "$dir/train.log"
    cat "$dir/info.log" 2>/dev/null | sed 's/^/      | /'
  fi
}

no_compiler=(CC=/bin/false CXX=/bin/false)

if install_into normal -- ; then
  train_in normal '^backend: native \((avx512|avx2|generic)'
  dir="$work/normal"
  check "normal: ESM import reports native" "$dir/imports.log" \
    bash -c "cd '$dir' && node --input-type=module -e \"import { backendInfo } from 'densetrain'; const i = backendInfo(); console.log(JSON.stringify(i)); if (i.backend !== 'native') process.exit(1);\""
  check "normal: CommonJS require reports native" "$dir/imports.log" \
    bash -c "cd '$dir' && node -e \"const { backendInfo } = require('densetrain'); const i = backendInfo(); console.log(JSON.stringify(i)); if (i.backend !== 'native') process.exit(1);\""
  ts_ok() {
    local ts="$dir/ts"
    mkdir -p "$ts" && cd "$ts" || return 1
    [[ ! -e "$dir/node_modules/@types/node" ]] || { echo "@types/node is installed: the check would prove nothing"; return 1; }
    cat >index.mts <<'EOF'
import { backendInfo, loadModel, train, type BackendInfo } from 'densetrain';
const info: BackendInfo = backendInfo();
const name: string = info.backend;
export async function run(): Promise<number> {
  const { record, model } = await train({ data: 'mnist-sample', layers: [784, 16, 10], epochs: 1 });
  await model.save('m.safetensors');
  model.dispose();
  const again = await loadModel('m.safetensors');
  again.dispose();
  return record.epochs.length + name.length;
}
EOF
    cat >require.cts <<'EOF'
import densetrain = require('densetrain');
const info = densetrain.backendInfo();
export const backend: string = info.backend;
EOF
    cat >tsconfig.json <<'EOF'
{ "compilerOptions": { "strict": true, "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022",
    "noEmit": true, "skipLibCheck": false, "types": [] }, "files": ["index.mts", "require.cts"] }
EOF
    "$repo/node_modules/.bin/tsc" -p . && echo "tsc --strict --module nodenext: no errors (ESM import and CommonJS require, without @types/node)"
  }
  check "normal: TypeScript --strict --module nodenext, no @types/node" "$dir/ts.log" ts_ok
  # The model leaves the run folder from the installed package: summary, ONNX, a prediction on
  # the shipped digits (IDX), and the dashboard's page (served from the package's own files).
  bin="node $dir/node_modules/densetrain/bin/densetrain.js"
  digits="$dir/node_modules/densetrain/data/mnist-sample/images-idx3-ubyte.gz"
  check "normal: info --model, export --onnx, predict from the installed package" "$dir/model.log" \
    bash -c "cd '$dir' && $bin info --model run && $bin export --model run --onnx run/model.onnx && test -s run/model.onnx && $bin predict --model run '$digits' --json > run/predict.json && test -s run/predict.json"
  view_ok() {
    local port; port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
    (cd "$dir" && exec $bin view "$dir" --port "$port") >"$dir/view.out" 2>&1 &
    local pid=$! ok=1
    for _ in $(seq 1 100); do
      if node -e "fetch('http://127.0.0.1:$port/').then(async r => { const t = await r.text(); process.exit(r.ok && /<html/i.test(t) ? 0 : 1) }).catch(() => process.exit(1))"; then ok=0; break; fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    cat "$dir/view.out"
    return $ok
  }
  check "normal: densetrain view serves its page from the installed package" "$dir/view.log" view_ok
fi

if install_into ignore-scripts "${no_compiler[@]}" -- --ignore-scripts; then
  [[ ! -e "$work/ignore-scripts/node_modules/densetrain/build" ]] && pass "ignore-scripts: nothing was compiled" || fail "ignore-scripts: a build/ folder exists"
  train_in ignore-scripts '^backend: native \((avx512|avx2|generic)' "${no_compiler[@]}"
fi

if install_into no-prebuild "${no_compiler[@]}" npm_config_arch=arm64 -- ; then
  train_in no-prebuild '^backend: wasm \(simd128(-relaxed)?, [0-9]+ threads?\); skipped native: no prebuilt native addon for linux-arm64, and compiling one at install failed \(no working C\+\+ compiler.*\); for native speed install a C\+\+ compiler .* and run "npm rebuild densetrain"$' \
    "${no_compiler[@]}" npm_config_arch=arm64
fi

echo "package checks: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
