// Measures this machine's FP32 FMA peak, the number GEMM efficiency is judged against (not a
// test; x86-64 only). Twelve independent FMA chains per thread (enough to cover a 4-cycle
// latency on two FMA pipes), written in inline assembly so the compiler cannot spill or fold
// them; fastest of ten runs.
//
//   g++ -O2 -pthread native/bench/fma-peak.cc -o /tmp/fma-peak
//   /tmp/fma-peak avx512 1     # one core, 512-bit FMAs
//   /tmp/fma-peak avx512 2     # two threads
//   /tmp/fma-peak avx2 1       # 256-bit FMAs (AVX2 + FMA machines)
//   /tmp/fma-peak bf16 1       # 512-bit vdpbf16ps (AVX512-BF16): 64 flops each (16 lanes x 2 products x 2)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

constexpr long kIterations = 50'000'000;

#define FMA12(a)                                                                                      \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "0\n vfmadd231ps %%" a "14, %%" a "15, %%" a "1\n"        \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "2\n vfmadd231ps %%" a "14, %%" a "15, %%" a "3\n"        \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "4\n vfmadd231ps %%" a "14, %%" a "15, %%" a "5\n"        \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "6\n vfmadd231ps %%" a "14, %%" a "15, %%" a "7\n"        \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "8\n vfmadd231ps %%" a "14, %%" a "15, %%" a "9\n"        \
  "vfmadd231ps %%" a "14, %%" a "15, %%" a "10\n vfmadd231ps %%" a "14, %%" a "15, %%" a "11\n"

__attribute__((target("avx512f"))) void Chains512(long iterations) {
  __asm__ volatile(
      "1:\n" FMA12("zmm") "dec %0\n jnz 1b\n"
      : "+r"(iterations)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "cc");
}

#define DP12(a)                                                                                       \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "0\n vdpbf16ps %%" a "14, %%" a "15, %%" a "1\n"            \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "2\n vdpbf16ps %%" a "14, %%" a "15, %%" a "3\n"            \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "4\n vdpbf16ps %%" a "14, %%" a "15, %%" a "5\n"            \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "6\n vdpbf16ps %%" a "14, %%" a "15, %%" a "7\n"            \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "8\n vdpbf16ps %%" a "14, %%" a "15, %%" a "9\n"            \
  "vdpbf16ps %%" a "14, %%" a "15, %%" a "10\n vdpbf16ps %%" a "14, %%" a "15, %%" a "11\n"

__attribute__((target("avx512f,avx512bf16"))) void ChainsBf16(long iterations) {
  __asm__ volatile(
      "1:\n" DP12("zmm") "dec %0\n jnz 1b\n"
      : "+r"(iterations)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "cc");
}

__attribute__((target("avx2,fma"))) void Chains256(long iterations) {
  __asm__ volatile(
      "1:\n" FMA12("ymm") "dec %0\n jnz 1b\n"
      : "+r"(iterations)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "cc");
}

}  // namespace

int main(int argc, char** argv) {
  const bool bf16 = argc >= 2 && std::strcmp(argv[1], "bf16") == 0;
  const bool avx512 = !bf16 && (argc < 2 || std::strcmp(argv[1], "avx2") != 0);
  const int threads = argc > 2 ? std::atoi(argv[2]) : 1;
  if (threads < 1 || threads > 256) {
    std::fprintf(stderr, "usage: fma-peak [avx512|avx2|bf16] [threads 1-256]\n");
    return 2;
  }
  if (bf16 && !__builtin_cpu_supports("avx512bf16")) {
    std::fprintf(stderr, "fma-peak: this CPU does not support AVX512-BF16\n");
    return 2;
  }
  if (!bf16 && (avx512 ? !__builtin_cpu_supports("avx512f") : !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")))) {
    std::fprintf(stderr, "fma-peak: this CPU does not support %s\n", avx512 ? "AVX-512F" : "AVX2 + FMA");
    return 2;
  }
  const double flops_per_fma = bf16 ? 64.0 : avx512 ? 32.0 : 16.0;  // lanes x 2 (vdpbf16ps: 2 products per lane)
  double best = 0;
  for (int run = 0; run < 10; ++run) {
    std::vector<std::thread> pool;
    const auto t0 = std::chrono::steady_clock::now();
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([avx512, bf16] { bf16 ? ChainsBf16(kIterations) : avx512 ? Chains512(kIterations) : Chains256(kIterations); });
    }
    for (std::thread& t : pool) t.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double gflops = threads * kIterations * 12.0 * flops_per_fma / seconds / 1e9;
    if (gflops > best) best = gflops;
  }
  std::printf("%s peak, %s, %d thread(s): %.1f GFLOP/s (%.2f GHz x %.0f flop/cycle per core if 2 pipes)\n",
              bf16 ? "bf16 dot-product (fp32 accumulate)" : "FP32 FMA", bf16 ? "AVX512-BF16" : avx512 ? "AVX-512" : "AVX2", threads, best, best / threads / (flops_per_fma * 2), flops_per_fma * 2);
  return 0;
}
