// The kernels, written once as templates over an ISA description and instantiated by each
// kernel translation unit (isa_generic.cc, isa_avx2.cc, isa_avx512.cc) with its own
// compiler flags. Include this only from those files, after defining `struct Isa` (below)
// inside `namespace densetrain { namespace { ... } }`.
//
// Everything here lives in an anonymous namespace (internal linkage, one private copy per
// TU) and uses no standard-library templates, so no function compiled for one ISA can be
// shared with another by the linker. Only C library math (exp, log, tanh, sqrt) is called.
//
// An ISA description provides:
//   using V;                         a SIMD vector of kW floats
//   kW, kMR, kNV                     GEMM micro-tile: kMR rows x (kNV * kW) columns
//   kMC, kKC, kNC                    cache blocking (kMC % kMR == 0, kNC % (kNV*kW) == 0)
//   Zero, Load (64-byte aligned), LoadU, StoreU, Bcast (from memory), Set1, Fma(a, b, c) = a*b+c,
//   Mul, Prefetch
//   kTranspose8, Transpose8x8(src, lds, dst, ldd): dst[c*ldd + r] = src[r*lds + c] for an 8x8
//                                    block (used by the transposing pack routines when true)
// and, for bf16 mixed precision (optional; absent means fp32):
//   kBf16 = true                     operands rounded to bfloat16 while packing, float32 sums
//   Pairify(panel, kc, rows)         rewrites a packed float panel (kc steps of `rows` floats) in
//                                    place as ceil(kc/2) steps of `rows` 32-bit bf16 pairs:
//                                    slot[q*rows + x] = bf16(panel[2q*rows + x]) |
//                                    bf16(panel[(2q+1)*rows + x]) << 16 (0 past kc)
//   PairRows(lo, hi, out, count)     out[x] = bf16(lo[x]) | bf16(hi[x]) << 16 for x < count (hi null:
//                                    0), straight from two contiguous rows of a source matrix
//   Dot2(a, b, acc)                  acc + a.lo*b.lo + a.hi*b.hi per float lane, a and b holding
//                                    pairs (vdpbf16ps)
//
// GEMM follows BLIS: for each NC-wide column block and KC-deep slice of k, pack op(B) into
// KC x NR micro-panels; for each MC-tall row block pack op(A) into MR x KC micro-panels; a
// register-blocked micro-kernel computes each MR x NR tile of C. Transposes are absorbed by
// the packing routines. Parallelism splits C into rectangles whose edges fall on the MR/NR
// tile grid, and the KC slicing depends on k only, so each element of C sees the same
// sequence of floating-point operations at any thread count.
#ifndef DENSETRAIN_KERNELS_IMPL_H_
#define DENSETRAIN_KERNELS_IMPL_H_

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

// ---------------------------------------------------------------------------------------
// Element-wise helpers (used by the GEMM epilogue and the element-wise kernels)
// ---------------------------------------------------------------------------------------

// Float exp, tanh and sigmoid written so that loops over them vectorize (no calls, no branches;
// selects only). Cephes-style argument reduction and minimax polynomials, within ~2 ulp of
// the correctly rounded result; exp underflows to 0 below ln(FLT_MIN) (no subnormal results).
DT_INLINE float BitsToFloat(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

DT_INLINE float ExpF(float x) {
  const bool nan = x != x;
  float xc = nan ? 0.0f : x;
  xc = xc < -87.33654f ? -87.33654f : xc;  // ln(FLT_MIN): results stay normal
  xc = xc > 88.0f ? 88.0f : xc;  // e^88 < FLT_MAX; only sigmoid/tanh saturation depends on this
  // n = round(x / ln 2) by the 1.5 * 2^23 trick, then r = x - n ln 2 in two steps.
  const float t = xc * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  const float scale = BitsToFloat(static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23);
  const float e = x < -87.33654f ? 0.0f : y * scale;
  return nan ? x : e;
}

DT_INLINE float SigmoidF(float z) {
  // e = exp(-|z|) <= 1 never overflows; sigmoid = 1/(1+e) for z >= 0, e/(1+e) below.
  const float az = z < 0.0f ? -z : z;
  const float e = ExpF(-az);
  const float num = z >= 0.0f ? 1.0f : e;
  const float h = num / (1.0f + e);
  return z != z ? z : h;
}

DT_INLINE float TanhF(float x) {
  const float ax = x < 0.0f ? -x : x;
  // |x| < 0.625: odd polynomial; else 1 - 2 / (e^{2|x|} + 1) with the sign of x.
  const float s = x * x;
  float p = -5.70498872745e-3f;
  p = p * s + 2.06390887954e-2f;
  p = p * s - 5.37397155531e-2f;
  p = p * s + 1.33314422036e-1f;
  p = p * s - 3.33332819422e-1f;
  const float small = p * s * x + x;
  const float e = ExpF(2.0f * ax);
  const float big_abs = 1.0f - 2.0f / (e + 1.0f);
  const float big = x < 0.0f ? -big_abs : big_abs;
  const float t = ax < 0.625f ? small : big;
  return x != x ? x : t;
}

// out[i] = f(in[i]), vectorizable both in place (in == out) and out of place.
template <class F>
DT_INLINE void MapRow(const float* in, float* out, int64_t n, F f) {
  if (in == out) {
    for (int64_t i = 0; i < n; ++i) out[i] = f(out[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
  }
}

// One run of n elements of a row: z[j] += bias[j] (when bias is not null), then
// h[j] = act(z[j]); h may be z. bias_activation's row loop; dense_forward's GEMM epilogue
// (EpilogueRow below) performs the same float operations, so the two give the same bits.
// kKind is never kActPrelu (that is leaky_relu with the slope value as alpha).
template <int kKind>
DT_INLINE void BiasActSpan(float* z, float* h, int64_t n, const float* bias, double alpha) {
  if (bias != nullptr) {
    for (int64_t j = 0; j < n; ++j) z[j] = z[j] + bias[j];
  }
  switch (kKind) {
    case kActRelu:
      MapRow(z, h, n, [](float v) { return v > 0.0f ? v : 0.0f; });
      break;
    case kActLeakyRelu:  // also prelu: alpha is the slope; the product is rounded once, like the reference
      MapRow(z, h, n, [alpha](float v) {
        const float neg = static_cast<float>(alpha * static_cast<double>(v));
        return v > 0.0f ? v : neg;
      });
      break;
    case kActSigmoid:
      MapRow(z, h, n, [](float v) { return SigmoidF(v); });
      break;
    case kActTanh:
      MapRow(z, h, n, [](float v) { return TanhF(v); });
      break;
    default:
      if (h != z) {
        for (int64_t j = 0; j < n; ++j) h[j] = z[j];
      }
      break;
  }
}

// act(v) for one value, the same arithmetic as BiasActSpan's lambdas.
template <int kKind>
DT_INLINE float ActF(float v, double alpha) {
  switch (kKind) {
    case kActRelu:
      return v > 0.0f ? v : 0.0f;
    case kActLeakyRelu: {
      const float neg = static_cast<float>(alpha * static_cast<double>(v));
      return v > 0.0f ? v : neg;
    }
    case kActSigmoid:
      return SigmoidF(v);
    case kActTanh:
      return TanhF(v);
    default:
      return v;
  }
}

// The dense_forward epilogue over one mr x nr tile of z (row stride ld) and the same tile of h,
// right after the GEMM stored it: v = z + bias; z = v; h = act(v). The same float operations as
// BiasActSpan (so the same bits as gemm + bias_activation), in one pass over a tile still in L1.
// Full-width tiles (nr == kNR) run fixed-length loops the compiler vectorizes without checks.
using EpilogueTileFn = void (*)(float* z, float* h, int64_t ld, int64_t mr, int64_t nr, const float* bias,
                                double alpha);

template <int kKind, bool kBias, bool kInPlace>
DT_INLINE void EpilogueRow(float* DT_RESTRICT z, float* DT_RESTRICT h, int64_t n, const float* DT_RESTRICT bias,
                           double alpha) {
  DT_NO_UNROLL
  for (int64_t j = 0; j < n; ++j) {
    const float v = kBias ? z[j] + bias[j] : z[j];
    if (kInPlace) {
      z[j] = ActF<kKind>(v, alpha);
    } else {
      if (kBias) z[j] = v;
      h[j] = ActF<kKind>(v, alpha);
    }
  }
}

template <int kKind, bool kBias, bool kInPlace, int kNR>
void EpilogueTile(float* z, float* h, int64_t ld, int64_t mr, int64_t nr, const float* bias, double alpha) {
  if (nr == kNR) {
    for (int64_t r = 0; r < mr; ++r) EpilogueRow<kKind, kBias, kInPlace>(z + r * ld, h + r * ld, kNR, bias, alpha);
  } else {
    for (int64_t r = 0; r < mr; ++r) EpilogueRow<kKind, kBias, kInPlace>(z + r * ld, h + r * ld, nr, bias, alpha);
  }
}

template <int kKind, int kNR>
EpilogueTileFn SelectEpilogue2(bool bias, bool in_place) {
  if (bias) return in_place ? &EpilogueTile<kKind, true, true, kNR> : &EpilogueTile<kKind, true, false, kNR>;
  return in_place ? &EpilogueTile<kKind, false, true, kNR> : &EpilogueTile<kKind, false, false, kNR>;
}

template <int kNR>
EpilogueTileFn SelectEpilogue(int kind, bool bias, bool in_place) {
  switch (kind) {
    case kActRelu:
      return SelectEpilogue2<kActRelu, kNR>(bias, in_place);
    case kActLeakyRelu:
    case kActPrelu:
      return SelectEpilogue2<kActLeakyRelu, kNR>(bias, in_place);
    case kActSigmoid:
      return SelectEpilogue2<kActSigmoid, kNR>(bias, in_place);
    case kActTanh:
      return SelectEpilogue2<kActTanh, kNR>(bias, in_place);
    default:
      return SelectEpilogue2<kActLinear, kNR>(bias, in_place);
  }
}

// What dense_forward asks the GEMM to do to each finished tile of C.
struct Epilogue {
  EpilogueTileFn tile;
  const float* bias;  // n floats, or null
  float* h;           // m x n like C; may be C
  double alpha;
};

// ---------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------

template <class T>
struct VoidOf {
  using type = void;
};
// Whether an ISA description asks for bf16 operands (Isa::kBf16), false when it does not say.
template <class I, class = void>
struct Bf16Of {
  static constexpr bool value = false;
};
template <class I>
struct Bf16Of<I, typename VoidOf<decltype(I::kBf16)>::type> {
  static constexpr bool value = I::kBf16;
};

// Below this many multiply-adds (m*n*k) a GEMM runs on the calling thread (128x128x64, 1M
// multiply-adds, is 1.6x faster on 2 threads than on 1 on Zen 5).
constexpr int64_t kGemmParallelMacs = int64_t{64} * 64 * 64;
// Relative cost of packing one element versus one multiply-add in the task-grid model.
constexpr int64_t kPackCost = 16;

template <class I>
struct GemmImpl {
  using V = typename I::V;
  static constexpr int W = I::kW;
  static constexpr int MR = I::kMR;
  static constexpr int NV = I::kNV;
  static constexpr int NR = NV * W;
  static constexpr int64_t MC = I::kMC;
  static constexpr int64_t KC = I::kKC;
  static constexpr int64_t NC = I::kNC;
  // bf16: panels whose two k steps are contiguous source rows (B not transposed, A transposed)
  // are paired straight from the source (PairRows); the others are packed as floats and then
  // rewritten in place as pairs (Pairify). The micro-kernel takes two k steps per Dot2.
  // Blocking and the task grid are unchanged.
  static constexpr bool kBf16 = Bf16Of<I>::value;
  static_assert(MC % MR == 0, "MC must be a multiple of MR");
  static_assert(NC % NR == 0, "NC must be a multiple of NR");

  // Workspace per worker: packed A block, then packed B block (both 64-byte aligned).
  static constexpr size_t kApFloats = static_cast<size_t>(RoundUp(MC * KC + 16, 16));
  static constexpr size_t kBpFloats = static_cast<size_t>(RoundUp(KC * NC + 16, 16));
  static constexpr size_t kWorkspaceFloats = kApFloats + kBpFloats;

  // c[r*ldc + j] = alpha * sum_p a[p*MR + r] * b[p*NR + j] (+ beta * c[r*ldc + j] unless beta == 0)
  static DT_INLINE void Micro(int64_t kc, const float* DT_RESTRICT a, const float* DT_RESTRICT b,
                              float* c, int64_t ldc, float alpha, float beta) {
    V acc[MR][NV];
    DT_UNROLL
    for (int r = 0; r < MR; ++r) {
      DT_UNROLL
      for (int v = 0; v < NV; ++v) acc[r][v] = I::Zero();
    }
    DT_UNROLL
    for (int r = 0; r < MR; ++r) I::Prefetch(c + r * ldc);
    if constexpr (kBf16) {
      // Each 32-bit slot holds two k steps (a bf16 pair); Bcast copies a slot's bits.
      const int64_t steps = (kc + 1) / 2;
      for (int64_t p = 0; p < steps; ++p) {
        V bv[NV];
        DT_UNROLL
        for (int v = 0; v < NV; ++v) bv[v] = I::Load(b + v * W);
        DT_UNROLL
        for (int r = 0; r < MR; ++r) {
          const V av = I::Bcast(a + r);
          DT_UNROLL
          for (int v = 0; v < NV; ++v) acc[r][v] = I::Dot2(av, bv[v], acc[r][v]);
        }
        a += MR;
        b += NR;
      }
    } else {
      for (int64_t p = 0; p < kc; ++p) {
        V bv[NV];
        DT_UNROLL
        for (int v = 0; v < NV; ++v) bv[v] = I::Load(b + v * W);
        DT_UNROLL
        for (int r = 0; r < MR; ++r) {
          const V av = I::Bcast(a + r);
          DT_UNROLL
          for (int v = 0; v < NV; ++v) acc[r][v] = I::Fma(av, bv[v], acc[r][v]);
        }
        a += MR;
        b += NR;
      }
    }
    const V va = I::Set1(alpha);
    if (beta == 0.0f) {
      DT_UNROLL
      for (int r = 0; r < MR; ++r) {
        DT_UNROLL
        for (int v = 0; v < NV; ++v) I::StoreU(c + r * ldc + v * W, I::Mul(va, acc[r][v]));
      }
    } else {
      const V vb = I::Set1(beta);
      DT_UNROLL
      for (int r = 0; r < MR; ++r) {
        DT_UNROLL
        for (int v = 0; v < NV; ++v) {
          float* cp = c + r * ldc + v * W;
          I::StoreU(cp, I::Fma(vb, I::LoadU(cp), I::Mul(va, acc[r][v])));
        }
      }
    }
  }

  // Packs rows [i0, i0+mc) x depth [p0, p0+kc) of op(A) into MR-row micro-panels:
  // ap[ir*kc + p*MR + r] = op(A)[i0+ir+r, p0+p], zero-padded past mc.
  static void PackA(bool trans, const float* DT_RESTRICT a, int64_t m, int64_t k, int64_t i0,
                    int64_t mc, int64_t p0, int64_t kc, float* DT_RESTRICT ap) {
    for (int64_t ir = 0; ir < mc; ir += MR) {
      const int64_t mr = Min64(MR, mc - ir);
      float* DT_RESTRICT d = ap + ir * kc;
      if constexpr (kBf16) {
        if (trans && mr == MR) {
          // Two k steps are two contiguous rows of A: round and pair them straight into place.
          for (int64_t q = 0; 2 * q < kc; ++q) {
            const float* lo = a + (p0 + 2 * q) * m + i0 + ir;
            I::PairRows(lo, 2 * q + 1 < kc ? lo + m : nullptr, d + q * MR, MR);
          }
          continue;
        }
      }
      if (!trans) {
        // A is m x k, row-major: row i is contiguous in p.
        if (mr == MR) {
          const float* rows[MR];
          DT_UNROLL
          for (int r = 0; r < MR; ++r) rows[r] = a + (i0 + ir + r) * k + p0;
          int64_t p = 0;
          if constexpr (I::kTranspose8) {
            // 8 x 8 blocks (rows past MR in the last group are re-read and dropped).
            alignas(64) float t[64];
            for (; p + 8 <= kc; p += 8) {
              for (int g = 0; g < MR; g += 8) {
                const int rows_here = MR - g < 8 ? MR - g : 8;
                I::Transpose8x8Rows(rows + g, rows_here, p, t, 8);
                for (int q = 0; q < 8; ++q) memcpy(d + (p + q) * MR + g, t + q * 8, sizeof(float) * rows_here);
              }
            }
          }
          for (; p < kc; ++p) {
            DT_UNROLL
            for (int r = 0; r < MR; ++r) d[p * MR + r] = rows[r][p];
          }
        } else {
          for (int64_t p = 0; p < kc; ++p) {
            for (int64_t r = 0; r < mr; ++r) d[p * MR + r] = a[(i0 + ir + r) * k + p0 + p];
            for (int64_t r = mr; r < MR; ++r) d[p * MR + r] = 0.0f;
          }
        }
      } else {
        // A is stored k x m: op(A)[i, p] = a[p*m + i], contiguous in i.
        for (int64_t p = 0; p < kc; ++p) {
          const float* s = a + (p0 + p) * m + i0 + ir;
          if (mr == MR) {
            DT_UNROLL
            for (int r = 0; r < MR; ++r) d[p * MR + r] = s[r];
          } else {
            for (int64_t r = 0; r < mr; ++r) d[p * MR + r] = s[r];
            for (int64_t r = mr; r < MR; ++r) d[p * MR + r] = 0.0f;
          }
        }
      }
      if constexpr (kBf16) I::Pairify(d, kc, MR);
    }
  }

  // Packs depth [p0, p0+kc) x columns [j0, j0+nc) of op(B) into NR-column micro-panels:
  // bp[jr*kc + p*NR + j] = op(B)[p0+p, j0+jr+j], zero-padded past nc.
  static void PackB(bool trans, const float* DT_RESTRICT b, int64_t k, int64_t n, int64_t p0,
                    int64_t kc, int64_t j0, int64_t nc, float* DT_RESTRICT bp) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
      const int64_t nr = Min64(NR, nc - jr);
      float* DT_RESTRICT d = bp + jr * kc;
      if constexpr (kBf16) {
        if (!trans && nr == NR) {
          // Two k steps are two contiguous rows of B: round and pair them straight into place.
          for (int64_t q = 0; 2 * q < kc; ++q) {
            const float* lo = b + (p0 + 2 * q) * n + j0 + jr;
            I::PairRows(lo, 2 * q + 1 < kc ? lo + n : nullptr, d + q * NR, NR);
          }
          continue;
        }
      }
      if (!trans) {
        // B is k x n, row-major: contiguous in j.
        for (int64_t p = 0; p < kc; ++p) {
          const float* s = b + (p0 + p) * n + j0 + jr;
          if (nr == NR) {
            DT_UNROLL
            for (int v = 0; v < NV; ++v) I::Store(d + p * NR + v * W, I::LoadU(s + v * W));
          } else {
            for (int64_t j = 0; j < nr; ++j) d[p * NR + j] = s[j];
            for (int64_t j = nr; j < NR; ++j) d[p * NR + j] = 0.0f;
          }
        }
      } else {
        // B is stored n x k: op(B)[p, j] = b[j*k + p], contiguous in p.
        if constexpr (I::kTranspose8) {
          if (nr == NR) {
            int64_t p = 0;
            for (; p + 8 <= kc; p += 8) {
              for (int jb = 0; jb < NR; jb += 8) {
                I::Transpose8x8(b + (j0 + jr + jb) * k + p0 + p, k, d + p * NR + jb, NR);
              }
            }
            for (; p < kc; ++p) {
              for (int j = 0; j < NR; ++j) d[p * NR + j] = b[(j0 + jr + j) * k + p0 + p];
            }
            if constexpr (kBf16) I::Pairify(d, kc, NR);
            continue;
          }
        }
        for (int64_t j = 0; j < nr; ++j) {
          const float* s = b + (j0 + jr + j) * k + p0;
          for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = s[p];
        }
        for (int64_t j = nr; j < NR; ++j) {
          for (int64_t p = 0; p < kc; ++p) d[p * NR + j] = 0.0f;
        }
      }
      if constexpr (kBf16) I::Pairify(d, kc, NR);
    }
  }

  // C block (mc x nc at c, row stride ldc) from packed panels. With an epilogue (last k-slice
  // of dense_forward only), each tile gets bias + activation right after it is stored, while it
  // is still in L1; h and bias point at the block's origin in h and at its first column.
  static void Macro(int64_t mc, int64_t nc, int64_t kc, const float* ap, const float* bp, float* c,
                    int64_t ldc, float alpha, float beta, const Epilogue* epi = nullptr,
                    float* h = nullptr, const float* bias = nullptr) {
    for (int64_t jr = 0; jr < nc; jr += NR) {
      const int64_t nr = Min64(NR, nc - jr);
      const float* b = bp + jr * kc;
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t mr = Min64(MR, mc - ir);
        const float* a = ap + ir * kc;
        float* cij = c + ir * ldc + jr;
        if (epi != nullptr && h != c) {
          // h is written only by the epilogue, in tile order (not a stream the hardware
          // prefetchers follow): ask for its lines now, while the micro-kernel computes.
          float* hij = h + ir * ldc + jr;
          for (int64_t r = 0; r < mr; ++r) {
            I::Prefetch(hij + r * ldc);
            I::Prefetch(hij + r * ldc + nr - 1);
          }
        }
        if (mr == MR && nr == NR) {
          Micro(kc, a, b, cij, ldc, alpha, beta);
        } else {
          alignas(64) float tile[MR * NR];
          Micro(kc, a, b, tile, NR, 1.0f, 0.0f);
          for (int64_t r = 0; r < mr; ++r) {
            float* crow = cij + r * ldc;
            const float* trow = tile + r * NR;
            if (beta == 0.0f) {
              for (int64_t j = 0; j < nr; ++j) crow[j] = alpha * trow[j];
            } else {
              for (int64_t j = 0; j < nr; ++j) crow[j] = alpha * trow[j] + beta * crow[j];
            }
          }
        }
        if (epi != nullptr) {
          epi->tile(cij, h + ir * ldc + jr, ldc, mr, nr, bias != nullptr ? bias + jr : nullptr, epi->alpha);
        }
      }
    }
  }

  struct Ctx {
    bool ta, tb;
    int64_t m, n, k, kcb;
    float alpha, beta;
    const float* a;
    const float* b;
    float* c;
    const Epilogue* epi;  // null for a plain GEMM
    int64_t pm, pn;  // MR-row panels, NR-column panels
    int tm, tn;      // task grid
    const Exec* exec;
  };

  // Computes the C rectangle [i0, i1) x [j0, j1) over all of k.
  static void Rect(const Ctx& x, int64_t i0, int64_t i1, int64_t j0, int64_t j1, float* ws) {
    float* ap = ws;
    float* bp = ws + kApFloats;
    const int64_t rows = i1 - i0;
    const int64_t cols = j1 - j0;
    const int64_t mcb = RoundUp(CeilDiv(rows, CeilDiv(rows, MC)), MR);
    const int64_t ncb = RoundUp(CeilDiv(cols, CeilDiv(cols, NC)), NR);
    for (int64_t jc = j0; jc < j1; jc += ncb) {
      const int64_t nc = Min64(ncb, j1 - jc);
      for (int64_t pc = 0; pc < x.k; pc += x.kcb) {
        const int64_t kc = Min64(x.kcb, x.k - pc);
        PackB(x.tb, x.b, x.k, x.n, pc, kc, jc, nc, bp);
        const float beta = pc == 0 ? x.beta : 1.0f;
        // The epilogue runs once per element: after the last k-slice has been added.
        const Epilogue* epi = pc + kc >= x.k ? x.epi : nullptr;
        for (int64_t ic = i0; ic < i1; ic += mcb) {
          const int64_t mc = Min64(mcb, i1 - ic);
          PackA(x.ta, x.a, x.m, x.k, ic, mc, pc, kc, ap);
          if (epi == nullptr) {
            Macro(mc, nc, kc, ap, bp, x.c + ic * x.n + jc, x.n, x.alpha, beta);
          } else {
            Macro(mc, nc, kc, ap, bp, x.c + ic * x.n + jc, x.n, x.alpha, beta, epi, epi->h + ic * x.n + jc,
                  epi->bias != nullptr ? epi->bias + jc : nullptr);
          }
        }
      }
    }
  }

  static void Task(void* vctx, int task, int worker) {
    const Ctx& x = *static_cast<const Ctx*>(vctx);
    const int ti = task / x.tn;
    const int tj = task % x.tn;
    const int64_t i0 = (x.pm * ti / x.tm) * MR;
    const int64_t i1 = Min64((x.pm * (ti + 1) / x.tm) * MR, x.m);
    const int64_t j0 = (x.pn * tj / x.tn) * NR;
    const int64_t j1 = Min64((x.pn * (tj + 1) / x.tn) * NR, x.n);
    if (i0 >= i1 || j0 >= j1) return;
    Rect(x, i0, i1, j0, j1, x.exec->workspace[worker]);
  }

  // epi (dense_forward): bias + activation applied to each finished tile of C; requires k > 0.
  static void Run(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                  const float* b, float beta, float* c, const Exec& exec, const Epilogue* epi = nullptr) {
    if (m <= 0 || n <= 0) return;
    const int64_t mn = m * n;
    if (k <= 0) {
      // Empty sum: C = alpha * 0 + beta * C, and beta == 0 does not read C.
      if (beta == 0.0f) {
        for (int64_t i = 0; i < mn; ++i) c[i] = 0.0f;
      } else {
        for (int64_t i = 0; i < mn; ++i) c[i] = beta * c[i];
      }
      return;
    }
    Ctx x;
    x.ta = ta;
    x.tb = tb;
    x.m = m;
    x.n = n;
    x.k = k;
    x.kcb = CeilDiv(k, CeilDiv(k, KC));  // depends on k only: the per-element sum order
    x.alpha = alpha;
    x.beta = beta;
    x.a = a;
    x.b = b;
    x.c = c;
    x.epi = epi;
    x.pm = CeilDiv(m, MR);
    x.pn = CeilDiv(n, NR);
    x.tm = 1;
    x.tn = 1;
    x.exec = &exec;
    const int threads = exec.threads;
    if (threads > 1 && exec.parallel != nullptr && m * n * k >= kGemmParallelMacs) {
      // Pick the task grid with the smallest per-task cost (compute plus packing).
      int64_t best = -1;
      for (int tm = 1; tm <= threads && tm <= x.pm; ++tm) {
        for (int tn = 1; tm * tn <= threads && tn <= x.pn; ++tn) {
          const int64_t rm = CeilDiv(x.pm, tm) * MR;
          const int64_t rn = CeilDiv(x.pn, tn) * NR;
          const int64_t cost = rm * rn * k + kPackCost * (rm + rn) * k;
          if (best < 0 || cost < best) {
            best = cost;
            x.tm = tm;
            x.tn = tn;
          }
        }
      }
    }
    const int tasks = x.tm * x.tn;
    if (tasks == 1) {
      Rect(x, 0, m, 0, n, exec.workspace[0]);
    } else {
      exec.parallel(exec.pool, tasks, &Task, &x);
    }
  }
};

// ---------------------------------------------------------------------------------------
// Element-wise kernels. Arithmetic follows the reference backend (src/kernels/reference.ts):
// values are widened to double where the reference computes in JS numbers and rounded to
// float once, where the reference stores. Work is split in chunks whose size depends only on
// the problem, and reductions add the chunk results in order, so results never depend on
// the thread count.
// ---------------------------------------------------------------------------------------

constexpr int64_t kChunk = int64_t{1} << 15;  // elements per parallel task
constexpr int kMaxChunks = 4096;              // bounds the per-call array of partial sums

// Elements per chunk for n elements: at least kChunk, and few enough chunks to fit kMaxChunks.
DT_INLINE int64_t ChunkFor(int64_t n) { return Max64(kChunk, CeilDiv(n, kMaxChunks)); }
// Rows per chunk for a rows x cols matrix.
DT_INLINE int64_t RowChunkFor(int64_t rows, int64_t cols) {
  const int64_t by_size = Max64(1, kChunk / Max64(cols, 1));
  return Max64(by_size, CeilDiv(rows, kMaxChunks));
}

struct BiasActCtx {
  int64_t rows, cols, chunk;
  float* z;
  const float* bias;
  int kind;
  double alpha;
  float* h;
};

template <int kKind>
DT_INLINE void BiasActRows(const BiasActCtx& x, int64_t r0, int64_t r1) {
  const int64_t cols = x.cols;
  for (int64_t i = r0; i < r1; ++i) BiasActSpan<kKind>(x.z + i * cols, x.h + i * cols, cols, x.bias, x.alpha);
}

void BiasActTask(void* vctx, int task, int /*worker*/) {
  const BiasActCtx& x = *static_cast<const BiasActCtx*>(vctx);
  const int64_t r0 = task * x.chunk;
  const int64_t r1 = Min64(r0 + x.chunk, x.rows);
  switch (x.kind) {
    case kActRelu:
      BiasActRows<kActRelu>(x, r0, r1);
      break;
    case kActLeakyRelu:
    case kActPrelu:
      BiasActRows<kActLeakyRelu>(x, r0, r1);
      break;
    case kActSigmoid:
      BiasActRows<kActSigmoid>(x, r0, r1);
      break;
    case kActTanh:
      BiasActRows<kActTanh>(x, r0, r1);
      break;
    default:
      BiasActRows<kActLinear>(x, r0, r1);
      break;
  }
}

void BiasActivation(int64_t rows, int64_t cols, float* z, const float* bias, int kind, double alpha,
                    float* h, const Exec& exec) {
  if (rows <= 0 || cols <= 0) return;
  BiasActCtx x{rows, cols, 0, z, bias, kind, alpha, h};
  // Transcendental activations cost more per element: split them finer.
  const bool heavy = kind == kActSigmoid || kind == kActTanh;
  const int64_t per_task = heavy ? kChunk / 4 : kChunk;
  x.chunk = Max64(Max64(1, per_task / cols), CeilDiv(rows, kMaxChunks));
  ForTasks(exec, static_cast<int>(CeilDiv(rows, x.chunk)), &BiasActTask, &x);
}

struct ActBackCtx {
  int64_t n, chunk;
  int kind;
  double alpha;
  const float* z;
  const float* h;
  const float* dh;
  float* dz;
  double* partial;  // prelu slope gradient per chunk
};

// dz[i] = f(z[i], h[i], dh[i]), vectorizable with dz == dh (allowed) or separate.
template <class F>
DT_INLINE void MapBack(const float* z, const float* h, const float* dh, float* dz, int64_t i0, int64_t i1, F f) {
  if (dz == dh) {
    for (int64_t i = i0; i < i1; ++i) dz[i] = f(z[i], h[i], dz[i]);
  } else {
    for (int64_t i = i0; i < i1; ++i) dz[i] = f(z[i], h[i], dh[i]);
  }
}

void ActBackTask(void* vctx, int task, int /*worker*/) {
  const ActBackCtx& x = *static_cast<const ActBackCtx*>(vctx);
  const int64_t i0 = task * x.chunk;
  const int64_t i1 = Min64(i0 + x.chunk, x.n);
  const float* z = x.z;
  const float* h = x.h;
  const float* dh = x.dh;  // may be dz
  float* dz = x.dz;
  const double alpha = x.alpha;
  if (x.kind == kActPrelu && x.partial != nullptr) {
    // Slope gradient sum over z <= 0 of dh * z (products exact in double), read before dz is
    // written; eight interleaved lanes in a fixed order.
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = i0;
    for (; i + 8 <= i1; i += 8) {
      DT_UNROLL
      for (int l = 0; l < 8; ++l) {
        const float zi = z[i + l];
        const double prod = static_cast<double>(dh[i + l]) * static_cast<double>(zi);
        acc[l] += zi <= 0.0f ? prod : 0.0;
      }
    }
    for (int l = 0; i < i1; ++i, ++l) {
      const float zi = z[i];
      if (zi <= 0.0f) acc[l] += static_cast<double>(dh[i]) * static_cast<double>(zi);
    }
    x.partial[task] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  }
  switch (x.kind) {
    case kActRelu:
      MapBack(z, h, dh, dz, i0, i1, [](float zi, float, float g) { return g * (zi > 0.0f ? 1.0f : 0.0f); });
      break;
    case kActLeakyRelu:
    case kActPrelu:
      MapBack(z, h, dh, dz, i0, i1, [alpha](float zi, float, float g) {
        const float neg = static_cast<float>(static_cast<double>(g) * alpha);
        return zi > 0.0f ? g : neg;
      });
      break;
    case kActSigmoid:
      MapBack(z, h, dh, dz, i0, i1, [](float, float hf, float g) {
        const double hi = hf;
        return static_cast<float>(static_cast<double>(g) * (hi * (1.0 - hi)));
      });
      break;
    case kActTanh:
      MapBack(z, h, dh, dz, i0, i1, [](float, float hf, float g) {
        const double hi = hf;
        return static_cast<float>(static_cast<double>(g) * (1.0 - hi * hi));
      });
      break;
    default:
      if (dz != dh) {
        for (int64_t i = i0; i < i1; ++i) dz[i] = dh[i];
      }
      break;
  }
}

double ActivationBackward(int64_t rows, int64_t cols, int kind, double alpha, const float* z,
                          const float* h, const float* dh, float* dz, const Exec& exec) {
  const int64_t n = rows * cols;
  if (n <= 0) return 0.0;
  double partial[kMaxChunks];
  ActBackCtx x{n, ChunkFor(n), kind, alpha, z, h, dh, dz, kind == kActPrelu ? partial : nullptr};
  const int chunks = static_cast<int>(CeilDiv(n, x.chunk));
  ForTasks(exec, chunks, &ActBackTask, &x);
  double slope = 0.0;
  if (kind == kActPrelu) {
    for (int t = 0; t < chunks; ++t) slope += partial[t];
  }
  return slope;
}

struct BiasGradCtx {
  int64_t rows, cols, chunk;
  const float* dz;
  float* db;
};

void BiasGradTask(void* vctx, int task, int /*worker*/) {
  const BiasGradCtx& x = *static_cast<const BiasGradCtx*>(vctx);
  const int64_t j0 = task * x.chunk;
  const int64_t j1 = Min64(j0 + x.chunk, x.cols);
  constexpr int64_t kBlock = 256;
  double acc[kBlock];
  for (int64_t jb = j0; jb < j1; jb += kBlock) {
    const int64_t w = Min64(kBlock, j1 - jb);
    for (int64_t j = 0; j < w; ++j) acc[j] = 0.0;
    for (int64_t i = 0; i < x.rows; ++i) {
      const float* row = x.dz + i * x.cols + jb;
      for (int64_t j = 0; j < w; ++j) acc[j] += static_cast<double>(row[j]);
    }
    for (int64_t j = 0; j < w; ++j) x.db[jb + j] = static_cast<float>(acc[j]);
  }
}

void BiasGrad(int64_t rows, int64_t cols, const float* dz, float* db, const Exec& exec) {
  if (cols <= 0) return;
  BiasGradCtx x{rows, cols, 0, dz, db};
  // Split over columns (outputs) only; each column is summed over rows in order.
  const int64_t per_task = Max64(64, CeilDiv(kChunk, Max64(rows, 1)));
  x.chunk = Max64(RoundUp(per_task, 64), CeilDiv(cols, kMaxChunks));
  ForTasks(exec, static_cast<int>(CeilDiv(cols, x.chunk)), &BiasGradTask, &x);
}

struct SoftmaxCtx {
  int64_t rows, cols, chunk;
  const float* logits;
  const float* labels;  // null: softmax only
  float* probs;
  float* dlogits;       // may be null; may alias logits
  double* partial;      // per-chunk loss sums
};

void SoftmaxTask(void* vctx, int task, int /*worker*/) {
  const SoftmaxCtx& x = *static_cast<const SoftmaxCtx*>(vctx);
  const int64_t r0 = task * x.chunk;
  const int64_t r1 = Min64(r0 + x.chunk, x.rows);
  const int64_t cols = x.cols;
  const double inv_rows = static_cast<double>(x.rows);
  double loss = 0.0;
  for (int64_t i = r0; i < r1; ++i) {
    const float* l = x.logits + i * cols;
    float* p = x.probs + i * cols;
    double mx = -HUGE_VAL;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = l[j];
      mx = v > mx ? v : mx;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += ::exp(static_cast<double>(l[j]) - mx);
    const double lse = mx + ::log(sum);
    if (x.labels == nullptr) {
      for (int64_t j = 0; j < cols; ++j) p[j] = static_cast<float>(::exp(static_cast<double>(l[j]) - lse));
      continue;
    }
    const int64_t y = static_cast<int64_t>(x.labels[i]);
    loss += lse - static_cast<double>(l[y]);
    float* d = x.dlogits != nullptr ? x.dlogits + i * cols : nullptr;
    for (int64_t j = 0; j < cols; ++j) {
      const double pj = ::exp(static_cast<double>(l[j]) - lse);  // read l[j] before d[j] (may alias)
      p[j] = static_cast<float>(pj);
      if (d != nullptr) d[j] = static_cast<float>((pj - (j == y ? 1.0 : 0.0)) / inv_rows);
    }
  }
  if (x.partial != nullptr) x.partial[task] = loss;
}

double SoftmaxXent(int64_t rows, int64_t cols, const float* logits, const float* labels, float* probs,
                   float* dlogits, const Exec& exec) {
  if (rows <= 0 || cols <= 0) return 0.0;
  double partial[kMaxChunks];
  SoftmaxCtx x{rows, cols, RowChunkFor(rows, cols), logits, labels, probs, dlogits, partial};
  const int chunks = static_cast<int>(CeilDiv(rows, x.chunk));
  ForTasks(exec, chunks, &SoftmaxTask, &x);
  double total = 0.0;
  for (int t = 0; t < chunks; ++t) total += partial[t];
  return total / static_cast<double>(rows);
}

void Softmax(int64_t rows, int64_t cols, const float* logits, float* probs, const Exec& exec) {
  if (rows <= 0 || cols <= 0) return;
  SoftmaxCtx x{rows, cols, RowChunkFor(rows, cols), logits, nullptr, probs, nullptr, nullptr};
  ForTasks(exec, static_cast<int>(CeilDiv(rows, x.chunk)), &SoftmaxTask, &x);
}

struct SgdCtx {
  int64_t n, chunk;
  float* param;
  const float* grad;
  float* velocity;
  double lr, momentum, l2;
  bool nesterov;
};

void SgdTask(void* vctx, int task, int /*worker*/) {
  const SgdCtx& x = *static_cast<const SgdCtx*>(vctx);
  const int64_t i0 = task * x.chunk;
  const int64_t i1 = Min64(i0 + x.chunk, x.n);
  float* DT_RESTRICT p = x.param;
  const float* DT_RESTRICT g = x.grad;
  float* DT_RESTRICT v = x.velocity;
  const double lr = x.lr, mu = x.momentum, l2 = x.l2;
  if (mu != 0.0 && v != nullptr) {
    if (x.nesterov) {
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
        const float vi = static_cast<float>(mu * static_cast<double>(v[i]) + gi);
        v[i] = vi;
        p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * (gi + mu * static_cast<double>(vi)));
      }
    } else {
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
        const float vi = static_cast<float>(mu * static_cast<double>(v[i]) + gi);
        v[i] = vi;
        p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * static_cast<double>(vi));
      }
    }
  } else {
    for (int64_t i = i0; i < i1; ++i) {
      const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
      p[i] = static_cast<float>(static_cast<double>(p[i]) - lr * gi);
    }
  }
}

void Sgd(int64_t n, float* param, const float* grad, float* velocity, double lr, double momentum,
         bool nesterov, double l2, const Exec& exec) {
  if (n <= 0) return;
  SgdCtx x{n, ChunkFor(n), param, grad, velocity, lr, momentum, l2, nesterov};
  ForTasks(exec, static_cast<int>(CeilDiv(n, x.chunk)), &SgdTask, &x);
}

struct AdamCtx {
  int64_t n, chunk;
  float* param;
  const float* grad;
  float* m;
  float* v;
  double b1, b2, eps, l2, step_size, sqrt_bias2;
};

void AdamTask(void* vctx, int task, int /*worker*/) {
  const AdamCtx& x = *static_cast<const AdamCtx*>(vctx);
  const int64_t i0 = task * x.chunk;
  const int64_t i1 = Min64(i0 + x.chunk, x.n);
  float* DT_RESTRICT p = x.param;
  const float* DT_RESTRICT g = x.grad;
  float* DT_RESTRICT m = x.m;
  float* DT_RESTRICT v = x.v;
  const double b1 = x.b1, b2 = x.b2, c1 = 1.0 - x.b1, c2 = 1.0 - x.b2, l2 = x.l2;
  // The moments are computed like the reference (in double, rounded once when stored). The
  // step itself is computed in float: sqrt and division in double would make this kernel
  // compute-bound, and the step is far smaller than the parameter it is subtracted from.
  const float step_size = static_cast<float>(x.step_size);
  const float sqrt_bias2 = static_cast<float>(x.sqrt_bias2);
  float eps = static_cast<float>(x.eps);
  // An eps too small for float must not become 0 (0/0 where m = v = 0).
  if (eps == 0.0f && x.eps > 0.0) eps = 1.40129846e-45f;
  for (int64_t i = i0; i < i1; ++i) {
    const double gi = static_cast<double>(g[i]) + l2 * static_cast<double>(p[i]);
    const float mi = static_cast<float>(b1 * static_cast<double>(m[i]) + c1 * gi);
    const float vi = static_cast<float>(b2 * static_cast<double>(v[i]) + c2 * gi * gi);
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) / sqrt_bias2 + eps;
    p[i] = p[i] - (step_size * mi) / denom;
  }
}

void Adam(int64_t n, float* param, const float* grad, float* m, float* v, double lr, double beta1,
          double beta2, double eps, double l2, double step, const Exec& exec) {
  if (n <= 0) return;
  AdamCtx x{n, ChunkFor(n), param, grad, m, v, beta1, beta2, eps, l2, 0.0, 0.0};
  x.step_size = lr / (1.0 - ::pow(beta1, step));
  x.sqrt_bias2 = ::sqrt(1.0 - ::pow(beta2, step));
  ForTasks(exec, static_cast<int>(CeilDiv(n, x.chunk)), &AdamTask, &x);
}

struct SumSqCtx {
  int64_t n, chunk;
  const float* x;
  double* partial;
};

void SumSqTask(void* vctx, int task, int /*worker*/) {
  const SumSqCtx& c = *static_cast<const SumSqCtx*>(vctx);
  const int64_t i0 = task * c.chunk;
  const int64_t i1 = Min64(i0 + c.chunk, c.n);
  const float* x = c.x;
  // Eight interleaved double accumulators (a fixed order, so the result is reproducible).
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = i0;
  for (; i + 8 <= i1; i += 8) {
    DT_UNROLL
    for (int l = 0; l < 8; ++l) {
      const double v = x[i + l];
      acc[l] += v * v;
    }
  }
  for (int l = 0; i < i1; ++i, ++l) {
    const double v = x[i];
    acc[l] += v * v;
  }
  c.partial[task] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double SumSquares(int64_t n, const float* x, const Exec& exec) {
  if (n <= 0) return 0.0;
  double partial[kMaxChunks];
  SumSqCtx c{n, ChunkFor(n), x, partial};
  const int chunks = static_cast<int>(CeilDiv(n, c.chunk));
  ForTasks(exec, chunks, &SumSqTask, &c);
  double total = 0.0;
  for (int t = 0; t < chunks; ++t) total += partial[t];
  return total;
}

// An ISA may name a second, narrower micro-tile (Isa::Narrow: more rows, fewer columns) for
// GEMMs whose output has at most that many columns, such as a 10-class output layer, where the
// wide tile would compute mostly padding. The choice depends on n only, so results still do not
// depend on the thread count, and gemm and dense_forward choose alike (bit-identical pairs).
template <class I, class = void>
struct NarrowOf {
  using type = I;
};
template <class I>
struct NarrowOf<I, typename VoidOf<typename I::Narrow>::type> {
  using type = typename I::Narrow;
};

template <class I>
constexpr bool UseNarrow(int64_t n) {
  using N = typename NarrowOf<I>::type;
  return GemmImpl<N>::NR < GemmImpl<I>::NR && n <= GemmImpl<N>::NR;
}

template <class I>
constexpr size_t WorkspaceFloats() {
  using N = typename NarrowOf<I>::type;
  return GemmImpl<I>::kWorkspaceFloats > GemmImpl<N>::kWorkspaceFloats ? GemmImpl<I>::kWorkspaceFloats
                                                                        : GemmImpl<N>::kWorkspaceFloats;
}

template <class I>
void GemmEntry(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               const float* b, float beta, float* c, const Exec& exec) {
  if (UseNarrow<I>(n)) {
    GemmImpl<typename NarrowOf<I>::type>::Run(ta, tb, m, n, k, alpha, a, b, beta, c, exec);
  } else {
    GemmImpl<I>::Run(ta, tb, m, n, k, alpha, a, b, beta, c, exec);
  }
}

template <class G>
void DenseForwardWith(int64_t rows, int64_t in_f, int64_t out_f, const float* x, const float* w,
                      const float* bias, int kind, double alpha, float* z, float* h, const Exec& exec) {
  if (in_f <= 0) {
    // Empty sum: z = 0, then the ordinary bias + activation pass.
    G::Run(false, true, rows, out_f, 0, 1.0f, x, w, 0.0f, z, exec);
    BiasActivation(rows, out_f, z, bias, kind, alpha, h, exec);
    return;
  }
  const Epilogue epi{SelectEpilogue<G::NR>(kind, bias != nullptr, h == z), bias, h, alpha};
  G::Run(false, true, rows, out_f, in_f, 1.0f, x, w, 0.0f, z, exec, &epi);
}

template <class I>
void DenseForwardEntry(int64_t rows, int64_t in_f, int64_t out_f, const float* x, const float* w,
                       const float* bias, int kind, double alpha, float* z, float* h, const Exec& exec) {
  if (rows <= 0 || out_f <= 0) return;
  if (UseNarrow<I>(out_f)) {
    DenseForwardWith<GemmImpl<typename NarrowOf<I>::type>>(rows, in_f, out_f, x, w, bias, kind, alpha, z, h, exec);
  } else {
    DenseForwardWith<GemmImpl<I>>(rows, in_f, out_f, x, w, bias, kind, alpha, z, h, exec);
  }
}

}  // namespace
}  // namespace densetrain

// Defines the TU's table. `name` is a string literal, `Isa` the ISA description.
#define DENSETRAIN_DEFINE_TABLE(table_var, name, Isa)                                      \
  namespace densetrain {                                                                   \
  namespace {                                                                              \
  const KernelTable table_var = {                                                         \
      name,                                                                                \
      WorkspaceFloats<Isa>(),                                                              \
      Isa::kMR,                                                                            \
      Isa::kNV * Isa::kW,                                                                  \
      static_cast<int>(Isa::kMC),                                                          \
      static_cast<int>(Isa::kKC),                                                          \
      static_cast<int>(Isa::kNC),                                                          \
      &GemmEntry<Isa>,                                                                     \
      &BiasActivation,                                                                     \
      &ActivationBackward,                                                                 \
      &BiasGrad,                                                                           \
      &SoftmaxXent,                                                                        \
      &Softmax,                                                                            \
      &Sgd,                                                                                \
      &Adam,                                                                               \
      &SumSquares,                                                                         \
      &DenseForwardEntry<Isa>,                                                             \
  };                                                                                       \
  }                                                                                        \
  }

#endif  // DENSETRAIN_KERNELS_IMPL_H_
