// Element-wise kernels and reductions: bias + activation, activation backward, bias gradient,
// softmax (with cross-entropy) and the sum of squares. Part of kernels_impl.h (included from it
// only, once per kernel translation unit, after the ISA description): internal linkage, no
// standard-library templates.
#ifndef DENSETRAIN_ELEMENTWISE_IMPL_H_
#define DENSETRAIN_ELEMENTWISE_IMPL_H_

namespace densetrain {
namespace {

// Arithmetic follows the reference backend (src/kernels/reference.ts):
// values are widened to double where the reference computes in JS numbers and rounded to
// float once, where the reference stores. Work is split in chunks whose size depends only on
// the problem, and reductions add the chunk results in order, so results never depend on
// the thread count.

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

}  // namespace
}  // namespace densetrain

#endif  // DENSETRAIN_ELEMENTWISE_IMPL_H_
