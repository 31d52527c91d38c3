#!/usr/bin/env bash
# Builds the native addon with AddressSanitizer + UndefinedBehaviorSanitizer (cmake-js, Debug,
# native/CMakeLists.txt with DENSETRAIN_SANITIZE=ON) and runs the kernel and native test files
# against it. Exits non-zero if the build fails, a test fails, or any sanitizer report appears.
#
#   bash scripts/asan-test.sh                 # test/kernels* and test/native* files
#   bash scripts/asan-test.sh test/foo.test.ts  # other test files
#
# Node itself is not instrumented, so the sanitizer runtimes are preloaded. Leak detection is
# off (V8 keeps memory until exit by design); every other report halts the process.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="native/build/asan"
addon="$root/$out/Debug/densetrain.node"
log="$root/$out/asan-test.log"

CXX_FOR_RUNTIME="${CXX:-g++}"
libasan="$("$CXX_FOR_RUNTIME" -print-file-name=libasan.so)"
libubsan="$("$CXX_FOR_RUNTIME" -print-file-name=libubsan.so)"
for lib in "$libasan" "$libubsan"; do
  if [[ "$lib" != /* || ! -e "$lib" ]]; then
    echo "asan-test: sanitizer runtime not found ($lib); install the compiler's libasan/libubsan" >&2
    exit 2
  fi
done

echo "asan-test: building $out/Debug/densetrain.node with -fsanitize=address,undefined"
node "$root/node_modules/cmake-js/bin/cmake-js" compile -d native --debug --out "$out" \
  --CDDENSETRAIN_SANITIZE=ON --log-level warn
test -f "$addon"

# Arguments starting with - are passed to vitest (e.g. a reporter); the rest are test files.
files=()
vitest_options=()
for arg in "$@"; do
  if [[ $arg == -* ]]; then vitest_options+=("$arg"); else files+=("$arg"); fi
done
if [[ ${#files[@]} -eq 0 ]]; then
  mapfile -t files < <(ls test/kernels*.test.ts test/native*.test.ts 2>/dev/null)
fi
echo "asan-test: running ${files[*]}"

mkdir -p "$(dirname "$log")"
set +e
env \
  LD_PRELOAD="$libasan:$libubsan" \
  ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1" \
  UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
  DENSETRAIN_NATIVE_PATH="$addon" \
  DENSETRAIN_BACKEND=native \
  DENSETRAIN_REQUIRE_BACKENDS=native \
  DENSETRAIN_SANITIZED=1 \
  node "$root/node_modules/vitest/vitest.mjs" run "${files[@]}" "${vitest_options[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log"; then
  echo "asan-test: FAILED: sanitizer report(s) in $log" >&2
  exit 1
fi
if [[ $status -ne 0 ]]; then
  echo "asan-test: FAILED: vitest exited with status $status" >&2
  exit "$status"
fi
echo "asan-test: passed, no sanitizer reports"
