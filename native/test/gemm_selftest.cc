// Stand-alone check of the GEMM in every kernel table this build has, without Node: compares
// against a float64 product within the float32 error bound, for all transposes and awkward
// shapes, and checks that splitting the work into tasks (as the thread pool does) changes no
// bit; and that dense_forward (the GEMM with the bias + activation epilogue) gives the bits
// of gemm + bias_activation. Useful where the addon cannot be loaded, e.g. the arm64 build under qemu:
//
//   aarch64-linux-gnu-g++ -std=c++17 -O2 -ffp-contract=off -fno-math-errno -Inative/src \
//     native/test/gemm_selftest.cc native/src/isa_generic.cc -o /tmp/selftest -static
//   qemu-aarch64 /tmp/selftest
//
//   native/test/run-selftest.sh      (x86-64: every table the CPU supports, plus the AVX-512
//                                    tile configuration emulated with AVX2, see avx512_shape.cc)
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernel_api.h"

using namespace densetrain;

#if defined(DENSETRAIN_X86)
namespace densetrain {
const KernelTable* Avx512ShapeTable();  // avx512_shape.cc
}
#endif

namespace {

uint32_t state = 12345;
float Rand() {
  state = state * 1664525u + 1013904223u;
  return static_cast<float>((state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

// Runs tasks in reverse order, each as a different "worker" (to mimic any schedule).
void ReverseParallel(void*, int ntasks, TaskFn fn, void* ctx) {
  for (int t = ntasks - 1; t >= 0; --t) fn(ctx, t, t % 3);
}

constexpr int kShapes[][3] = {{1, 1, 1},   {1, 7, 13},  {13, 1, 7},   {7, 13, 1},   {2, 3, 0},   {8, 12, 256},
                               {7, 11, 255}, {9, 13, 257}, {12, 32, 64}, {13, 33, 65}, {17, 31, 263}, {151, 37, 29},
                               {241, 19, 11}, {1031, 3, 17}, {3, 1031, 17}, {11, 2081, 9}, {97, 131, 521}, {173, 151, 89}};

// Three 64-byte-aligned workspaces (one per pretend worker), owned for the table's checks.
struct Workspaces {
  std::vector<std::vector<float>> own;
  float* wsp[3];
  explicit Workspaces(const KernelTable* table) : own(3, std::vector<float>(table->workspace_floats + 16)) {
    for (int w = 0; w < 3; ++w) {
      wsp[w] = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(own[w].data()) + 63) & ~uintptr_t{63});
    }
  }
};

// gemm in every transpose form and alpha/beta case: within the float32 summation bound of a
// float64 dot product, and bit-identical when its tasks run in another order on other workers.
int CheckGemm(const KernelTable* table, const Exec& serial, const Exec& split) {
  int failures = 0;
  for (const auto& s : kShapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 2, tb = t & 1;
      const float alpha = (t % 2) ? -0.75f : 1.0f;
      const float beta = (t == 1 || t == 2) ? 0.5f : 0.0f;
      std::vector<float> a(m * k), b(k * n), c0(m * n);
      for (auto& v : a) v = Rand();
      for (auto& v : b) v = Rand();
      for (auto& v : c0) v = beta == 0.0f ? NAN : Rand();
      std::vector<float> c1 = c0, c2 = c0;
      table->gemm(ta, tb, m, n, k, alpha, a.data(), b.data(), beta, c1.data(), serial);
      table->gemm(ta, tb, m, n, k, alpha, a.data(), b.data(), beta, c2.data(), split);
      for (int64_t i = 0; i < m; ++i) {
        for (int64_t j = 0; j < n; ++j) {
          double sum = 0, mag = 0;
          for (int64_t p = 0; p < k; ++p) {
            const double x = ta ? a[p * m + i] : a[i * k + p];
            const double y = tb ? b[j * k + p] : b[p * n + j];
            sum += x * y;
            mag += std::fabs(x * y);
          }
          const double cold = beta == 0.0f ? 0.0 : c0[i * n + j];
          const double exact = alpha * sum + beta * cold;
          const double u = std::ldexp(1.0, -24);
          const double bound = (k + 3) * u / (1 - (k + 3) * u) * (std::fabs(alpha) * mag + std::fabs(beta * cold)) + 1e-37;
          const float got = c1[i * n + j];
          if (!(std::fabs(got - exact) <= bound) || std::memcmp(&got, &c2[i * n + j], 4) != 0) {
            if (failures++ < 10) {
              std::printf("%s %c%c m=%lld n=%lld k=%lld: c[%lld,%lld] = %g (split %g), exact %g, bound %g\n", table->name,
                          ta ? 'T' : 'N', tb ? 'T' : 'N', (long long)m, (long long)n, (long long)k, (long long)i,
                          (long long)j, got, c2[i * n + j], exact, bound);
            }
          }
        }
      }
    }
  }
  return failures;
}

// dense_forward: bit-identical to gemm NT + bias_activation (serial and split), every
// activation, with and without bias, h separate and h == z.
int CheckDenseForward(const KernelTable* table, const Exec& serial, const Exec& split) {
  int failures = 0;
  for (const auto& s : kShapes) {
    const int64_t rows = s[0], out_f = s[1], in_f = s[2];
    std::vector<float> x(rows * in_f), w(out_f * in_f), bias(out_f);
    for (auto& v : x) v = Rand();
    for (auto& v : w) v = Rand();
    for (auto& v : bias) v = Rand();
    for (int kind = 0; kind < kActCount; ++kind) {
      for (int variant = 0; variant < 4; ++variant) {
        const bool with_bias = variant & 1, in_place = variant & 2;
        const float* bp = with_bias ? bias.data() : nullptr;
        std::vector<float> z0(rows * out_f), h0(rows * out_f), z1(rows * out_f, NAN), h1(rows * out_f), z2(rows * out_f, NAN),
            h2(rows * out_f);
        table->gemm(false, true, rows, out_f, in_f, 1.0f, x.data(), w.data(), 0.0f, z0.data(), serial);
        table->bias_activation(rows, out_f, z0.data(), bp, kind, -0.3, in_place ? z0.data() : h0.data(), serial);
        table->dense_forward(rows, in_f, out_f, x.data(), w.data(), bp, kind, -0.3, z1.data(), in_place ? z1.data() : h1.data(),
                             serial);
        table->dense_forward(rows, in_f, out_f, x.data(), w.data(), bp, kind, -0.3, z2.data(), in_place ? z2.data() : h2.data(),
                             split);
        const size_t bytes = sizeof(float) * rows * out_f;
        const bool same = std::memcmp(z0.data(), z1.data(), bytes) == 0 && std::memcmp(z0.data(), z2.data(), bytes) == 0 &&
                          (in_place || (std::memcmp(h0.data(), h1.data(), bytes) == 0 && std::memcmp(h0.data(), h2.data(), bytes) == 0));
        if (!same && failures++ < 10) {
          std::printf("%s dense_forward rows=%lld in=%lld out=%lld kind=%d bias=%d in_place=%d differs from gemm + bias_activation\n",
                      table->name, (long long)rows, (long long)in_f, (long long)out_f, kind, with_bias, in_place);
        }
      }
    }
  }
  return failures;
}

int Check(const KernelTable* table) {
  Workspaces ws(table);
  Exec serial{nullptr, nullptr, 1, ws.wsp};
  Exec split{&ReverseParallel, nullptr, 3, ws.wsp};
  const int failures = CheckGemm(table, serial, split) + CheckDenseForward(table, serial, split);
  std::printf("%s (%dx%d tiles): %s\n", table->name, table->mr, table->nr, failures == 0 ? "ok" : "FAILED");
  return failures;
}

}  // namespace

int main() {
  int failures = Check(GenericTable());
#if defined(DENSETRAIN_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) failures += Check(Avx512ShapeTable());
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) failures += Check(Avx2Table());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl")) {
    failures += Check(Avx512Table());
  }
#endif
  return failures == 0 ? 0 : 1;
}
