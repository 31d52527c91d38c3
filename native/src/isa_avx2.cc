// AVX2 + FMA kernels. Compiled with -mavx2 -mfma (and nothing newer); used only when the
// CPU and OS report AVX2 and FMA (see cpu.cc).
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel_api.h"

// (MSVC's /arch:AVX2 enables FMA code generation without defining __FMA__.)
#if !defined(__AVX2__) || (!defined(__FMA__) && !defined(_MSC_VER))
#error "isa_avx2.cc must be compiled with -mavx2 -mfma"
#endif

namespace densetrain {
namespace {

#include "x86_transpose.h"

// 16 ymm registers: a 6x16 tile is 12 accumulators + 2 B vectors + 1 broadcast.
struct Isa {
  using V = __m256;
  static constexpr int kW = 8;
  static constexpr int kMR = 6;
  static constexpr int kNV = 2;
  static constexpr int64_t kMC = 144;   // 144x256 A block: 144 KiB, in L2
  static constexpr int64_t kKC = 256;   // 256x16 B micro-panel: 16 KiB, in L1
  static constexpr int64_t kNC = 2048;  // 256x2048 B block: 2 MiB, in L3
  static inline V Zero() { return _mm256_setzero_ps(); }
  static inline V Load(const float* p) { return _mm256_load_ps(p); }
  static inline V LoadU(const float* p) { return _mm256_loadu_ps(p); }
  static inline void Store(float* p, V v) { _mm256_store_ps(p, v); }
  static inline void StoreU(float* p, V v) { _mm256_storeu_ps(p, v); }
  static inline V Bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static inline V Set1(float x) { return _mm256_set1_ps(x); }
  static inline V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static inline V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static inline void Prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static constexpr bool kTranspose8 = true;
  static inline void Transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
    Transpose8x8Avx(src, lds, dst, ldd);
  }
  static inline void Transpose8x8Rows(const float* const* rows, int nrows, int64_t p, float* dst, int64_t ldd) {
    Transpose8x8RowsAvx(rows, nrows, p, dst, ldd);
  }
};

}  // namespace
}  // namespace densetrain

#include "kernels_impl.h"

DENSETRAIN_DEFINE_TABLE(kAvx2Table, "avx2", Isa)

namespace densetrain {
const KernelTable* Avx2Table() { return &kAvx2Table; }
}  // namespace densetrain
