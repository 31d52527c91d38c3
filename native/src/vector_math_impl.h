// Vector math: float exp, tanh and sigmoid that vectorize, the activation functions, and the GEMM
// epilogue (bias + activation on each finished tile of dense_forward). Part of kernels_impl.h
// (included from it only, once per kernel translation unit, after the ISA description): internal
// linkage, no standard-library templates.
#ifndef DENSETRAIN_VECTOR_MATH_H_
#define DENSETRAIN_VECTOR_MATH_H_

namespace densetrain {
namespace {

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

}  // namespace
}  // namespace densetrain

#endif  // DENSETRAIN_VECTOR_MATH_H_
