// AVX-512 kernels (F, DQ, BW, VL). Compiled with the AVX-512 flags; used only when the CPU
// and OS report all four (see cpu.cc).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel_api.h"

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512BW__) || !defined(__AVX512VL__)
#error "isa_avx512.cc must be compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl"
#endif

namespace densetrain {
namespace {

#include "x86_transpose.h"

#include "isa_avx512_desc.h"

}  // namespace
}  // namespace densetrain

#include "kernels_impl.h"

DENSETRAIN_DEFINE_TABLE(kAvx512Table, "avx512", Isa)

namespace densetrain {
const KernelTable* Avx512Table() { return &kAvx512Table; }
}  // namespace densetrain
