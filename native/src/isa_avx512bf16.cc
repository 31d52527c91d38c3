// bf16 mixed-precision GEMMs for AVX-512 CPUs with AVX512-BF16 (vdpbf16ps: Zen 4 and 5, Cooper
// Lake, Sapphire Rapids and later). Compiled with the AVX-512 flags plus -mavx512bf16; used only
// when the CPU and OS report AVX512-BF16 and the avx512 table is in use (see cpu.cc).
//
// The GEMM is kernels_impl.h's, on the AVX-512 tiles (12x32, 16x16 for outputs of at most 16
// columns), with two changes selected by Isa::kBf16: each packed panel is rewritten in place as
// bfloat16 pairs (Pairify: operands rounded to nearest even on their bits, exactly as the
// reference's bf16.ts rounds them), and the micro-kernel takes two k steps per vdpbf16ps.
// vdpbf16ps adds both exact products to the float32 accumulator with round-to-nearest, and
// treats bfloat16 subnormal inputs (|x| < 2^-126) as zero (and flushes subnormal sums): the
// only place this backend's bf16 differs from the reference beyond the order of the sums.
//
// AMX-BF16 tiles (Sapphire Rapids and later) are not built: no machine with AMX has run a test
// of them yet, and a kernel path no test has executed is not shipped.
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel_api.h"

#if !defined(__AVX512F__) || !defined(__AVX512DQ__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__AVX512BF16__)
#error "isa_avx512bf16.cc must be compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx512bf16"
#endif

// This TU uses only the GEMM and dense-forward templates of kernels_impl.h; its element-wise
// kernels (private copies, identical to isa_avx512.cc's) go unused here. GCC 12 also reports
// its own _mm512_undefined_epi32() (inside _mm512_srli_epi32) as maybe-uninitialized.
#if defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace densetrain {
namespace {

#include "x86_transpose.h"

#include "isa_avx512_desc.h"

struct Bf16Ops {
  static constexpr bool kBf16 = true;

  // Per 32-bit lane: the bfloat16 nearest to the float (ties to even) in the low 16 bits. NaNs
  // stay NaNs (quiet bit set first, so dropping the low bits cannot make an infinity).
  static inline __m512i RoundBits(__m512 x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), lsb), 16);
    const __m512i quiet = _mm512_srli_epi32(_mm512_or_si512(bits, _mm512_set1_epi32(0x00400000)), 16);
    const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_blend_epi32(nan, rounded, quiet);
  }

  // In place: kc steps of `rows` floats -> ceil(kc/2) steps of `rows` bf16 pairs. Step q is
  // written over floats [q*rows, (q+1)*rows), which were already read (q == 0) or are below
  // step 2q, the first one still to be read: the rewrite never overwrites unread floats.
  static inline void Pairify(float* panel, int64_t kc, int64_t rows) {
    const int64_t steps = (kc + 1) / 2;
    for (int64_t q = 0; q < steps; ++q) {
      const float* lo = panel + 2 * q * rows;
      const float* hi = lo + rows;
      const bool has_hi = 2 * q + 1 < kc;
      PairRows(lo, has_hi ? hi : nullptr, panel + q * rows, rows);
    }
  }

  // out[x] = bf16(lo[x]) | bf16(hi[x]) << 16 for x < count; hi null: the high halves are 0.
  static inline void PairRows(const float* lo, const float* hi, float* out, int64_t count) {
    for (int64_t x = 0; x < count; x += 16) {
      const __mmask16 m = count - x >= 16 ? static_cast<__mmask16>(0xffff)
                                          : static_cast<__mmask16>((1u << (count - x)) - 1);
      const __m512i l = RoundBits(_mm512_maskz_loadu_ps(m, lo + x));
      const __m512i h = hi != nullptr ? RoundBits(_mm512_maskz_loadu_ps(m, hi + x)) : _mm512_setzero_si512();
      _mm512_mask_storeu_ps(out + x, m, _mm512_castsi512_ps(_mm512_or_si512(l, _mm512_slli_epi32(h, 16))));
    }
  }

  static inline __m512 Dot2(__m512 a, __m512 b, __m512 acc) {
    return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
  }
};

struct IsaBf16Narrow;
// KC counts k steps; packed as pairs, 512 of them take the bytes 256 fp32 steps take (a 512x32
// B micro-panel is 32 KiB, in L1), so each C tile is loaded and stored half as often.
struct IsaBf16 : Isa, Bf16Ops {
  using Narrow = IsaBf16Narrow;
  static constexpr int64_t kKC = 512;
};
struct IsaBf16Narrow : IsaNarrow, Bf16Ops {
  static constexpr int64_t kKC = 512;
};

}  // namespace
}  // namespace densetrain

#include "kernels_impl.h"

namespace densetrain {
namespace {
const Bf16Table kAvx512Bf16Table = {
    "avx512-bf16",
    WorkspaceFloats<IsaBf16>(),
    &GemmEntry<IsaBf16>,
    &DenseForwardEntry<IsaBf16>,
};
}  // namespace

const Bf16Table* Avx512Bf16Table() { return &kAvx512Bf16Table; }
}  // namespace densetrain
