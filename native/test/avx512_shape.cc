// The AVX-512 kernel's GEMM template configuration (12 x 32 tiles, 16-float vectors, MC 240,
// 8x8 transposing packs with a partial 4-row group) instantiated with 16-float vectors made of
// two AVX2 registers, so the blocking, packing and edge logic of the AVX-512 path can be
// checked on a CPU without AVX-512 (gemm_selftest.cc runs it). Only the zmm intrinsic wrappers
// of isa_avx512.cc are not exercised by this. Compile with -mavx2 -mfma -DDENSETRAIN_X86.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel_api.h"

namespace densetrain {
namespace {

#include "x86_transpose.h"

struct V16 {
  __m256 lo, hi;
};

struct Isa {
  using V = V16;
  static constexpr int kW = 16;
  static constexpr int kMR = 12;
  static constexpr int kNV = 2;
  static constexpr int64_t kMC = 240;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kNC = 2048;
  static inline V Zero() { return V{_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static inline V Load(const float* p) { return V{_mm256_load_ps(p), _mm256_load_ps(p + 8)}; }
  static inline V LoadU(const float* p) { return V{_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static inline void Store(float* p, V v) {
    _mm256_store_ps(p, v.lo);
    _mm256_store_ps(p + 8, v.hi);
  }
  static inline void StoreU(float* p, V v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
  }
  static inline V Bcast(const float* p) { return V{_mm256_broadcast_ss(p), _mm256_broadcast_ss(p)}; }
  static inline V Set1(float x) { return V{_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static inline V Fma(V a, V b, V c) { return V{_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
  static inline V Mul(V a, V b) { return V{_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
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

DENSETRAIN_DEFINE_TABLE(kShapeTable, "avx512-shape (2x AVX2)", Isa)

namespace densetrain {
const KernelTable* Avx512ShapeTable() { return &kShapeTable; }
}  // namespace densetrain
