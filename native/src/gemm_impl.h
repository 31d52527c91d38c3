// The GEMM (BLIS-style packing, register-blocked micro-kernels, a thread split on the tile grid)
// and the dense-layer forward built on it. Part of kernels_impl.h (included from it only, once per
// kernel translation unit, after the ISA description): internal linkage, no standard-library
// templates.
#ifndef DENSETRAIN_GEMM_IMPL_H_
#define DENSETRAIN_GEMM_IMPL_H_

namespace densetrain {
namespace {

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

  // acc + a * b per lane: an fp32 FMA, or for bf16 the pairwise dot product of two bf16 pairs.
  static DT_INLINE V MulAdd(V a, V b, V acc) {
    if constexpr (kBf16) {
      return I::Dot2(a, b, acc);
    } else {
      return I::Fma(a, b, acc);
    }
  }

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
    // bf16: each 32-bit slot holds two k steps (a bf16 pair); Bcast copies a slot's bits.
    const int64_t steps = kBf16 ? (kc + 1) / 2 : kc;
    for (int64_t p = 0; p < steps; ++p) {
      V bv[NV];
      DT_UNROLL
      for (int v = 0; v < NV; ++v) bv[v] = I::Load(b + v * W);
      DT_UNROLL
      for (int r = 0; r < MR; ++r) {
        const V av = I::Bcast(a + r);
        DT_UNROLL
        for (int v = 0; v < NV; ++v) acc[r][v] = MulAdd(av, bv[v], acc[r][v]);
      }
      a += MR;
      b += NR;
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

#endif  // DENSETRAIN_GEMM_IMPL_H_
