// The contract between the addon layer (addon.cc, cpu.cc, train_step.cc: baseline ISA) and the
// kernel translation units (isa_generic.cc, isa_avx2.cc, isa_avx512.cc), each compiled with
// its own instruction-set flags.
//
// This header is deliberately plain: no standard-library templates, only function pointers
// and POD structs. Anything inline that appears in two translation units compiled with
// different -m flags could be merged by the linker into the "wrong" copy (an AVX-512 body
// called on a CPU without AVX-512), so the kernel TUs keep all of their code in an
// anonymous namespace and export exactly one function each: the one returning their table.
#ifndef DENSETRAIN_KERNEL_API_H_
#define DENSETRAIN_KERNEL_API_H_

#include <cstddef>
#include <cstdint>

namespace densetrain {

// Runs fn(ctx, task, worker) for every task in [0, ntasks), spread over the pool's workers,
// and returns when all have finished. `worker` is in [0, Exec::threads) and identifies the
// thread (for its workspace). Tasks must not depend on which worker runs them.
using TaskFn = void (*)(void* ctx, int task, int worker);
using ParallelFn = void (*)(void* pool, int ntasks, TaskFn fn, void* ctx);

struct Exec {
  ParallelFn parallel;
  void* pool;
  int threads;               // >= 1
  float* const* workspace;   // workspace[worker]: >= KernelTable::workspace_floats floats, 64-byte aligned
};

// Activation codes: the `kind` argument of the kernels. Must match src/kernels/activation-codes.ts
// (TypeScript) and the ACT_* constants of assembly/elementwise.ts (AssemblyScript);
// test/kernels.activation-codes.test.ts checks all three and the addon's `activationCodes`
// export (kActivationNames below). New activations go at the end, in every place at once.
enum ActKind : int {
  kActRelu = 0,
  kActLeakyRelu = 1,
  kActPrelu = 2,
  kActSigmoid = 3,
  kActTanh = 4,
  kActLinear = 5,
  kActCount = 6,
};
// The name of each code, as TypeScript spells it (ActivationName).
constexpr const char* kActivationNames[kActCount] = {"relu", "leaky_relu", "prelu", "sigmoid", "tanh", "linear"};

// All sizes are element counts; callers have checked every size against buffer lengths.
struct KernelTable {
  const char* name;            // "generic" | "avx2" | "avx512"
  size_t workspace_floats;     // per worker, needed by gemm (packing buffers)
  int mr, nr, mc, kc, nc;      // GEMM blocking, for information and tests

  // C = alpha * op(A) * op(B) + beta * C; beta == 0 writes C without reading it.
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c, const Exec& exec);
  // z += bias (bias may be null); h = act(z). h may equal z.
  // alpha: leaky_relu's slope, or prelu's slope value (read by the caller); unused otherwise.
  void (*bias_activation)(int64_t rows, int64_t cols, float* z, const float* bias, int kind,
                          double alpha, float* h, const Exec& exec);
  // dz = dh * act'(z, h); returns sum over z <= 0 of dh * z when kind == prelu (else 0).
  double (*activation_backward)(int64_t rows, int64_t cols, int kind, double alpha, const float* z,
                                const float* h, const float* dh, float* dz, const Exec& exec);
  // db[j] = sum_i dz[i, j]
  void (*bias_grad)(int64_t rows, int64_t cols, const float* dz, float* db, const Exec& exec);
  // Returns the mean cross-entropy; labels are valid class indices (checked by the caller).
  double (*softmax_xent)(int64_t rows, int64_t cols, const float* logits, const float* labels,
                         float* probs, float* dlogits, const Exec& exec);
  void (*softmax)(int64_t rows, int64_t cols, const float* logits, float* probs, const Exec& exec);
  void (*sgd)(int64_t n, float* param, const float* grad, float* velocity, double lr,
              double momentum, bool nesterov, double l2, const Exec& exec);
  void (*adam)(int64_t n, float* param, const float* grad, float* m, float* v, double lr,
               double beta1, double beta2, double eps, double l2, double step, const Exec& exec);
  double (*sum_squares)(int64_t n, const float* x, const Exec& exec);
  // Dense layer forward: z = x * w^T + bias (x: rows x in_f, w: out_f x in_f, bias: out_f or
  // null), h = act(z); h may equal z. The bias and activation are applied to each tile of z
  // by the GEMM itself, right after its last k-slice is stored. z and h must not overlap x, w
  // or bias (checked by the caller). Bit-identical to gemm(false, true, ...) + bias_activation.
  void (*dense_forward)(int64_t rows, int64_t in_f, int64_t out_f, const float* x, const float* w,
                        const float* bias, int kind, double alpha, float* z, float* h, const Exec& exec);
};

// bf16 mixed-precision GEMMs (PyTorch autocast's recipe): every element of A and B (x and w) is
// rounded to bfloat16 (nearest, ties to even, on the bits: the reference's rule) while packing,
// products are accumulated in float32; alpha, beta, C, bias and activation stay float32.
// Same arguments and guarantees (thread-count independence included) as the fp32 entries.
struct Bf16Table {
  const char* name;            // "avx512-bf16"
  size_t workspace_floats;     // per worker
  void (*gemm)(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, const float* b, float beta, float* c, const Exec& exec);
  void (*dense_forward)(int64_t rows, int64_t in_f, int64_t out_f, const float* x, const float* w,
                        const float* bias, int kind, double alpha, float* z, float* h, const Exec& exec);
};

// Each defined in its own translation unit. The x86 ones exist only when DENSETRAIN_X86 is set.
const KernelTable* GenericTable();
#if defined(DENSETRAIN_X86)
const KernelTable* Avx2Table();
const KernelTable* Avx512Table();
// AVX-512 + AVX512-BF16 (vdpbf16ps); used only with the avx512 table, on CPUs that report both.
const Bf16Table* Avx512Bf16Table();
#endif

}  // namespace densetrain

#endif  // DENSETRAIN_KERNEL_API_H_
