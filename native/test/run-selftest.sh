#!/usr/bin/env bash
# Builds and runs native/test/gemm_selftest.cc against every kernel table (x86-64), outside Node.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
CXX="${CXX:-g++}"
flags=(-std=c++17 -O2 -ffp-contract=off -fno-math-errno -fno-trapping-math -DDENSETRAIN_X86 -I"$root/native/src")
"$CXX" "${flags[@]}" -mavx2 -mfma -c "$root/native/src/isa_avx2.cc" -o "$out/avx2.o"
"$CXX" "${flags[@]}" -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma -c "$root/native/src/isa_avx512.cc" -o "$out/avx512.o"
"$CXX" "${flags[@]}" -mavx2 -mfma -c "$root/native/test/avx512_shape.cc" -o "$out/shape.o"
"$CXX" "${flags[@]}" "$root/native/test/gemm_selftest.cc" "$root/native/src/isa_generic.cc" "$out/avx2.o" "$out/avx512.o" \
  "$out/shape.o" -o "$out/selftest"
"$out/selftest"
