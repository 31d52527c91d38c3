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

// The pieces, in dependency order (each inside namespace densetrain { namespace { ... } }):
#include "kernels_base.h"        // macros, rounding helpers, ForTasks
#include "vector_math_impl.h"    // ExpF, TanhF, SigmoidF, activations, the GEMM epilogue
#include "elementwise_impl.h"    // bias + activation, activation backward, bias grad, softmax, sum of squares
#include "optimizers_impl.h"     // SGD, Adam
#include "gemm_impl.h"           // GEMM, dense_forward

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
