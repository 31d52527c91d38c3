// Helpers every kernel uses: inlining and aliasing macros, integer rounding, running tasks on the
// pool, and the detection of optional ISA members. Part of kernels_impl.h (included from it only,
// once per kernel translation unit, after the ISA description): internal linkage, no
// standard-library templates.
#ifndef DENSETRAIN_KERNELS_BASE_H_
#define DENSETRAIN_KERNELS_BASE_H_

#if defined(_MSC_VER) && !defined(__clang__)
#define DT_INLINE __forceinline
#define DT_RESTRICT __restrict
#define DT_UNROLL
#define DT_NO_UNROLL
#else
#define DT_INLINE inline __attribute__((always_inline))
#define DT_RESTRICT __restrict__
#define DT_UNROLL _Pragma("GCC unroll 32")
// Keeps GCC from unrolling a short constant-length loop completely before the loop vectorizer
// sees it (it would then stay scalar).
#define DT_NO_UNROLL _Pragma("GCC unroll 1")
#endif

namespace densetrain {
namespace {

DT_INLINE constexpr int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
DT_INLINE constexpr int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }
DT_INLINE constexpr int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
DT_INLINE constexpr int64_t RoundUp(int64_t a, int64_t b) { return CeilDiv(a, b) * b; }

// Runs fn over [0, ntasks), on the pool when there is more than one task and more than one thread.
inline void ForTasks(const Exec& exec, int ntasks, TaskFn fn, void* ctx) {
  if (ntasks <= 0) return;
  if (ntasks == 1 || exec.threads <= 1 || exec.parallel == nullptr) {
    for (int t = 0; t < ntasks; ++t) fn(ctx, t, 0);
  } else {
    exec.parallel(exec.pool, ntasks, fn, ctx);
  }
}

// SFINAE helper: VoidOf<T>::type is void whenever T is a valid type.
template <class T>
struct VoidOf {
  using type = void;
};

}  // namespace
}  // namespace densetrain

#endif  // DENSETRAIN_KERNELS_BASE_H_
