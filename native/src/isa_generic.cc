// Portable kernels: baseline flags only (SSE2 on x86-64, NEON on arm64). Always built; the
// fallback when the CPU has neither AVX2+FMA nor AVX-512, and the only kernels on non-x86.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel_api.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace densetrain {
namespace {

#if defined(__aarch64__) && defined(__ARM_NEON)
struct Isa {
  using V = float32x4_t;
  static constexpr int kW = 4;
  static constexpr int kMR = 8;  // 32 NEON registers: 8x12 = 24 accumulators
  static constexpr int kNV = 3;
  static constexpr int64_t kMC = 128;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kNC = 2040;
  static inline V Zero() { return vdupq_n_f32(0.0f); }
  static inline V Load(const float* p) { return vld1q_f32(p); }
  static inline V LoadU(const float* p) { return vld1q_f32(p); }
  static inline void Store(float* p, V v) { vst1q_f32(p, v); }
  static inline void StoreU(float* p, V v) { vst1q_f32(p, v); }
  static inline V Bcast(const float* p) { return vld1q_dup_f32(p); }
  static inline V Set1(float x) { return vdupq_n_f32(x); }
  static inline V Fma(V a, V b, V c) { return vfmaq_f32(c, a, b); }
  static inline V Mul(V a, V b) { return vmulq_f32(a, b); }
  static inline void Prefetch(const float* p) { __builtin_prefetch(p); }
  static constexpr bool kTranspose8 = false;
};
#elif defined(__GNUC__)
typedef float Vec4 __attribute__((vector_size(16)));
struct Isa {
  using V = Vec4;
  static constexpr int kW = 4;
  static constexpr int kMR = 6;  // 16 SSE registers: 6x8 = 12 accumulators
  static constexpr int kNV = 2;
  static constexpr int64_t kMC = 144;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kNC = 2048;
  static inline V Zero() { return V{0.0f, 0.0f, 0.0f, 0.0f}; }
  static inline V Load(const float* p) {
    V v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  static inline V LoadU(const float* p) { return Load(p); }
  static inline void Store(float* p, V v) { memcpy(p, &v, sizeof v); }
  static inline void StoreU(float* p, V v) { memcpy(p, &v, sizeof v); }
  static inline V Bcast(const float* p) {
    const float x = *p;
    return V{x, x, x, x};
  }
  static inline V Set1(float x) { return V{x, x, x, x}; }
  static inline V Fma(V a, V b, V c) { return a * b + c; }  // -ffp-contract=off: mul, then add
  static inline V Mul(V a, V b) { return a * b; }
  static inline void Prefetch(const float* p) { __builtin_prefetch(p); }
  static constexpr bool kTranspose8 = false;
};
#else
struct Vec4 {
  float v[4];
};
struct Isa {
  using V = Vec4;
  static constexpr int kW = 4;
  static constexpr int kMR = 6;
  static constexpr int kNV = 2;
  static constexpr int64_t kMC = 144;
  static constexpr int64_t kKC = 256;
  static constexpr int64_t kNC = 2048;
  static inline V Zero() { return V{{0.0f, 0.0f, 0.0f, 0.0f}}; }
  static inline V Load(const float* p) {
    V v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  static inline V LoadU(const float* p) { return Load(p); }
  static inline void Store(float* p, V v) { memcpy(p, &v, sizeof v); }
  static inline void StoreU(float* p, V v) { memcpy(p, &v, sizeof v); }
  static inline V Bcast(const float* p) { return V{{*p, *p, *p, *p}}; }
  static inline V Set1(float x) { return V{{x, x, x, x}}; }
  static inline V Fma(V a, V b, V c) {
    for (int i = 0; i < 4; ++i) c.v[i] = a.v[i] * b.v[i] + c.v[i];
    return c;
  }
  static inline V Mul(V a, V b) {
    for (int i = 0; i < 4; ++i) a.v[i] *= b.v[i];
    return a;
  }
  static inline void Prefetch(const float*) {}
  static constexpr bool kTranspose8 = false;
};
#endif

}  // namespace
}  // namespace densetrain

#include "kernels_impl.h"

DENSETRAIN_DEFINE_TABLE(kGenericTable, "generic", Isa)

namespace densetrain {
const KernelTable* GenericTable() { return &kGenericTable; }
}  // namespace densetrain
